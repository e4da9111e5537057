package function

import (
	"net/http"
	"strings"

	"handler/function/function/access"
	"handler/function/function/api"
	"handler/function/function/watch"
)

// newWatch builds the watch streams' handler: a Feed on the store when it
// can stream changes (not the quorum store: its handler answers 503).
func (s *Service) newWatch(cfg Config, limits api.Limits, m *metrics) *watch.Handler {
	h := &watch.Handler{Deadline: limits.Deadline, Identity: identityKey}
	if src, ok := s.store.(watch.Source); ok {
		s.feed = watch.NewFeed(src, cfg.MaxWatchers, cfg.MaxWatchersPerIdentity)
		h.Feed = s.feed
		m.registry.NewGaugeFunc("candado_watchers", "Watch streams open now, in this instance.",
			func() float64 { return float64(s.feed.Watchers()) })
	}
	return h
}

// identityKey names the caller of r as access identified it; every
// anonymous caller is one identity.
func identityKey(r *http.Request) string {
	if ident, ok := access.FromContext(r.Context()); ok && ident.Principal() != "" {
		return ident.Principal()
	}
	return "anonymous"
}

// isWatch reports whether path is a watch route.
func isWatch(path string) bool {
	return path == "/watch" || strings.HasPrefix(path, "/watch/")
}

var _ http.Handler = (*watch.Handler)(nil)
