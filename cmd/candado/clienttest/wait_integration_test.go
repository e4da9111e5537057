//go:build integration

package clienttest_test

import (
	"errors"
	"testing"
	"time"

	"github.com/candado-dev/candado/client"
	"handler/function/function"
)

// holdAndRelease takes id for another owner and releases it after d.
func holdAndRelease(t *testing.T, c *client.Client, id string, d time.Duration) *client.Lease {
	t.Helper()
	holder, err := c.Acquire(itCtx(t, 5*time.Second), id, &client.AcquireOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(d, func() { _ = holder.Release(itCtx(t, 5*time.Second)) })
	t.Cleanup(func() { timer.Stop() })
	return holder
}

// TestIntegrationWaitOutlastsServerMaxWait: the server cuts every wait at
// CANDADO_MAX_WAIT (1s) and says so; the client asks again with the same
// owner until its own Wait (4s) runs out, and gets the lock released at 2.5s.
func TestIntegrationWaitOutlastsServerMaxWait(t *testing.T) {
	s := startStackWith(t, func(c *function.Config) { c.MaxWait = time.Second })
	c := s.client(t, "")
	holder := holdAndRelease(t, c, "cut", 2500*time.Millisecond)
	start := time.Now()
	l, err := c.Acquire(itCtx(t, 20*time.Second), "cut", &client.AcquireOptions{TTL: 10 * time.Second, Wait: 4 * time.Second})
	if err != nil {
		t.Fatalf("Acquire with Wait 4s on a server with MaxWait 1s: %v (after %s)", err, time.Since(start))
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Fatalf("granted after %s, before the holder released", took)
	}
	if l.Fence() <= holder.Fence() {
		t.Fatalf("fence %d not above the holder's %d", l.Fence(), holder.Fence())
	}

	// Still held when the client's own Wait runs out: ErrHeld, after about Wait.
	holdAndRelease(t, c, "never", time.Minute)
	start = time.Now()
	_, err = c.Acquire(itCtx(t, 20*time.Second), "never", &client.AcquireOptions{Wait: 2500 * time.Millisecond})
	if took := time.Since(start); !errors.Is(err, client.ErrHeld) || took < 2400*time.Millisecond || took > 6*time.Second {
		t.Fatalf("Acquire = %v after %s, want ErrHeld after about 2.5s", err, took)
	}
}

// TestIntegrationLeaseCountsFromGrant: a lease granted at the end of a wait
// gets its whole TTL on the client, and still ends no later than the
// server's.
func TestIntegrationLeaseCountsFromGrant(t *testing.T) {
	s := startStack(t)
	c := s.client(t, "")
	holdAndRelease(t, c, "job", 2500*time.Millisecond)
	const ttl = 3 * time.Second
	l, err := c.Acquire(itCtx(t, 20*time.Second), "job", &client.AcquireOptions{TTL: ttl, Wait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	granted := time.Now()
	if left := time.Until(l.Deadline()); left < ttl-time.Second {
		t.Fatalf("lease deadline %s after the grant, want about the TTL %s", left, ttl)
	}
	st, err := c.Inspect(itCtx(t, 5*time.Second), "job")
	after := time.Now()
	if err != nil || !st.Held {
		t.Fatalf("Inspect = %+v, %v", st, err)
	}
	if server := after.Add(st.TTL + time.Millisecond); l.Deadline().After(server) {
		t.Fatalf("client deadline %s is after the server's expiry (at most %s)", l.Deadline().Format(time.StampMicro), server.Format(time.StampMicro))
	}
	select {
	case <-l.Done():
		t.Fatalf("lease lost %s after the grant: %v", time.Since(granted), l.Err())
	case <-time.After(1500 * time.Millisecond):
	}
	if err := l.Release(itCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}
