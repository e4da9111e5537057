package watch

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"handler/function/function/api"
	"handler/function/function/lock"
)

// Handler serves GET /watch/{id} and GET /watch?prefix=P as
// text/event-stream.
type Handler struct {
	Feed *Feed
	// Deadline is the entry's request deadline (api.Limits.Deadline): a
	// stream ends api.Margin(Deadline) before it, cleanly, so that an
	// EventSource reconnects by itself. 0 means streams end after MaxStream.
	Deadline time.Duration
	// Keepalive is how often an idle stream gets a comment line; 0 means
	// 15s.
	Keepalive time.Duration
	// Identity names the caller of r, for the per-identity cap; nil counts
	// every caller as one.
	Identity func(r *http.Request) string
}

// MaxStream is how long a stream lasts when the entry has no deadline.
const MaxStream = 10 * time.Minute

// retryMs is the reconnection delay a stream asks EventSource for.
const retryMs = 500

// lifetime is how long one stream lasts.
func (h *Handler) lifetime() time.Duration {
	if h.Deadline <= 0 {
		return MaxStream
	}
	return max(time.Second, h.Deadline-api.Margin(h.Deadline))
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		api.Write(w, http.StatusMethodNotAllowed, api.Envelope{Error: fmt.Sprintf("method %s is not allowed here; use GET", r.Method), Code: api.CodeMethodNotAllowed})
		return
	}
	wt, err := parseTarget(r)
	if err != nil {
		api.WriteResult(w, "", lock.Lease{}, err)
		return
	}
	if h.Feed == nil {
		api.WriteResult(w, "", lock.Lease{}, fmt.Errorf("%w: watch", lock.ErrUnsupported))
		return
	}
	if h.Identity != nil {
		wt.key = h.Identity(r)
	}
	sub, err := h.Feed.join(r.Context(), wt, r.Header.Get("Last-Event-ID"))
	if err != nil {
		api.WriteResult(w, "", lock.Lease{}, err)
		return
	}
	defer h.Feed.leave(wt)
	snap, err := h.Feed.snapshot(r.Context(), wt)
	if err != nil {
		api.WriteResult(w, "", lock.Lease{}, err)
		return
	}
	snap.Seq = sub.seq
	rc := http.NewResponseController(w) // reaches a Flusher under wrappers
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: %d\n\n", retryMs)
	send := func(e Event) error {
		if _, err := w.Write(h.Feed.encode(e, wt)); err != nil {
			return err
		}
		return rc.Flush()
	}
	for _, e := range sub.replay {
		if send(e) != nil {
			return
		}
	}
	if send(snap) != nil {
		return
	}
	end := time.NewTimer(h.lifetime())
	defer end.Stop()
	every := h.Keepalive
	if every <= 0 {
		every = 15 * time.Second
	}
	keepalive := time.NewTicker(every)
	defer keepalive.Stop()
	for {
		select {
		case e := <-wt.ch:
			if send(e) != nil {
				return
			}
		case <-keepalive.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
			_ = rc.Flush()
		case <-wt.gone:
			// Drain what was queued before the end, then close cleanly.
			for {
				select {
				case e := <-wt.ch:
					if send(e) != nil {
						return
					}
				default:
					return
				}
			}
		case <-end.C:
			// Before the platform's deadline: a clean end, and the browser
			// reconnects with Last-Event-ID.
			return
		case <-r.Context().Done():
			return
		}
	}
}

// parseTarget reads /watch/{id} or /watch?prefix=P.
func parseTarget(r *http.Request) (*watcher, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("%w: query string: %w", lock.ErrInvalid, err)
	}
	for name := range q {
		if name != "prefix" {
			return nil, fmt.Errorf("%w: unknown parameter %q", lock.ErrInvalid, name)
		}
	}
	if id, ok := strings.CutPrefix(r.URL.Path, "/watch/"); ok {
		if q.Has("prefix") {
			return nil, fmt.Errorf("%w: watch either /watch/{id} or /watch?prefix=P", lock.ErrInvalid)
		}
		if err := lock.ValidateID(id); err != nil {
			return nil, err
		}
		return &watcher{id: id, exact: true}, nil
	}
	if len(q["prefix"]) > 1 {
		return nil, fmt.Errorf("%w: prefix is given more than once", lock.ErrInvalid)
	}
	req, err := lock.ValidateList(lock.ListRequest{Prefix: q.Get("prefix")})
	if err != nil {
		return nil, err
	}
	return &watcher{prefix: req.Prefix}, nil
}
