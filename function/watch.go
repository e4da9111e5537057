package function

import (
	"net/http"
	"strings"

	"handler/function/function/api"
	"handler/function/function/watch"
)

// newWatch builds the watch streams' handler: a Feed on the store when it
// can stream changes (not the quorum store: its handler answers 503).
func (s *Service) newWatch(cfg Config, limits api.Limits, m *metrics) *watch.Handler {
	h := &watch.Handler{Deadline: limits.Deadline}
	if src, ok := s.store.(watch.Source); ok {
		s.feed = watch.NewFeed(src, cfg.MaxWatchers)
		h.Feed = s.feed
		m.registry.NewGaugeFunc("candado_watchers", "Watch streams open now, in this instance.",
			func() float64 { return float64(s.feed.Watchers()) })
	}
	return h
}

// isWatch reports whether path is a watch route.
func isWatch(path string) bool {
	return path == "/watch" || strings.HasPrefix(path, "/watch/")
}

var _ http.Handler = (*watch.Handler)(nil)
