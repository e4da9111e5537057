package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Event is one event of a watch stream (GET /watch/{id} or
// /watch?prefix=P). It never carries an owner.
type Event struct {
	// Kind is "state" (the first event of a watch of one id: its state
	// then), "snapshot" (the first of a watch of a prefix: the held locks
	// then, in Locks), or a change: "acquired", "extended", "released",
	// "revoked" or "expired". After a reconnection the stream replays the
	// changes missed, when the server still has them, then a fresh state or
	// snapshot.
	Kind string
	// Lock is the lock after the change (or its state); zero for a snapshot.
	Lock Status
	// Locks are a snapshot's held locks.
	Locks []Status
	// Truncated is set on a snapshot of more locks than the server sends.
	Truncated bool
	// EventID is the server's id of the event (sent back on reconnection).
	EventID string
}

// watchData is the JSON of one event.
type watchData struct {
	Event     string       `json:"event"`
	Locks     []wireStatus `json:"locks"`
	Truncated bool         `json:"truncated"`
	wireStatus
}

// Watch streams the events of lock id until ctx ends; then the channel is
// closed. It returns an error when the first connection is refused (bad id,
// unauthorized, 503 or 429 after retries ran out); afterwards it reconnects by
// itself when a stream ends (the server ends each before its platform's
// request deadline) or breaks, sending Last-Event-ID so that nothing is
// missed, and with backoff while the server is unavailable. A reader that
// falls behind by more than the channel's buffer of 64 events stalls the
// stream; the server then ends it and the reconnection catches up.
func (c *Client) Watch(ctx context.Context, id string) (<-chan Event, error) {
	path, err := escapeID(id)
	if err != nil {
		return nil, err
	}
	return c.watch(ctx, "/watch/"+path)
}

// WatchPrefix is Watch for every lock whose id starts with prefix.
func (c *Client) WatchPrefix(ctx context.Context, prefix string) (<-chan Event, error) {
	return c.watch(ctx, "/watch?prefix="+url.QueryEscape(prefix))
}

func (c *Client) watch(ctx context.Context, target string) (<-chan Event, error) {
	body, err := c.openWatch(ctx, target, "")
	for attempt := 1; err != nil; attempt++ {
		if !retryableWatch(err) || ctx.Err() != nil {
			return nil, err
		}
		var floor time.Duration
		if ae := (*APIError)(nil); errors.As(err, &ae) {
			floor = ae.RetryAfter
		}
		delay, again := c.retry.NextDelay(attempt, floor)
		if !again || !sleepCtx(ctx, max(delay, floor)) {
			return nil, err
		}
		body, err = c.openWatch(ctx, target, "")
	}
	out := make(chan Event, 64)
	go func() {
		defer close(out)
		last, retry := "", 500*time.Millisecond
		for attempt := 0; ; {
			if body != nil {
				last, retry = readEvents(ctx, body, out, last, retry)
				body.Close()
				body, attempt = nil, 0
			}
			if !sleepCtx(ctx, retry) {
				return
			}
			b, err := c.openWatch(ctx, target, last)
			if err != nil {
				if ctx.Err() != nil || !retryableWatch(err) {
					return
				}
				// Reconnections are not bounded by the retry strategy: the
				// stream lasts until ctx ends.
				attempt++
				var floor time.Duration
				if ae := (*APIError)(nil); errors.As(err, &ae) {
					floor = ae.RetryAfter
				}
				delay, _ := c.pace.NextDelay(attempt, floor)
				if !sleepCtx(ctx, delay) {
					return
				}
				continue
			}
			body = b
		}
	}()
	return out, nil
}

// retryableWatch reports whether a refused connection is tried again: as
// for other calls, a 503, a gateway's 502 or 504, a 429 (this token's cap of
// open streams, which frees up when one of them ends) and the network.
func retryableWatch(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return retryable(ae.Status)
	}
	return true // the network
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// openWatch connects once; a non-200 answer is its envelope's error.
func (c *Client) openWatch(ctx context.Context, target, lastID string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	hc := c.hc
	if hc.Timeout > 0 { // a stream outlives any request timeout
		cp := *hc
		cp.Timeout = 0
		hc = &cp
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		_, err := decodeEnvelope(resp.StatusCode, resp.Header, data)
		if err == nil {
			err = fmt.Errorf("candado: GET %s: %d answer is not an event stream", target, resp.StatusCode)
		}
		return nil, err
	}
	return resp.Body, nil
}

// readEvents sends body's events to out until it ends, and returns the
// last event id and the reconnection delay the server asked for.
func readEvents(ctx context.Context, body io.Reader, out chan<- Event, last string, retry time.Duration) (string, time.Duration) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 16<<20) // a snapshot may be large
	var id, kind, data string
	for sc.Scan() {
		line := sc.Text()
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch {
		case line == "":
			if kind != "" || data != "" {
				if ev, ok := decodeEvent(kind, id, data); ok {
					select {
					case out <- ev:
					case <-ctx.Done():
						return last, retry
					}
				}
				if id != "" {
					last = id
				}
			}
			id, kind, data = "", "", ""
		case field == "id":
			id = value
		case field == "event":
			kind = value
		case field == "data":
			data += value
		case field == "retry":
			var ms int
			if _, err := fmt.Sscanf(value, "%d", &ms); err == nil && ms > 0 {
				retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	return last, retry
}

func decodeEvent(kind, id, data string) (Event, bool) {
	var d watchData
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		return Event{}, false
	}
	if kind == "" {
		kind = d.Event
	}
	ev := Event{Kind: kind, EventID: id, Truncated: d.Truncated}
	if kind == "snapshot" {
		ev.Locks = make([]Status, 0, len(d.Locks))
		for i := range d.Locks {
			ev.Locks = append(ev.Locks, d.Locks[i].status())
		}
		return ev, true
	}
	ev.Lock = d.wireStatus.status()
	return ev, true
}

// ListPage is one page of GET /locks.
type ListPage struct {
	// Locks are held locks, never with owners.
	Locks []Status
	// Cursor asks for the next page; "" after the last.
	Cursor string
}

// List returns one page of the held locks whose ids start with prefix
// (GET /locks?prefix=P&limit=N&cursor=C); limit 0 is the server's default.
// A page may be short, or empty, and not be the last: follow Cursor until
// it is "".
func (c *Client) List(ctx context.Context, prefix string, limit int, cursor string) (ListPage, error) {
	q := url.Values{}
	q.Set("prefix", prefix)
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	ctx, cancel := context.WithTimeout(ctx, c.reqTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/locks?"+q.Encode(), nil)
	if err != nil {
		return ListPage{}, err
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return ListPage{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return ListPage{}, fmt.Errorf("%w: reading the listing: %w", ErrUnavailable, err)
	}
	var env struct {
		Success bool `json:"success"`
		Data    struct {
			Locks  []wireStatus `json:"locks"`
			Cursor string       `json:"cursor"`
		} `json:"data"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(data, &env) != nil || !env.Success {
		_, err := decodeEnvelope(resp.StatusCode, resp.Header, data)
		if err == nil {
			err = fmt.Errorf("candado: undecodable listing")
		}
		return ListPage{}, err
	}
	page := ListPage{Cursor: env.Data.Cursor, Locks: make([]Status, 0, len(env.Data.Locks))}
	for i := range env.Data.Locks {
		page.Locks = append(page.Locks, env.Data.Locks[i].status())
	}
	return page, nil
}
