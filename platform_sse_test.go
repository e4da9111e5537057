//go:build platform

// The watch stream (text/event-stream) through the platforms' servers: what
// a browser's EventSource, the Go client and `candado watch` rely on when
// Candado runs under func-go's runtime or behind OpenFaaS's of-watchdog.
package function

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"handler/function/function/api"
)

// keepaliveEvery is the watch stream's comment interval (docs/API.md, Watch).
const keepaliveEvery = 15 * time.Second

// sseItem is one block of a stream: an event (id, event, data), or a
// comment, or a retry field, with when it arrived.
type sseItem struct {
	at              time.Duration // since the request was sent
	id, event, data string
	comment, retry  string
	hasID           bool
	isComment       bool
	isEvent         bool // it has an event or data field
}

// sseStream reads a watch stream as EventSource would, block by block, and
// records how it ended: err is nil for a clean end (the whole chunked body
// and nothing after the last blank line), else what went wrong.
type sseStream struct {
	resp  *http.Response
	sent  time.Time
	items chan sseItem
	ended chan struct{}
	endAt time.Duration
	err   error
	tail  string // bytes after the last complete block
}

// openWatch sends GET url with the bearer token, Accept: text/event-stream
// (as EventSource and the Go client do) and Last-Event-ID when lastID is not
// empty, and expects a 200 text/event-stream answer within 2 s.
func openWatch(t *testing.T, url, lastID string) *sseStream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+platformToken)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	s := &sseStream{sent: time.Now(), items: make(chan sseItem, 64), ended: make(chan struct{})}
	got := make(chan error, 1)
	go func() {
		resp, err := http.DefaultTransport.RoundTrip(req)
		s.resp = resp
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("GET %s: no answer headers within 2s: the stream is held back", url)
	}
	if s.resp.StatusCode != http.StatusOK || !strings.HasPrefix(s.resp.Header.Get("Content-Type"), "text/event-stream") {
		body, _ := io.ReadAll(io.LimitReader(s.resp.Body, 4096))
		s.resp.Body.Close()
		t.Fatalf("GET %s: %d %s %s; want 200 text/event-stream", url, s.resp.StatusCode, s.resp.Header.Get("Content-Type"), body)
	}
	go s.read()
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() { s.resp.Body.Close() }

// read splits the body into blocks at blank lines, as the SSE format does.
func (s *sseStream) read() {
	defer close(s.ended)
	defer close(s.items)
	r := bufio.NewReader(s.resp.Body)
	var block []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			s.endAt = time.Since(s.sent)
			s.tail = strings.Join(append(block, line), "\n")
			switch {
			case !errors.Is(err, io.EOF):
				s.err = fmt.Errorf("reading the stream: %w", err)
			case s.tail != "":
				s.err = fmt.Errorf("the stream ended inside an event: %q", s.tail)
			}
			return
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line != "" {
			block = append(block, line)
			continue
		}
		if len(block) > 0 {
			s.items <- parseBlock(block, time.Since(s.sent))
		}
		block = nil
	}
}

func parseBlock(lines []string, at time.Duration) sseItem {
	it := sseItem{at: at}
	for _, l := range lines {
		if c, ok := strings.CutPrefix(l, ":"); ok {
			it.comment, it.isComment = strings.TrimSpace(c), true
			continue
		}
		name, value, _ := strings.Cut(l, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			it.id, it.hasID = value, true
		case "event":
			it.event, it.isEvent = value, true
		case "data":
			it.data, it.isEvent = it.data+value, true
		case "retry":
			it.retry = value
		}
	}
	return it
}

// next returns the next block, or fails when none comes by the deadline
// (counted from the request) or the stream ends first.
func (s *sseStream) next(t *testing.T, by time.Duration, what string) sseItem {
	t.Helper()
	timer := time.NewTimer(time.Until(s.sent.Add(by)))
	defer timer.Stop()
	var it sseItem
	var ok bool
	select {
	case it, ok = <-s.items:
	case <-timer.C:
		select { // a block that came just in time still counts
		case it, ok = <-s.items:
		default:
			t.Fatalf("no %s within %v of the request", what, by)
		}
	}
	if !ok {
		<-s.ended
		t.Fatalf("waiting for %s: the stream ended after %v (%v)", what, s.endAt.Round(time.Millisecond), s.err)
	}
	return it
}

