package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/candado-dev/candado/client"
)

// A semaphore held with another limit: ErrLimitMismatch with the lock's
// state, never ErrHeld, not retried, and not waited on by the client.
func TestLimitMismatch(t *testing.T) {
	srv := newCanned(t, func(int) (int, []string, string) {
		return 409, nil, refusal("limit_mismatch", "lock is held with another limit",
			`{"id":"pool","state":1,"fence":9,"ttl_ms":4000,"mode":"exclusive","limit":5,"holders":1,"waiters":0,"leases":[{"fence":9,"ttl_ms":4000,"holder":"w9","mode":"exclusive"}],"wait_cut":false,"waited_ms":0}`)
	})
	c, err := client.New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Acquire(ctxT(t, 5*time.Second), "pool", &client.AcquireOptions{Limit: 3, Wait: 2 * time.Second})
	var ae *client.APIError
	if !errors.Is(err, client.ErrLimitMismatch) || !errors.As(err, &ae) || ae.Status != 409 || ae.Code != "limit_mismatch" {
		t.Fatalf("got %v", err)
	}
	if errors.Is(err, client.ErrHeld) || errors.Is(err, client.ErrBadRequest) || errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("limit_mismatch matches another sentinel: %v", err)
	}
	if ae.Lock == nil || ae.Lock.Limit != 5 || len(ae.Lock.Leases) != 1 || ae.Lock.Leases[0].Holder != "w9" {
		t.Fatalf("lock %+v", ae.Lock)
	}
	if paths, _ := srv.requests(); len(paths) != 1 {
		t.Fatalf("%d tries", len(paths))
	}
}

// A backend that cannot honour a parameter (quorum mode): ErrUnsupported,
// which is also a bad request; not retried.
func TestUnsupported(t *testing.T) {
	srv := newCanned(t, func(int) (int, []string, string) {
		return 400, nil, refusal("unsupported", "invalid request: not supported in this CANDADO_REDIS_MODE: limit above 1", `{"id":"q"}`)
	})
	c, err := client.New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Acquire(ctxT(t, 5*time.Second), "q", &client.AcquireOptions{Limit: 2})
	var ae *client.APIError
	if !errors.Is(err, client.ErrUnsupported) || !errors.Is(err, client.ErrBadRequest) || !errors.As(err, &ae) || ae.Status != 400 {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "limit above 1") {
		t.Fatalf("the server's reason is lost: %v", err)
	}
	// A plain bad request is not "unsupported".
	if errors.Is(client.ErrBadRequest, client.ErrUnsupported) {
		t.Fatal("ErrBadRequest matches ErrUnsupported")
	}
	if paths, _ := srv.requests(); len(paths) != 1 {
		t.Fatalf("%d tries", len(paths))
	}
}

// 403 forbidden, with the envelope or from a proxy without it: ErrForbidden,
// not ErrUnauthorized, not retried.
func TestForbidden(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"envelope", refusal("forbidden", `identity \"ci\" may not acquire \"prod/db\"`, `{"id":"prod/db"}`)},
		{"proxy", `<html>403 Forbidden</html>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newCanned(t, func(int) (int, []string, string) { return 403, nil, tc.body })
			c, err := client.New(srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Acquire(ctxT(t, 5*time.Second), "prod/db", nil)
			var ae *client.APIError
			if !errors.Is(err, client.ErrForbidden) || errors.Is(err, client.ErrUnauthorized) || !errors.As(err, &ae) || ae.Status != 403 {
				t.Fatalf("got %v", err)
			}
			if paths, _ := srv.requests(); len(paths) != 1 {
				t.Fatalf("%d tries", len(paths))
			}
		})
	}
}

// A 429 (this token's cap of waiting acquires: nothing was done) is retried
// no sooner than its Retry-After; when retries run out it is
// ErrTooManyRequests.
func TestTooManyWaitersRetried(t *testing.T) {
	t.Parallel()
	const tooMany = `{"error":"too many acquires of this identity are waiting","code":"too_many_waiters","success":false,"data":{"id":"j"}}`
	srv := newCanned(t, func(n int) (int, []string, string) {
		if n == 0 {
			return 429, []string{"Retry-After", "1"}, tooMany
		}
		return 200, nil, ok(`{"id":"j","state":1,"owner":"o","fence":3,"ttl_ms":30000,"waited_ms":0,"wait_cut":false}`)
	})
	c, err := client.New(srv.URL, &client.Options{RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	l, err := c.Acquire(ctxT(t, 5*time.Second), "j", &client.AcquireOptions{Owner: "o", Wait: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("retried after %v, before Retry-After", d)
	}
	paths, bodies := srv.requests()
	if len(paths) != 2 || l.Fence() != 3 {
		t.Fatalf("%d tries, fence %d", len(paths), l.Fence())
	}
	// The retry waits only for what is left of the wait.
	if !strings.Contains(bodies[1], `"wait":`) || strings.Contains(bodies[1], `"wait":3000`) {
		t.Fatalf("retry body %s after %s", bodies[1], bodies[0])
	}

	// Without retries, the 429 itself.
	srv2 := newCanned(t, func(int) (int, []string, string) { return 429, []string{"Retry-After", "1"}, tooMany })
	c2, _ := client.New(srv2.URL, &client.Options{Retry: client.NoRetry})
	_, err = c2.Acquire(context.Background(), "j", &client.AcquireOptions{Wait: time.Second})
	var ae *client.APIError
	if !errors.Is(err, client.ErrTooManyRequests) || !errors.As(err, &ae) || ae.RetryAfter != time.Second || errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("got %v", err)
	}
	// Retries cut by the context: still ErrTooManyRequests, and the context's error.
	c3, _ := client.New(srv2.URL, &client.Options{RetryBackoff: time.Millisecond})
	_, err = c3.Acquire(ctxT(t, 300*time.Millisecond), "j", &client.AcquireOptions{Wait: time.Second})
	if !errors.Is(err, client.ErrTooManyRequests) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

// A watch refused with 429 too_many_watchers is opened once a stream of the
// token's frees up.
func TestWatchRetries429(t *testing.T) {
	t.Parallel()
	srv := newCanned(t, func(int) (int, []string, string) {
		return 429, []string{"Retry-After", "1"}, `{"error":"too many watch streams of this identity are open","code":"too_many_watchers","success":false,"data":null}`
	})
	c, _ := client.New(srv.URL, &client.Options{Retry: client.Backoff{Base: time.Millisecond, Retries: 1}})
	start := time.Now()
	_, err := c.Watch(ctxT(t, 5*time.Second), "w")
	if !errors.Is(err, client.ErrTooManyRequests) {
		t.Fatalf("got %v", err)
	}
	if paths, _ := srv.requests(); len(paths) != 2 || time.Since(start) < time.Second {
		t.Fatalf("%d tries in %v, want 2 a Retry-After apart", len(paths), time.Since(start))
	}
}
