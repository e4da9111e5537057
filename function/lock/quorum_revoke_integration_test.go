//go:build integration

package lock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"handler/function/function/lock"
)

// A quorum revoke ends the majority's lease: the fence stays the floor, the
// waiter is woken at once (not by the hour-long lease's expiry), and the
// holder's heartbeat is refused.
func TestQuorumRevoke(t *testing.T) {
	srvs, q := startQuorum(t, 3)
	l := lock.NewLocker(q, q)
	ctx := context.Background()
	first, err := l.Acquire(ctx, lock.AcquireRequest{ID: "qr", Owner: "h", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		lease lock.Lease
		err   error
	}
	waiter := make(chan result, 1)
	go func() {
		lease, err := l.Acquire(ctx, lock.AcquireRequest{ID: "qr", Owner: "w", TTL: time.Minute, Wait: 10 * time.Second})
		waiter <- result{lease, err}
	}()
	time.Sleep(300 * time.Millisecond)
	ended, err := q.Revoke(ctx, "qr")
	if err != nil || ended.Fence != first.Fence || ended.Held {
		t.Fatalf("Revoke = %+v, %v; want the ended lease of fence %d", ended, err, first.Fence)
	}
	r := <-waiter
	if r.err != nil || r.lease.Fence <= first.Fence {
		t.Fatalf("waiter got %+v, %v; want a grant with a fence above %d", r.lease, r.err, first.Fence)
	}
	if _, err := q.Heartbeat(ctx, "qr", "h", time.Hour); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("revoked holder's heartbeat: %v, want ErrNotHeld", err)
	}
	if _, err := q.Revoke(ctx, "never"); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("revoking a lock nobody holds: %v, want ErrNotHeld", err)
	}
	// With a majority down nothing can be decided.
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "qd", Owner: "h", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	srvs[0].Kill()
	srvs[1].Kill()
	if _, err := q.Revoke(ctx, "qd"); !errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("revoke with a majority down: %v, want ErrUnavailable", err)
	}
}
