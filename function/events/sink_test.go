package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"handler/function/function"
	"handler/function/function/events"
	"handler/function/function/lock"
)

// received is one POST to a test sink.
type received struct {
	header http.Header
	body   []byte
}

// newReceiver is a sink that records every POST and answers 202.
func newReceiver(t *testing.T) (*httptest.Server, <-chan received) {
	t.Helper()
	got := make(chan received, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost {
			t.Errorf("sink got %s, want POST", r.Method)
		}
		got <- received{header: r.Header.Clone(), body: b}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// newHanging is a sink that never answers, until the test ends or the
// client gives up.
func newHanging(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// With the body read, the server notices when the client hangs up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	return srv
}

func next(t *testing.T, got <-chan received) received {
	t.Helper()
	select {
	case r := <-got:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no notification reached the sink")
		return received{}
	}
}

// checkNotification checks a binary-mode CloudEvent of type typ about lock
// id and returns its data.
func checkNotification(t *testing.T, r received, typ, id, src string) map[string]any {
	t.Helper()
	h := r.header
	for name, want := range map[string]string{
		"Ce-Specversion": "1.0",
		"Ce-Type":        typ,
		"Ce-Subject":     id,
		"Ce-Source":      src,
		"Content-Type":   "application/json",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s: %s = %q, want %q", typ, name, got, want)
		}
	}
	if _, err := uuid.Parse(h.Get("Ce-Id")); err != nil {
		t.Errorf("%s: Ce-Id %q is not a UUID: %v", typ, h.Get("Ce-Id"), err)
	}
	if ts, err := time.Parse(time.RFC3339Nano, h.Get("Ce-Time")); err != nil || time.Since(ts) > time.Minute {
		t.Errorf("%s: Ce-Time %q: %v", typ, h.Get("Ce-Time"), err)
	}
	var data map[string]any
	if err := json.Unmarshal(r.body, &data); err != nil {
		t.Fatalf("%s: data %s: %v", typ, r.body, err)
	}
	if len(data) != 3 || data["id"] != id {
		t.Errorf("%s: data %s, want exactly id, fence and ttl_ms, id %q", typ, r.body, id)
	}
	if _, ok := data["owner"]; ok {
		t.Errorf("%s: data %s carries the owner", typ, r.body)
	}
	return data
}

func closeSink(t *testing.T, s *events.Sink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestSinkNotifies(t *testing.T) {
	srv, got := newReceiver(t)
	s := events.NewSink(srv.URL+"/hook", "/candado/test", nil)
	s.Notify(events.TypeAcquired, lock.Lease{ID: "orders/42", Held: true, Owner: "secret-owner", Fence: 7, TTL: 1500 * time.Millisecond})
	s.Notify(events.TypeReleased, lock.Lease{ID: "orders/42", Owner: "secret-owner", Fence: 7})

	a := next(t, got)
	d := checkNotification(t, a, events.TypeAcquired, "orders/42", "/candado/test")
	if d["fence"] != float64(7) || d["ttl_ms"] != float64(1500) {
		t.Errorf("acquired data %s, want fence 7 and ttl_ms 1500", a.body)
	}
	r := next(t, got)
	d = checkNotification(t, r, events.TypeReleased, "orders/42", "/candado/test")
	if d["fence"] != float64(7) || d["ttl_ms"] != float64(0) {
		t.Errorf("released data %s, want fence 7 and ttl_ms 0", r.body)
	}
	if a.header.Get("Ce-Id") == r.header.Get("Ce-Id") {
		t.Error("two notifications share a Ce-Id")
	}
	for _, m := range []received{a, r} {
		if strings.Contains(string(m.body), "secret-owner") || strings.Contains(headerText(m.header), "secret-owner") {
			t.Errorf("the owner token reached the sink: %v %s", m.header, m.body)
		}
	}
	closeSink(t, s)
	if s.Sent() != 2 || s.Failed() != 0 || s.Dropped() != 0 {
		t.Errorf("sent %d, failed %d, dropped %d; want 2, 0, 0", s.Sent(), s.Failed(), s.Dropped())
	}
	s.Notify(events.TypeAcquired, lock.Lease{ID: "late"})
	if s.Dropped() != 1 {
		t.Errorf("Notify after Close: dropped %d, want 1", s.Dropped())
	}
}

func headerText(h http.Header) string {
	var b strings.Builder
	_ = h.Write(&b)
	return b.String()
}

func TestSinkFailuresCounted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer srv.Close()
	s := events.NewSink(srv.URL, "/candado", nil)
	s.Notify(events.TypeAcquired, lock.Lease{ID: "a", Fence: 1})
	s.Notify(events.TypeReleased, lock.Lease{ID: "a", Fence: 1})
	closeSink(t, s)
	if s.Failed() != 2 || s.Sent() != 0 {
		t.Errorf("failed %d, sent %d; want 2, 0 (one attempt each, no retries)", s.Failed(), s.Sent())
	}
}

func TestSinkFullQueueDrops(t *testing.T) {
	srv := newHanging(t)
	s := events.NewSink(srv.URL, "/candado", nil)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = s.Close(ctx)
	}()
	const n = 5000
	start := time.Now()
	for i := range n {
		s.Notify(events.TypeAcquired, lock.Lease{ID: "busy", Fence: int64(i)})
	}
	took := time.Since(start)
	if took > 50*time.Millisecond {
		t.Errorf("%d Notify calls took %s against a sink that never answers; want them not to block", n, took)
	}
	t.Logf("%d Notify calls took %s; dropped %d", n, took, s.Dropped())
	if d := s.Dropped(); d == 0 || d > n-events.SinkQueue {
		t.Errorf("dropped %d, want between 1 and %d", d, n-events.SinkQueue)
	}
}

