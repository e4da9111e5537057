//go:build integration

package function

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"handler/function/function/redistest"
)

const watchToken = "watch-token"

// startOn serves a Service on the Redis at url, with a bearer token.
func startOn(t *testing.T, url string, edit func(*Config)) *httptest.Server {
	t.Helper()
	cfg := testConfig(url)
	cfg.AuthToken = watchToken
	cfg.BackendTimeout = 2 * time.Second
	cfg.MaxWatchers = 100
	if edit != nil {
		edit(&cfg)
	}
	svc, err := NewService(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(func() { svc.Shutdown(); srv.Close(); svc.Close() })
	return srv
}

// sse is one event a test watcher received, and when.
type sse struct {
	ID, Event string
	Data      map[string]any
	At        time.Time
}

func (e sse) num(k string) int64 { f, _ := e.Data[k].(float64); return int64(f) }

// stream is an open watch.
type stream struct {
	events chan sse
	ended  chan struct{}
	resp   *http.Response
}

// openWatch opens path on srv as an event stream; lastID, if set, is sent
// as Last-Event-ID.
func openWatch(t *testing.T, srv *httptest.Server, path, lastID string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+watchToken)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: %d %s %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	s := &stream{events: make(chan sse, 1000), ended: make(chan struct{}), resp: resp}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	go func() {
		defer close(s.ended)
		sc := bufio.NewScanner(resp.Body)
		var cur sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if cur.Event != "" {
					cur.At = time.Now()
					s.events <- cur
				}
				cur = sse{}
			case strings.HasPrefix(line, "id: "):
				cur.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				cur.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(line[6:]), &cur.Data)
			}
		}
	}()
	return s
}

