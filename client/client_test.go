package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/candado-dev/candado/client"
)

func newClient(t *testing.T, f *fake, o *client.Options) *client.Client {
	t.Helper()
	if o == nil {
		o = &client.Options{}
	}
	if o.RetryBackoff == 0 {
		o.RetryBackoff = 5 * time.Millisecond
		o.MaxBackoff = 20 * time.Millisecond
	}
	c, err := client.New(f.URL, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestAcquireRelease(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f, nil)
	ctx := ctxT(t, 5*time.Second)

	l, err := c.Acquire(ctx, "orders/42", &client.AcquireOptions{TTL: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if l.ID() != "orders/42" || l.Fence() != 1 || l.TTL() != 30*time.Second || l.Err() != nil {
		t.Fatalf("lease %q fence %d ttl %v err %v", l.ID(), l.Fence(), l.TTL(), l.Err())
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(l.Owner()) {
		t.Fatalf("owner %q is not 128 bits of hex", l.Owner())
	}
	if f.path(0) != "/acquire/orders/42" || f.body(0) != `{"owner":"`+l.Owner()+`","ttl":30000}` {
		t.Fatalf("request %s %s", f.path(0), f.body(0))
	}
	st, err := c.Inspect(ctx, "orders/42")
	if err != nil || !st.Held || st.Fence != 1 || st.Owner != "" || st.TTL <= 29*time.Second {
		t.Fatalf("inspect %+v %v", st, err)
	}
	select {
	case <-l.Done():
		t.Fatal("done while live")
	default:
	}

	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	<-l.Done()
	if !errors.Is(l.Err(), client.ErrReleased) {
		t.Fatalf("err after release %v", l.Err())
	}
	if err := l.Release(ctx); !errors.Is(err, client.ErrReleased) {
		t.Fatalf("second release %v", err)
	}
	if err := l.Heartbeat(ctx); !errors.Is(err, client.ErrReleased) {
		t.Fatalf("heartbeat after release %v", err)
	}
	if st, err := c.Inspect(ctx, "orders/42"); err != nil || st.Held || st.Fence != 1 {
		t.Fatalf("inspect after release %+v %v", st, err)
	}
	l2, err := c.Acquire(ctx, "orders/42", nil)
	if err != nil || l2.Fence() != 2 || l2.TTL() != 30*time.Second {
		t.Fatalf("reacquire %v %v", l2, err)
	}
}

func TestHeld(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f, nil)
	ctx := ctxT(t, 5*time.Second)
	a, err := c.Acquire(ctx, "job", &client.AcquireOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Acquire(ctx, "job", &client.AcquireOptions{TTL: time.Minute})
	if !errors.Is(err, client.ErrHeld) {
		t.Fatalf("want ErrHeld, got %v", err)
	}
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 409 || ae.Code != "held" || ae.Lock == nil || ae.Lock.Fence != a.Fence() || ae.Lock.Owner != "" {
		t.Fatalf("APIError %+v", ae)
	}
	if errors.Is(err, client.ErrNotHeld) || errors.Is(err, client.ErrUnavailable) {
		t.Fatal("held matches other sentinels")
	}
	if n := f.count("acquire"); n != 2 {
		t.Fatalf("409 was retried: %d acquires", n)
	}

	// Wait: the server waits for the release; a short HTTP client timeout
	// must not cut the request.
	c2 := newClient(t, f, &client.Options{HTTPClient: &http.Client{Timeout: 50 * time.Millisecond}, RequestTimeout: 50 * time.Millisecond})
	go func() {
		time.Sleep(150 * time.Millisecond)
		_ = a.Release(ctx)
	}()
	b, err := c2.Acquire(ctx, "job", &client.AcquireOptions{TTL: time.Minute, Wait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if b.Fence() != a.Fence()+1 {
		t.Fatalf("fence %d after %d", b.Fence(), a.Fence())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !strings.Contains(strings.Join(f.bodies, "\n"), `"ttl":60000,"wait":20`) {
		t.Fatalf("no wait sent: %s", f.bodies)
	}
}

func TestRetryOn503(t *testing.T) {
	f := newFake(t)
	f.unavailable = 3
	c := newClient(t, f, nil)
	l, err := c.Acquire(ctxT(t, 5*time.Second), "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := f.count("acquire"); n != 4 || l.Fence() != 1 {
		t.Fatalf("%d tries, fence %d", n, l.Fence())
	}
}

func TestRetryAfterIsAFloor(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.unavailable, f.retryAfter = 1, "1"
	c := newClient(t, f, nil)
	start := time.Now()
	if _, err := c.Inspect(ctxT(t, 5*time.Second), "a"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("retried after %v, before Retry-After", d)
	}
}

func TestRetryStopsAtDeadline(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.unavailable = 1 << 30
	c := newClient(t, f, nil)
	start := time.Now()
	_, err := c.Acquire(ctxT(t, 300*time.Millisecond), "a", nil)
	d := time.Since(start)
	if !errors.Is(err, client.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 503 {
		t.Fatalf("no APIError in %v", err)
	}
	if d > 600*time.Millisecond || f.count("acquire") < 3 {
		t.Fatalf("gave up after %v and %d tries", d, f.count("acquire"))
	}

	// A Retry-After past the deadline gives up at once.
	f.set(func(f *fake) { f.retryAfter = "1" })
	start = time.Now()
	_, err = c.Inspect(ctxT(t, 300*time.Millisecond), "a")
	if !errors.Is(err, client.ErrUnavailable) || time.Since(start) > 200*time.Millisecond {
		t.Fatalf("got %v after %v", err, time.Since(start))
	}

	// MaxRetries bounds the tries.
	c = newClient(t, f, &client.Options{MaxRetries: -1})
	before := f.count("locks")
	if _, err := c.Inspect(context.Background(), "a"); !errors.Is(err, client.ErrUnavailable) || f.count("locks") != before+1 {
		t.Fatalf("MaxRetries -1: %v, %d tries", err, f.count("locks")-before)
	}
}

func TestDroppedResponseYieldsOneLease(t *testing.T) {
	f := newFake(t)
	f.drop = 1
	c := newClient(t, f, nil)
	l, err := c.Acquire(ctxT(t, 5*time.Second), "x/y", &client.AcquireOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if n := f.count("acquire"); n != 2 {
		t.Fatalf("%d acquires", n)
	}
	f.set(func(f *fake) {
		if f.owners[0] != l.Owner() || f.owners[1] != l.Owner() {
			t.Fatalf("owners %v, lease %s", f.owners, l.Owner())
		}
		if l.Fence() != 1 || f.fences["x/y"] != 1 || len(f.locks) != 1 || f.locks["x/y"].owner != l.Owner() {
			t.Fatalf("fence %d, server fences %v", l.Fence(), f.fences)
		}
	})

	// A release whose response is lost: the retry's not_held means it is gone.
	f.set(func(f *fake) { f.drop = 1 })
	if err := l.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.set(func(f *fake) {
		if !errors.Is(l.Err(), client.ErrReleased) || len(f.locks) != 0 || f.calls["release"] != 2 {
			t.Fatalf("err %v, locks %v, %d releases", l.Err(), f.locks, f.calls["release"])
		}
	})
}

func TestNoRetryOn4xx(t *testing.T) {
	f := newFake(t)
	f.token = "s3cret"
	c := newClient(t, f, nil)
	ctx := ctxT(t, 5*time.Second)
	_, err := c.Acquire(ctx, "a", nil)
	var ae *client.APIError
	if !errors.Is(err, client.ErrUnauthorized) || !errors.As(err, &ae) || ae.Status != 401 || f.count("acquire") != 1 {
		t.Fatalf("got %v after %d tries", err, f.count("acquire"))
	}

	c = newClient(t, f, &client.Options{AuthToken: "s3cret"})
	_, err = c.Acquire(ctx, "a", &client.AcquireOptions{TTL: 2 * time.Hour})
	if !errors.Is(err, client.ErrBadRequest) || f.count("acquire") != 2 {
		t.Fatalf("got %v after %d tries", err, f.count("acquire"))
	}
	st, err := c.Release(ctx, "a", "nobody")
	if !errors.Is(err, client.ErrNotHeld) || f.count("release") != 1 || !reflect.DeepEqual(st, client.Status{}) {
		t.Fatalf("got %+v %v after %d tries", st, err, f.count("release"))
	}
	if _, err := c.Heartbeat(ctx, "a", "nobody", time.Second); !errors.Is(err, client.ErrNotHeld) {
		t.Fatal(err)
	}

	// The CLI helpers work with only the owner token.
	l, err := c.Acquire(ctx, "a", &client.AcquireOptions{Owner: "cli-token", TTL: time.Second})
	if err != nil || l.Owner() != "cli-token" {
		t.Fatal(l, err)
	}
	st, err = c.Heartbeat(ctx, "a", "cli-token", time.Minute)
	if err != nil || st.Fence != l.Fence() || st.Owner != "cli-token" || st.TTL != time.Minute || !st.Held {
		t.Fatalf("heartbeat %+v %v", st, err)
	}
	if st, err = c.Release(ctx, "a", "cli-token"); err != nil || st.Fence != l.Fence() || st.Held {
		t.Fatalf("release %+v %v", st, err)
	}
}

func TestLockIDs(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f, nil)
	ctx := ctxT(t, 5*time.Second)
	if _, err := c.Inspect(ctx, "a-b_c.d:e@f/G/9"); err != nil {
		t.Fatal(err)
	}
	if f.path(0) != "/locks/a-b_c.d:e@f/G/9" {
		t.Fatalf("path %s", f.path(0))
	}
	for _, id := range []string{"", "a//b", "/a", "a/", "./a", "a/..", "a b", "a?b", "a%2Fb", "ñ", strings.Repeat("x", 256)} {
		if _, err := c.Inspect(ctx, id); !errors.Is(err, client.ErrBadRequest) {
			t.Errorf("id %q: %v", id, err)
		}
	}
	if n := f.count("locks"); n != 1 {
		t.Fatalf("invalid ids reached the server: %d calls", n)
	}
	if _, err := client.New("ftp://x", nil); err == nil {
		t.Fatal("ftp accepted")
	}
	// A base URL with a path prefix and a trailing slash.
	c, err := client.New(f.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Inspect(ctx, "k"); err != nil || f.path(1) != "/locks/k" {
		t.Fatalf("%v %s", err, f.path(1))
	}
}

func TestAutoHeartbeatKeepsLeaseAlive(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c := newClient(t, f, nil)
	acq, cancel := context.WithCancel(context.Background())
	l, err := c.Acquire(acq, "hb", &client.AcquireOptions{TTL: 150 * time.Millisecond, AutoHeartbeat: true})
	cancel() // the Acquire ctx does not bound the heartbeats
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	if l.Err() != nil {
		t.Fatalf("lost: %v", l.Err())
	}
	if n := f.count("heartbeat"); n < 4 {
		t.Fatalf("%d heartbeats in 4 TTLs", n)
	}
	if st, err := c.Inspect(context.Background(), "hb"); err != nil || !st.Held {
		t.Fatalf("%+v %v", st, err)
	}
	if time.Until(l.Deadline()) <= 0 {
		t.Fatal("deadline passed")
	}

	// Release stops the heartbeats.
	if err := l.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := f.count("heartbeat")
	time.Sleep(150 * time.Millisecond)
	if m := f.count("heartbeat"); m != n {
		t.Fatalf("%d heartbeats after release", m-n)
	}
}

func TestDoneWhenHeartbeatRefused(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c := newClient(t, f, nil)
	const ttl = 600 * time.Millisecond
	l, err := c.Acquire(context.Background(), "r", &client.AcquireOptions{TTL: ttl, AutoHeartbeat: true})
	if err != nil {
		t.Fatal(err)
	}
	for f.count("heartbeat") == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	f.set(func(f *fake) { f.refuseHB = true })
	start := time.Now()
	select {
	case <-l.Done():
	case <-time.After(ttl):
		t.Fatal("Done not closed within the TTL")
	}
	if d := time.Since(start); d > ttl/3+300*time.Millisecond {
		t.Fatalf("Done closed after %v, interval is %v", d, ttl/3)
	}
	var ae *client.APIError
	if !errors.Is(l.Err(), client.ErrNotHeld) || !errors.As(l.Err(), &ae) || ae.Code != "not_held" {
		t.Fatalf("err %v", l.Err())
	}
	n := f.count("heartbeat")
	time.Sleep(ttl / 2)
	if f.count("heartbeat") != n {
		t.Fatal("heartbeats go on after loss")
	}
}

func TestDoneWhenHeartbeatsUnavailable(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c := newClient(t, f, nil)
	const ttl = 400 * time.Millisecond
	l, err := c.Acquire(context.Background(), "u", &client.AcquireOptions{TTL: ttl, AutoHeartbeat: true})
	if err != nil {
		t.Fatal(err)
	}
	deadline := l.Deadline()
	f.set(func(f *fake) { f.unavailable = 1 << 30 })
	select {
	case <-l.Done():
	case <-time.After(2 * ttl):
		t.Fatal("Done not closed after the TTL")
	}
	if late := time.Since(deadline); late < 0 || late > 300*time.Millisecond {
		t.Fatalf("Done closed %v after the deadline", late)
	}
	if err := l.Err(); !errors.Is(err, client.ErrLeaseExpired) || !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("err %v", err)
	}
	if f.count("heartbeat") < 2 {
		t.Fatalf("%d heartbeats", f.count("heartbeat"))
	}
	if err := l.Heartbeat(context.Background()); !errors.Is(err, client.ErrLeaseExpired) {
		t.Fatalf("heartbeat of an expired lease: %v", err)
	}
}

func TestLifetimeStopsHeartbeats(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c := newClient(t, f, nil)
	life, stop := context.WithCancel(context.Background())
	l, err := c.Acquire(context.Background(), "life", &client.AcquireOptions{TTL: 200 * time.Millisecond, AutoHeartbeat: true, Lifetime: life})
	if err != nil {
		t.Fatal(err)
	}
	stop()
	select {
	case <-l.Done():
	case <-time.After(time.Second):
		t.Fatal("lease outlived its heartbeats")
	}
	if !errors.Is(l.Err(), client.ErrLeaseExpired) || f.count("heartbeat") != 0 {
		t.Fatalf("err %v, %d heartbeats", l.Err(), f.count("heartbeat"))
	}
	// Releasing an expired lease still asks the server, which says not_held
	// once its (later) end of the lease passed too.
	time.Sleep(50 * time.Millisecond)
	if err := l.Release(context.Background()); !errors.Is(err, client.ErrNotHeld) {
		t.Fatalf("release %v", err)
	}
	if !errors.Is(l.Err(), client.ErrLeaseExpired) {
		t.Fatalf("err changed to %v", l.Err())
	}
}

func TestManualHeartbeatExtends(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f, nil)
	ctx := ctxT(t, 5*time.Second)
	l, err := c.Acquire(ctx, "m", &client.AcquireOptions{TTL: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		time.Sleep(50 * time.Millisecond)
		if err := l.Heartbeat(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if l.Err() != nil {
		t.Fatal(l.Err())
	}
	if b := f.body(-1); b != `{"owner":"`+l.Owner()+`","ttl":300}` {
		t.Fatalf("heartbeat body %s", b)
	}
	<-l.Done()
	if !errors.Is(l.Err(), client.ErrLeaseExpired) || errors.Is(l.Err(), client.ErrUnavailable) {
		t.Fatalf("err %v", l.Err())
	}
}

func TestGatewayErrorsAreRetried(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"error":"","code":"","success":true,"data":{"id":"g","state":0,"fence":7,"ttl_ms":0}}`))
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, &client.Options{RetryBackoff: time.Millisecond, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Inspect(context.Background(), "g")
	var ae *client.APIError
	if !errors.Is(err, client.ErrUnavailable) || !errors.As(err, &ae) || ae.Status != 502 || ae.Message != "<html>bad gateway</html>" {
		t.Fatalf("got %#v", err)
	}
	c, _ = client.New(srv.URL, &client.Options{RetryBackoff: time.Millisecond})
	st, err := c.Inspect(context.Background(), "g")
	if err != nil || !reflect.DeepEqual(st, client.Status{ID: "g", Fence: 7}) || n.Load() != 2 {
		t.Fatalf("%+v %v after %d tries", st, err, n.Load())
	}
}