func TestSinkCloseBoundedByContext(t *testing.T) {
	srv := newHanging(t)
	base := runtime.NumGoroutine()
	s := events.NewSink(srv.URL, "/candado", nil)
	for range 10 {
		s.Notify(events.TypeAcquired, lock.Lease{ID: "stuck", Fence: 1})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Close(ctx)
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %s against a hanging sink, want about its ctx's 100ms", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want the ctx's deadline", err)
	}
	if s.Sent() != 0 || s.Dropped()+s.Failed() != 10 {
		t.Errorf("sent %d, failed %d, dropped %d; want 0 sent and all 10 failed or dropped", s.Sent(), s.Failed(), s.Dropped())
	}
	waitGoroutines(t, base)
	if err := s.Close(ctx); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

func TestSinkNoGoroutineBeforeUseOrAfterClose(t *testing.T) {
	srv, got := newReceiver(t)
	base := runtime.NumGoroutine()
	s := events.NewSink(srv.URL, "/candado", nil)
	if g := runtime.NumGoroutine(); g > base {
		t.Errorf("NewSink started %d goroutines", g-base)
	}
	closeSink(t, s) // never started: nothing to stop
	s.Notify(events.TypeAcquired, lock.Lease{ID: "x"})
	if g := runtime.NumGoroutine(); g > base {
		t.Errorf("Notify after Close started %d goroutines", g-base)
	}

	s = events.NewSink(srv.URL, "/candado", nil)
	s.Notify(events.TypeAcquired, lock.Lease{ID: "x", Fence: 1})
	next(t, got)
	closeSink(t, s)
	waitGoroutines(t, base)
}

// waitGoroutines waits briefly for the goroutine count to come back to base.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	var g int
	for range 200 {
		if g = runtime.NumGoroutine(); g <= base {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	t.Errorf("%d goroutines left after Close, want at most %d:\n%s", g, base, buf[:runtime.Stack(buf, true)])
}

func TestServiceNotifiesSink(t *testing.T) {
	sink, got := newReceiver(t)
	srv, _ := newServer(t, func(c *function.Config) { c.EventSink = sink.URL })
	post := func(path, body string) envelope {
		t.Helper()
		resp, err := srv.Client().Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
		}
		return readEnvelope(t, resp)
	}
	acq := post("/acquire/jobs/nightly", `{"owner":"tok-123456","ttl":"5s"}`)
	a := next(t, got)
	d := checkNotification(t, a, events.TypeAcquired, "jobs/nightly", "/candado")
	if d["fence"] != float64(acq.Data.Fence) || d["ttl_ms"] != float64(5000) {
		t.Errorf("acquired data %s, want fence %d and ttl_ms 5000", a.body, acq.Data.Fence)
	}

	held := func() {
		resp, err := srv.Client().Post(srv.URL+"/acquire/jobs/nightly", "application/json", strings.NewReader(`{"owner":"other-owner"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict {
			t.Fatalf("acquire by another owner: %d, want 409", resp.StatusCode)
		}
	}
	held() // a refusal notifies nothing

	post("/release/jobs/nightly", `{"owner":"tok-123456"}`)
	r := next(t, got)
	d = checkNotification(t, r, events.TypeReleased, "jobs/nightly", "/candado")
	if d["fence"] != float64(acq.Data.Fence) {
		t.Errorf("released data %s, want fence %d", r.body, acq.Data.Fence)
	}

	// CloudEvents calls notify too.
	resp, _, reply := send(t, srv.URL, newEvent(events.TypeAcquire, "jobs/ce", `{"ttl":"2s"}`), false)
	if resp.StatusCode != http.StatusOK || reply == nil || reply.Type() != events.TypeAcquired {
		t.Fatalf("CloudEvents acquire: %d %v", resp.StatusCode, reply)
	}
	checkNotification(t, next(t, got), events.TypeAcquired, "jobs/ce", "/candado")

	for _, m := range []received{a, r} {
		if strings.Contains(string(m.body), "tok-123456") || strings.Contains(headerText(m.header), "tok-123456") {
			t.Errorf("the owner token reached the sink: %v %s", m.header, m.body)
		}
	}
	select {
	case extra := <-got:
		t.Errorf("unexpected notification %v %s", extra.header, extra.body)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestConfigEventSink(t *testing.T) {
	good := function.Config{Port: 8080, RedisMode: function.ModeSingle, KeyPrefix: "candado:", DefaultTTL: time.Second,
		MaxTTL: time.Hour, EventSource: "/candado", BackendTimeout: time.Second}
	for _, u := range []string{"", "http://observer:8080/hook", "https://user:pw@example.com/x?y=1"} {
		c := good
		c.EventSink = u
		if err := c.Validate(); err != nil {
			t.Errorf("EventSink %q: %v", u, err)
		}
	}
	for _, u := range []string{"observer:8080", "/hook", "ftp://example.com/", "http://", "https:///path", "http://%zz", "redis://host:6379"} {
		c := good
		c.EventSink = u
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "CANDADO_EVENT_SINK") {
			t.Errorf("EventSink %q: Validate = %v, want an error naming CANDADO_EVENT_SINK", u, err)
		}
	}
}