// next is the stream's next event, within 5 s.
func (s *stream) next(t *testing.T) sse {
	t.Helper()
	select {
	case e := <-s.events:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return sse{}
}

func (s *stream) expect(t *testing.T, kind, id string) sse {
	t.Helper()
	e := s.next(t)
	if e.Event != kind || e.Data["event"] != kind || e.Data["id"] != id {
		t.Fatalf("got event %s %v, want %s of %s", e.Event, e.Data, kind, id)
	}
	if _, ok := e.Data["owner"]; ok {
		t.Fatalf("event %v carries the owner", e.Data)
	}
	return e
}

func authed(t *testing.T, srv *httptest.Server, method, path, body string) answer {
	t.Helper()
	return call(t, srv, method, path, body, "Authorization", "Bearer "+watchToken)
}

func TestWatchSeesEveryChangeFromAnotherInstance(t *testing.T) {
	r := redistest.Start(t)
	a, b := startOn(t, r.URL(), nil), startOn(t, r.URL(), nil)
	w := openWatch(t, b, "/watch/jobs/1", "")
	if first := w.expect(t, "state", "jobs/1"); first.num("state") != 0 {
		t.Fatalf("first event %v: want the free state", first.Data)
	}
	var lat []time.Duration
	sent := time.Now()
	acq := authed(t, a, "POST", "/acquire/jobs/1", `{"owner":"o1","ttl":"5s"}`).want(t, 200, "")
	e := w.expect(t, "acquired", "jobs/1")
	lat = append(lat, e.At.Sub(sent))
	if e.num("fence") != acq.Data.Fence || e.num("state") != 1 || e.num("ttl_ms") != 5000 {
		t.Fatalf("acquired %v, want fence %d, state 1, ttl 5000", e.Data, acq.Data.Fence)
	}
	authed(t, a, "POST", "/heartbeat/jobs/1", `{"owner":"o1","ttl":"7s"}`).want(t, 200, "")
	if e := w.expect(t, "extended", "jobs/1"); e.num("ttl_ms") != 7000 {
		t.Fatalf("extended %v", e.Data)
	}
	sent = time.Now()
	authed(t, a, "POST", "/release/jobs/1", `{"owner":"o1"}`).want(t, 200, "")
	e = w.expect(t, "released", "jobs/1")
	lat = append(lat, e.At.Sub(sent))
	if e.num("state") != 0 || e.num("fence") != acq.Data.Fence {
		t.Fatalf("released %v", e.Data)
	}

	// Revoke through b, the watcher's own instance.
	acq = authed(t, a, "POST", "/acquire/jobs/1", `{"owner":"o2","ttl":"1m"}`).want(t, 200, "")
	w.expect(t, "acquired", "jobs/1")
	authed(t, b, "POST", "/locks/jobs/1/revoke", "").want(t, 200, "")
	if e := w.expect(t, "revoked", "jobs/1"); e.num("fence") != acq.Data.Fence || e.num("state") != 0 {
		t.Fatalf("revoked %v", e.Data)
	}
	authed(t, a, "POST", "/heartbeat/jobs/1", `{"owner":"o2"}`).want(t, 409, "not_held")
	t.Logf("event latency, request sent to event seen on the other instance: acquire %v, release %v", lat[0], lat[1])
}

func TestWatchReportsExpiryWithin100ms(t *testing.T) {
	r := redistest.Start(t)
	a, b := startOn(t, r.URL(), nil), startOn(t, r.URL(), nil)
	w := openWatch(t, b, "/watch?prefix=exp/", "")
	if snap := w.next(t); snap.Event != "snapshot" || len(snap.Data["locks"].([]any)) != 0 {
		t.Fatalf("first event %v, want an empty snapshot", snap)
	}
	var late []time.Duration
	for i := 0; i < 10; i++ {
		sent := time.Now()
		authed(t, a, "POST", "/acquire/exp/x", `{"owner":"o","ttl":"300ms"}`).want(t, 200, "")
		w.expect(t, "acquired", "exp/x")
		e := w.expect(t, "expired", "exp/x")
		// The lease ended no earlier than sent+300ms, so this bounds the
		// delay from above.
		late = append(late, e.At.Sub(sent.Add(300*time.Millisecond)))
	}
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	t.Logf("expiry reported after the lease's end: min %v, median %v, max %v", late[0], late[len(late)/2], late[len(late)-1])
	// 100 ms is the promise; the bound leaves room for a loaded machine.
	if late[len(late)/2] > 100*time.Millisecond || late[len(late)-1] > 500*time.Millisecond {
		t.Fatalf("expiry delays %v: median over 100ms or one over 500ms", late)
	}
}

func TestWatchPrefixSnapshotListsHeldLocks(t *testing.T) {
	r := redistest.Start(t)
	a := startOn(t, r.URL(), nil)
	authed(t, a, "POST", "/acquire/p/1", `{"owner":"o","ttl":"1m"}`).want(t, 200, "")
	authed(t, a, "POST", "/acquire/p/2", `{"owner":"o","ttl":"1m"}`).want(t, 200, "")
	authed(t, a, "POST", "/acquire/q/1", `{"owner":"o","ttl":"1m"}`).want(t, 200, "")
	w := openWatch(t, a, "/watch?prefix=p/", "")
	snap := w.next(t)
	locks, _ := snap.Data["locks"].([]any)
	if snap.Event != "snapshot" || len(locks) != 2 {
		t.Fatalf("snapshot %v: want p/1 and p/2", snap.Data)
	}
	authed(t, a, "POST", "/acquire/q/2", `{"owner":"o","ttl":"1m"}`).want(t, 200, "")
	authed(t, a, "POST", "/acquire/p/3", `{"owner":"o","ttl":"1m"}`).want(t, 200, "")
	w.expect(t, "acquired", "p/3") // q/2 is not under the prefix
}

func TestWatchEndsBeforeTheDeadlineAndResumesFromLastEventID(t *testing.T) {
	r := redistest.Start(t)
	// A 2 s deadline: streams end after 2s - Margin(2s) = 1s.
	a := startOn(t, r.URL(), func(c *Config) { c.Deadline = 2 * time.Second })
	start := time.Now()
	w := openWatch(t, a, "/watch/d", "")
	w.expect(t, "state", "d")
	authed(t, a, "POST", "/acquire/d", `{"owner":"o","ttl":"1m"}`).want(t, 200, "")
	last := w.expect(t, "acquired", "d")
	select {
	case <-w.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end before the 2s deadline")
	}
	if d := time.Since(start); d >= 2*time.Second {
		t.Fatalf("stream lasted %v, past the 2s deadline", d)
	}
	// Changes while the watcher is away are replayed on reconnection.
	authed(t, a, "POST", "/heartbeat/d", `{"owner":"o","ttl":"2m"}`).want(t, 200, "")
	authed(t, a, "POST", "/release/d", `{"owner":"o"}`).want(t, 200, "")
	// The changes made meanwhile come replayed before the fresh state, or,
	// when their messages reach this instance only after the reconnection,
	// live right after it: either way none is missed, in order.
	w2 := openWatch(t, a, "/watch/d", last.ID)
	var changes []string
	sawState := false
	for !sawState || len(changes) < 2 {
		e := w2.next(t)
		switch e.Event {
		case "state":
			sawState = true
			if len(changes) == 2 && e.num("state") != 0 {
				t.Fatalf("state after the replayed release %v, want free", e.Data)
			}
		default:
			changes = append(changes, e.Event)
		}
	}
	if !slices.Equal(changes, []string{"extended", "released"}) {
		t.Fatalf("changes after reconnecting: %v; want extended, then released", changes)
	}
}

func TestWatchersAreCappedPerIdentity(t *testing.T) {
	r := redistest.Start(t)
	a := startOn(t, r.URL(), func(c *Config) { c.MaxWatchersPerIdentity = 1 })
	w := openWatch(t, a, "/watch/c", "")
	w.expect(t, "state", "c")
	authed(t, a, "GET", "/watch/d", "").want(t, 429, "too_many_watchers")
}

func TestWatchersAreCappedPerInstance(t *testing.T) {
	r := redistest.Start(t)
	a := startOn(t, r.URL(), func(c *Config) { c.MaxWatchers = 1 })
	w := openWatch(t, a, "/watch/c", "")
	w.expect(t, "state", "c")
	req, _ := http.NewRequest("GET", a.URL+"/watch/c", nil)
	req.Header.Set("Authorization", "Bearer "+watchToken)
	resp, err := a.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), "too many watchers") {
		t.Fatalf("second watcher: %d %s, want 503 too many watchers", resp.StatusCode, body)
	}
}