// nextEvent skips comments and retry blocks, recording them in seen.
func (s *sseStream) nextEvent(t *testing.T, by time.Duration, what string, seen *[]sseItem) sseItem {
	t.Helper()
	for {
		it := s.next(t, by, what)
		if it.isEvent {
			return it
		}
		if seen != nil {
			*seen = append(*seen, it)
		}
	}
}

// watchEvent is an event's data.
type watchEvent struct {
	Event string `json:"event"`
	ID    string `json:"id"`
	State int    `json:"state"`
	Fence int64  `json:"fence"`
	TTLms int64  `json:"ttl_ms"`
}

func decodeEvent(t *testing.T, it sseItem, kind, id string) watchEvent {
	t.Helper()
	var e watchEvent
	var fields map[string]json.RawMessage
	if json.Unmarshal([]byte(it.data), &e) != nil || json.Unmarshal([]byte(it.data), &fields) != nil {
		t.Fatalf("event data is not JSON: %q", it.data)
	}
	if it.event != kind || e.Event != kind || e.ID != id || !it.hasID || it.id == "" {
		t.Fatalf("event %q id %q data %s; want a %s event of %s with an id", it.event, it.id, it.data, kind, id)
	}
	if _, ok := fields["owner"]; ok {
		t.Fatalf("event %s shows an owner", it.data)
	}
	return e
}

// checkWatchStream watches id through base, a server whose request deadline
// is deadline, and holds the stream to what docs/API.md promises: the state
// at once, an acquire through the same server within a second, a keepalive
// comment every 15 s, and a clean end (a whole last event, no error) a
// margin before the deadline, so that EventSource reconnects by itself;
// then a reconnection with Last-Event-ID gets the release made meanwhile
// before the fresh state. out is the server's output, which must show no
// error of the platform's.
func checkWatchStream(t *testing.T, base, id string, deadline time.Duration, out *syncBuffer) {
	t.Helper()
	lifetime := deadline - api.Margin(deadline)
	url := base + "/watch/" + pathEscape(id)
	w := openWatch(t, url, "")
	var others []sseItem
	state := decodeEvent(t, w.nextEvent(t, time.Second, "state event", &others), "state", id)
	if state.State != 0 {
		t.Fatalf("state of a fresh lock: %+v", state)
	}
	if len(others) == 0 || others[0].retry != "500" {
		t.Fatalf("the stream starts with %+v; want a retry field (500 ms) for EventSource", others)
	}
	t.Logf("state after %v", time.Since(w.sent).Round(time.Millisecond))

	acquiredAt := time.Since(w.sent)
	code, body := get(t, base+"/acquire/"+pathEscape(id)+"?ttl=5m", platformToken)
	grant := decodeEnvelope(t, body)
	if code != http.StatusOK || !grant.Success {
		t.Fatalf("acquire %s: %d %s", id, code, body)
	}
	it := w.nextEvent(t, acquiredAt+time.Second, "acquired event within 1s of the acquire", nil)
	acquired := decodeEvent(t, it, "acquired", id)
	if acquired.Fence != grant.Data.Fence || acquired.State != 1 || acquired.TTLms <= 0 {
		t.Fatalf("acquired event %s; want state 1 and the grant's fence %d", it.data, grant.Data.Fence)
	}
	t.Logf("acquired event %v after the acquire was sent", (it.at - acquiredAt).Round(time.Millisecond))

	// Nothing else happens to the lock: until the stream ends only
	// keepalive comments may come.
	var keepalives []time.Duration
	for b := range w.items {
		if !b.isComment || b.comment != "keepalive" {
			t.Fatalf("unexpected block after %v: %+v", b.at.Round(time.Millisecond), b)
		}
		keepalives = append(keepalives, b.at)
	}
	<-w.ended
	if w.err != nil {
		t.Fatalf("the stream did not end cleanly after %v: %v", w.endAt.Round(time.Millisecond), w.err)
	}
	if w.endAt >= deadline || w.endAt < lifetime-time.Second {
		t.Fatalf("the stream ended %v after the request; want it to end by itself about %v in, before the platform's %v deadline", w.endAt.Round(time.Millisecond), lifetime, deadline)
	}
	t.Logf("clean end after %v (deadline %v); keepalives at %v", w.endAt.Round(time.Millisecond), deadline, keepalives)
	if lifetime > keepaliveEvery+500*time.Millisecond {
		if len(keepalives) == 0 || keepalives[0] < keepaliveEvery-time.Second || keepalives[0] > keepaliveEvery+1500*time.Millisecond {
			t.Fatalf("keepalive comments at %v; want the first about %v after the request", keepalives, keepaliveEvery)
		}
	}
	for _, bad := range []string{"panic", "superfluous", "Error copying", "Upstream HTTP"} {
		if strings.Contains(out.String(), bad) {
			t.Fatalf("the platform's output shows %q:\n%s", bad, out.String())
		}
	}

	// The lock is released while nobody watches; the reconnection names the
	// last event seen and gets the release first.
	code, body = get(t, base+"/release/"+pathEscape(id)+"?owner="+grant.Data.Owner, platformToken)
	if code != http.StatusOK {
		t.Fatalf("release %s: %d %s", id, code, body)
	}
	again := openWatch(t, url, it.id)
	// The release's change message may reach the instance a moment after
	// the reconnection (the release answered first): it then comes live
	// right after the fresh state instead of replayed before it. Either
	// way the watcher misses nothing.
	rit := again.nextEvent(t, time.Second, "replayed released event or fresh state", nil)
	if rit.event == "state" {
		if st := decodeEvent(t, rit, "state", id); st.State != 0 {
			t.Fatalf("state after reconnecting: %+v", st)
		}
		rit = again.nextEvent(t, time.Second, "the release, live after the fresh state", nil)
		checkReleased(t, rit, id, it.id, grant.Data.Fence)
		t.Logf("the release came live after the fresh state")
	} else {
		checkReleased(t, rit, id, it.id, grant.Data.Fence)
		if st := decodeEvent(t, again.nextEvent(t, time.Second, "state after the replay", nil), "state", id); st.State != 0 {
			t.Fatalf("state after the replay: %+v", st)
		}
	}
	again.close()
}

