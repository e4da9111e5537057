//go:build integration

package clienttest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/candado-dev/candado/client"
	"handler/function/function"
	"handler/function/function/redistest"
)

// stack is the client against a real Candado service on a real redis-server.
type stack struct {
	redis    *redistest.Server
	http     *httptest.Server
	requests atomic.Int64 // requests the service has received
}

func startStack(t *testing.T) *stack {
	t.Helper()
	return startStackWith(t, nil)
}

// startStackWith starts a stack whose service configuration edit changes.
func startStackWith(t *testing.T, edit func(*function.Config)) *stack {
	t.Helper()
	s := &stack{redis: redistest.Start(t)}
	cfg := function.Config{
		RedisURL:       s.redis.URL(),
		Port:           8080,
		KeyPrefix:      "candado:",
		DefaultTTL:     30 * time.Second,
		MaxTTL:         time.Hour,
		MaxWait:        time.Minute,
		EventSource:    "/candado",
		BackendTimeout: 300 * time.Millisecond,
	}
	if edit != nil {
		edit(&cfg)
	}
	svc, err := function.NewService(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		svc.ServeHTTP(w, r)
	}))
	// Runs before redistest's cleanup, which was registered first.
	t.Cleanup(func() {
		svc.Shutdown()
		s.http.Close()
		svc.Close()
	})
	return s
}