func TestListAndRevokeRoutes(t *testing.T) {
	r := redistest.Start(t)
	a := startOn(t, r.URL(), nil)
	for _, id := range []string{"l/1", "l/2", "l/3"} {
		authed(t, a, "POST", "/acquire/"+id, `{"owner":"o","ttl":"1m"}`).want(t, 200, "")
	}
	var seen []string
	cursor := ""
	for i := 0; ; i++ {
		ans := authed(t, a, "GET", "/locks?prefix=l/&limit=2&cursor="+cursor, "").want(t, 200, "")
		var d struct {
			Locks  []map[string]any `json:"locks"`
			Cursor string           `json:"cursor"`
		}
		if err := json.Unmarshal(ans.Env.Data, &d); err != nil {
			t.Fatal(err)
		}
		for _, l := range d.Locks {
			if _, ok := l["owner"]; ok {
				t.Fatalf("listing shows an owner: %v", l)
			}
			seen = append(seen, l["id"].(string))
		}
		if cursor = d.Cursor; cursor == "" || i > 10 {
			break
		}
	}
	sort.Strings(seen)
	if strings.Join(seen, ",") != "l/1,l/2,l/3" {
		t.Fatalf("listed %v", seen)
	}
	authed(t, a, "GET", "/locks?limit=0", "").want(t, 400, "bad_request")
	authed(t, a, "GET", "/locks?cursor=zz", "").want(t, 400, "bad_request")
	authed(t, a, "POST", "/locks/l/1/revoke", "").want(t, 200, "")
	authed(t, a, "POST", "/locks/l/1/revoke", "").want(t, 409, "not_held")
	authed(t, a, "POST", "/heartbeat/l/1", `{"owner":"o"}`).want(t, 409, "not_held")

	// With access off every caller has every verb, revoke included.
	open := startOn(t, r.URL(), func(c *Config) { c.AuthToken = "" })
	call(t, open, "POST", "/locks/l/2/revoke", "").want(t, 200, "")
}