// checkReleased holds rit, the first event after reconnecting with
// Last-Event-ID lastID, to be the release of fence.
func checkReleased(t *testing.T, rit sseItem, id, lastID string, fence int64) {
	t.Helper()
	released := decodeEvent(t, rit, "released", id)
	if released.Fence != fence || released.State != 0 || rit.id == lastID {
		t.Fatalf("after reconnecting with Last-Event-ID %s: id %s %s; want the release of fence %d", lastID, rit.id, rit.data, fence)
	}
}

// checkWatchNeedsAccept sends a watch without Accept: text/event-stream
// (curl's */*, or none) through base and expects a prompt 400 that names
// the header: the watchdog, and the gateway, would hold such a stream back
// until it ends.
func checkWatchNeedsAccept(t *testing.T, base, id string) {
	t.Helper()
	for _, accept := range []string{"", "*/*", "application/json, text/event-stream"} {
		req, err := http.NewRequest(http.MethodGet, base+"/watch/"+pathEscape(id), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+platformToken)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		c := &http.Client{Timeout: 3 * time.Second}
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("watch with Accept %q: no whole answer within 3s (%v): the watchdog holds the stream back until it ends", accept, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("watch with Accept %q: %d, then no whole body within 3s (%v): the watchdog holds the stream back until it ends", accept, resp.StatusCode, err)
		}
		var env envelope
		if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(body, &env) != nil || env.Code != api.CodeBadRequest || !strings.Contains(env.Error, "Accept: text/event-stream") {
			t.Fatalf("watch with Accept %q: %d %s after %v; want a 400 naming Accept: text/event-stream", accept, resp.StatusCode, bytes.TrimSpace(body), time.Since(start).Round(time.Millisecond))
		}
	}
}

// checkWatchersLeaving opens n watches through base one after the other,
// each closed by its caller once the state came, as a closed browser tab
// or a stopped `candado watch` does, and then expects the service to
// answer and to be ready: no slot of a proxy in front stays taken.
func checkWatchersLeaving(t *testing.T, base, id string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		t.Logf("watcher %d of %d", i+1, n)
		w := openWatch(t, base+"/watch/"+pathEscape(id), "")
		decodeEvent(t, w.nextEvent(t, 2*time.Second, "state event", nil), "state", id)
		w.close()
		<-w.ended
	}
	time.Sleep(200 * time.Millisecond)
	code, body, err := tryGet(base+"/acquire/"+pathEscape(id)+"?ttl=5s", platformToken, 5*time.Second)
	if err != nil || code != http.StatusOK {
		t.Fatalf("acquire after %d watchers left: %d %s %v; want 200", n, code, bytes.TrimSpace(body), err)
	}
	if code, body, err := tryGet(base+"/_/ready", "", 5*time.Second); err != nil || code != http.StatusOK {
		t.Fatalf("/_/ready after %d watchers left: %d %s %v; want 200", n, code, bytes.TrimSpace(body), err)
	}
}