// client returns a client of url (default: the stack's server) with short backoffs.
func (s *stack) client(t *testing.T, url string) *client.Client {
	t.Helper()
	if url == "" {
		url = s.http.URL
	}
	c, err := client.New(url, &client.Options{RetryBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pause stops Redis until the returned resume is called (also at cleanup).
func (s *stack) pause(t *testing.T) (resume func()) {
	t.Helper()
	s.redis.Pause()
	var once sync.Once
	resume = func() { once.Do(s.redis.Resume) }
	t.Cleanup(resume)
	return resume
}

func itCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestIntegrationAcquireRelease(t *testing.T) {
	s := startStack(t)
	c := s.client(t, "")
	ctx := itCtx(t, 10*time.Second)
	const id = "orders/42"

	l1, err := c.Acquire(ctx, id, &client.AcquireOptions{TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if l1.Fence() <= 0 || l1.TTL() != 10*time.Second {
		t.Fatalf("lease fence %d ttl %v", l1.Fence(), l1.TTL())
	}
	st, err := c.Inspect(ctx, id)
	if err != nil || !st.Held || st.Fence != l1.Fence() || st.Owner != "" || st.TTL <= 9*time.Second || st.TTL > 10*time.Second {
		t.Fatalf("inspect %+v %v", st, err)
	}

	_, err = c.Acquire(ctx, id, nil)
	var ae *client.APIError
	if !errors.Is(err, client.ErrHeld) || !errors.As(err, &ae) || ae.Lock == nil || ae.Lock.Fence != l1.Fence() || ae.Lock.Owner != "" {
		t.Fatalf("second owner: %v (%+v)", err, ae)
	}
	if _, err := c.Release(ctx, id, "not-the-owner"); !errors.Is(err, client.ErrNotHeld) {
		t.Fatalf("release by another owner: %v", err)
	}
	if err := l1.Heartbeat(ctx); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}

	if err := l1.Release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l1.Done():
	default:
		t.Fatal("Done not closed by Release")
	}
	if !errors.Is(l1.Err(), client.ErrReleased) {
		t.Fatalf("Err = %v", l1.Err())
	}
	if st, err := c.Inspect(ctx, id); err != nil || st.Held || st.TTL != 0 {
		t.Fatalf("inspect after release %+v %v", st, err)
	}
	if _, err := c.Heartbeat(ctx, id, l1.Owner(), 0); !errors.Is(err, client.ErrNotHeld) {
		t.Fatalf("heartbeat after release: %v", err)
	}

	// The script API: a caller-chosen owner, heartbeat and release by id.
	l2, err := c.Acquire(ctx, id, &client.AcquireOptions{Owner: "script-1", TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if l2.Fence() <= l1.Fence() {
		t.Fatalf("fence %d after %d", l2.Fence(), l1.Fence())
	}
	if st, err := c.Heartbeat(ctx, id, "script-1", 20*time.Second); err != nil || !st.Held || st.Fence != l2.Fence() || st.Owner != "script-1" {
		t.Fatalf("heartbeat %+v %v", st, err)
	}
	if st, err := c.Inspect(ctx, id); err != nil || st.TTL <= 10*time.Second {
		t.Fatalf("heartbeat did not extend: %+v %v", st, err)
	}
	if _, err := c.Release(ctx, id, "script-1"); err != nil {
		t.Fatal(err)
	}
	// A repeated release by the same owner is an idempotent retry...
	if _, err := c.Release(ctx, id, "script-1"); err != nil {
		t.Fatalf("repeated release: %v", err)
	}
	// ...but the lease stays gone.
	if _, err := c.Heartbeat(ctx, id, "script-1", 0); !errors.Is(err, client.ErrNotHeld) {
		t.Fatalf("heartbeat after release: %v", err)
	}
}

func TestIntegrationWaitWokenByRelease(t *testing.T) {
	s := startStack(t)
	c := s.client(t, "")
	ctx := itCtx(t, 20*time.Second)
	const id = "jobs/nightly"

	l1, err := c.Acquire(ctx, id, &client.AcquireOptions{TTL: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		l   *client.Lease
		err error
		at  time.Time
	}
	got := make(chan result, 1)
	go func() {
		l, err := c.Acquire(ctx, id, &client.AcquireOptions{TTL: 10 * time.Second, Wait: 15 * time.Second})
		got <- result{l, err, time.Now()}
	}()
	select {
	case r := <-got:
		t.Fatalf("waiter returned while the lock was held: %v", r.err)
	case <-time.After(500 * time.Millisecond):
	}
	released := time.Now()
	if err := l1.Release(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	// Woken by the release, far sooner than the 30 s TTL or the 15 s wait.
	if d := r.at.Sub(released); d > time.Second {
		t.Fatalf("waiter got the lock %v after the release", d)
	}
	if r.l.Fence() <= l1.Fence() {
		t.Fatalf("fence %d after %d", r.l.Fence(), l1.Fence())
	}
	if err := r.l.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestIntegrationLeaseLostWhenKeyDeleted(t *testing.T) {
	s := startStack(t)
	c := s.client(t, "")
	ctx := itCtx(t, 10*time.Second)
	const id = "reports/7"
	const ttl = 1500 * time.Millisecond

	l, err := c.Acquire(ctx, id, &client.AcquireOptions{TTL: ttl, AutoHeartbeat: true})
	if err != nil {
		t.Fatal(err)
	}
	// Heartbeats keep it beyond its TTL.
	time.Sleep(ttl + ttl/2)
	if err := l.Err(); err != nil {
		t.Fatalf("lease lost with heartbeats running: %v", err)
	}
	// Someone deletes the lease behind the client's back.
	if n, err := s.redis.Client().Del(ctx, "candado:{"+id+"}").Result(); err != nil || n != 1 {
		t.Fatalf("DEL = %d, %v; wrong key name?", n, err)
	}
	deleted := time.Now()
	select {
	case <-l.Done():
	case <-time.After(ttl):
		t.Fatal("Done not closed within the TTL after the key was deleted")
	}
	// The next heartbeat (every TTL/3) is refused: the loss is seen then, not at expiry.
	if d, limit := time.Since(deleted), ttl/3+300*time.Millisecond; d > limit {
		t.Fatalf("loss seen %v after the delete, want within a heartbeat interval (%v)", d, limit)
	}
	if err := l.Err(); !errors.Is(err, client.ErrNotHeld) {
		t.Fatalf("Err = %v, want ErrNotHeld", err)
	}
	if err := l.Release(ctx); !errors.Is(err, client.ErrNotHeld) {
		t.Fatalf("release of a lost lease: %v", err)
	}
}

func TestIntegrationLeaseExpiresWhileRedisPaused(t *testing.T) {
	s := startStack(t)
	c := s.client(t, "")
	ctx := itCtx(t, 20*time.Second)
	const id = "reports/8"
	const ttl = time.Second

	l, err := c.Acquire(ctx, id, &client.AcquireOptions{TTL: ttl, AutoHeartbeat: true})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl / 2)
	resume := s.pause(t)
	paused := time.Now()
	select {
	case <-l.Done():
	case <-time.After(ttl + 500*time.Millisecond):
		t.Fatal("Done not closed though Redis has been paused for longer than the TTL")
	}
	closed := time.Now()
	// The client gives up no later than the server's lease can end: TTL after
	// the last confirmed heartbeat was sent, which was before the pause...
	if dl := l.Deadline(); dl.After(paused.Add(ttl)) {
		t.Fatalf("lease deadline %v after the pause, TTL is %v", dl.Sub(paused), ttl)
	}
	// ...and Done closes at that deadline (give or take the scheduler).
	if late := closed.Sub(l.Deadline()); late < 0 || late > 250*time.Millisecond {
		t.Fatalf("Done closed %v after the lease deadline", late)
	}
	if err := l.Err(); !errors.Is(err, client.ErrLeaseExpired) {
		t.Fatalf("Err = %v, want ErrLeaseExpired", err)
	}
	time.Sleep(ttl) // paused for longer than the TTL
	resume()

	// Redis's clock ran on while it was stopped: the lease is gone there too,
	// and a new owner gets a greater fence.
	l2, err := c.Acquire(ctx, id, &client.AcquireOptions{TTL: 10 * time.Second})
	if err != nil {
		t.Fatalf("acquire after resume: %v", err)
	}
	if l2.Fence() <= l.Fence() {
		t.Fatalf("fence %d after %d", l2.Fence(), l.Fence())
	}
	if err := l2.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestIntegrationRetriesStopAtDeadline(t *testing.T) {
	s := startStack(t)
	c := s.client(t, "")
	const budget = 1500 * time.Millisecond

	check := func(t *testing.T, what string) {
		t.Helper()
		before := s.requests.Load()
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		defer cancel()
		start := time.Now()
		_, err := c.Acquire(ctx, "retry/"+what, &client.AcquireOptions{TTL: 5 * time.Second})
		d := time.Since(start)
		if !errors.Is(err, client.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Redis %s: err = %v, want ErrUnavailable and DeadlineExceeded", what, err)
		}
		if d > budget+500*time.Millisecond || d < budget/2 {
			t.Fatalf("Redis %s: gave up after %v, context deadline was %v", what, d, budget)
		}
		if n := s.requests.Load() - before; n < 2 {
			t.Fatalf("Redis %s: %d tries, want retries", what, n)
		}
	}
	acquireOK := func(t *testing.T, id string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l, err := c.Acquire(ctx, id, &client.AcquireOptions{TTL: 5 * time.Second})
		if err != nil {
			t.Fatalf("acquire after recovery: %v", err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("paused", func(t *testing.T) {
		resume := s.pause(t)
		check(t, "paused")
		resume()
		// Not "retry/paused": the acquire sent while Redis was paused may
		// have been carried out on resume (its answer was lost), and then
		// that lock is rightly held for its TTL.
		acquireOK(t, "retry/paused-after")
	})
	t.Run("killed", func(t *testing.T) {
		s.redis.Kill()
		check(t, "killed")
		s.redis.Restart()
		acquireOK(t, "retry/killed-after")
	})
	t.Run("recovers", func(t *testing.T) {
		// A call that outlives the outage succeeds once Redis is back.
		resume := s.pause(t)
		time.AfterFunc(time.Second, resume)
		start := time.Now()
		acquireOK(t, "retry/recovers")
		if d := time.Since(start); d < time.Second {
			t.Fatalf("acquired after %v, while Redis was paused", d)
		}
	})
}

func TestIntegrationDroppedResponseYieldsOneLease(t *testing.T) {
	s := startStack(t)
	target, err := url.Parse(s.http.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	var acquires atomic.Int32
	dropped := make(chan []byte, 1) // the answer to the first acquire, which the client never sees
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/acquire/") && acquires.Add(1) == 1 {
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r) // the server takes the lock...
			dropped <- rec.Body.Bytes()
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			conn.Close() // ...and the answer is lost on the way back
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()

	c := s.client(t, proxy.URL)
	ctx := itCtx(t, 10*time.Second)
	const id = "payments/1"
	l, err := c.Acquire(ctx, id, &client.AcquireOptions{TTL: 20 * time.Second})
	if err != nil {
		t.Fatalf("acquire through a dropped response: %v", err)
	}
	if n := acquires.Load(); n < 2 {
		t.Fatalf("%d acquire requests, want a retry", n)
	}
	var first struct {
		Success bool `json:"success"`
		Data    struct {
			Owner string `json:"owner"`
			Fence int64  `json:"fence"`
		} `json:"data"`
	}
	body := <-dropped
	if err := json.Unmarshal(body, &first); err != nil || !first.Success {
		t.Fatalf("the dropped answer was not a success: %s (%v)", body, err)
	}
	// The retry was the same owner, so the server kept the first lease.
	if l.Fence() != first.Data.Fence || l.Owner() != first.Data.Owner {
		t.Fatalf("lease fence %d owner %s, the dropped answer had %d %s", l.Fence(), l.Owner(), first.Data.Fence, first.Data.Owner)
	}
	direct := s.client(t, "")
	if st, err := direct.Inspect(ctx, id); err != nil || !st.Held || st.Fence != l.Fence() {
		t.Fatalf("inspect %+v %v", st, err)
	}
	_, err = direct.Acquire(ctx, id, nil)
	var ae *client.APIError
	if !errors.Is(err, client.ErrHeld) || !errors.As(err, &ae) || ae.Lock == nil || ae.Lock.Fence != l.Fence() {
		t.Fatalf("second owner: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
}
