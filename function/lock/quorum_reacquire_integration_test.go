//go:build integration

package lock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"handler/function/function/lock"
	"handler/function/function/redistest"
)

// A holds the lease on M1 and M2 (M3 was taken over by another owner's
// partial grant); with M1 paused, A's re-acquire cannot tell whether it
// holds a majority. Whatever it answers, A's lease must stay live with its
// fence: no other owner is granted while it runs, and A's heartbeat works.
func TestQuorumFailedReacquireKeepsTheHoldersLease(t *testing.T) {
	srvs, q := startQuorum(t, 3)
	ctx := context.Background()
	a, err := q.Acquire(ctx, lock.AcquireRequest{ID: "r", Owner: "A", TTL: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	waitFence(t, q, srvs, "r", a.Fence)
	// A competing attempt's grant on M3 whose undo was lost, above A's fence.
	key := q.Key("r")
	if err := srvs[2].Client().HSet(ctx, key, "owner", "C", "fence", a.Fence+1000, "prev", "").Err(); err != nil {
		t.Fatal(err)
	}
	srvs[0].Pause()
	resumed := false
	defer func() {
		if !resumed {
			srvs[0].Resume()
		}
	}()
	again, err := q.Acquire(ctx, lock.AcquireRequest{ID: "r", Owner: "A", TTL: 30 * time.Second})
	switch {
	case err == nil && again.Fence != a.Fence:
		t.Fatalf("the holder's re-acquire changed its fence: %d, was %d", again.Fence, a.Fence)
	case err != nil && !errors.Is(err, lock.ErrUnavailable):
		t.Fatalf("the holder's re-acquire = %v; want success or ErrUnavailable", err)
	}
	srvs[0].Resume()
	resumed = true
	if err := srvs[2].Client().Del(ctx, key).Err(); err != nil { // C's grant is gone
		t.Fatal(err)
	}
	if l, err := q.Acquire(ctx, lock.AcquireRequest{ID: "r", Owner: "B", TTL: time.Minute}); !errors.Is(err, lock.ErrHeld) || l.Fence != a.Fence {
		for _, s := range srvs {
			t.Logf("%s: %v", s.Addr(), s.Client().HGetAll(ctx, key).Val())
		}
		t.Fatalf("B's acquire while A's lease is live = %+v, %v; want ErrHeld with fence %d", l, err, a.Fence)
	}
	if h, err := q.Heartbeat(ctx, "r", "A", 30*time.Second); err != nil || h.Fence != a.Fence {
		t.Fatalf("A's heartbeat = %+v, %v; want fence %d", h, err, a.Fence)
	}
}

// A holds the lease everywhere, M3 restarts empty and M1 is paused: a
// re-acquire by A reads its lease on M2 alone. It must not mint A a new
// fence while its lease lives, nor shorten that lease.
func TestQuorumReacquireWithAPausedMasterKeepsTheFence(t *testing.T) {
	srvs, q := startQuorum(t, 3)
	ctx := context.Background()
	a, err := q.Acquire(ctx, lock.AcquireRequest{ID: "k", Owner: "A", TTL: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	waitFence(t, q, srvs, "k", a.Fence)
	srvs[2].Restart()
	srvs[0].Pause()
	resumed := false
	defer func() {
		if !resumed {
			srvs[0].Resume()
		}
	}()
	for i := 0; i < 3; i++ {
		again, err := q.Acquire(ctx, lock.AcquireRequest{ID: "k", Owner: "A", TTL: 30 * time.Second})
		switch {
		case err == nil && again.Fence != a.Fence:
			t.Fatalf("re-acquire %d by the holder minted fence %d, was %d", i, again.Fence, a.Fence)
		case err != nil && !errors.Is(err, lock.ErrUnavailable):
			t.Fatalf("re-acquire %d by the holder = %v; want success or ErrUnavailable", i, err)
		}
	}
	srvs[0].Resume()
	resumed = true
	if l, err := q.Acquire(ctx, lock.AcquireRequest{ID: "k", Owner: "B", TTL: time.Minute}); !errors.Is(err, lock.ErrHeld) || l.Fence != a.Fence {
		t.Fatalf("B's acquire = %+v, %v; want ErrHeld with fence %d", l, err, a.Fence)
	}
	if h, err := q.Heartbeat(ctx, "k", "A", 30*time.Second); err != nil || h.Fence != a.Fence || h.TTL < 20*time.Second {
		t.Fatalf("A's heartbeat = %+v, %v; want fence %d", h, err, a.Fence)
	}
	// With every master back, the holder's re-acquire succeeds and keeps
	// its fence.
	if again, err := q.Acquire(ctx, lock.AcquireRequest{ID: "k", Owner: "A", TTL: 30 * time.Second}); err != nil || again.Fence != a.Fence {
		t.Fatalf("re-acquire with every master up = %+v, %v; want fence %d", again, err, a.Fence)
	}
}

// waitFence waits until every master stores fence for id (an acquire
// answers once a majority granted it; the last grant may land later).
func waitFence(t *testing.T, q *lock.QuorumStore, srvs []*redistest.Server, id string, fence int64) {
	t.Helper()
	for _, s := range srvs {
		deadline := time.Now().Add(2 * time.Second)
		for {
			f, err := s.Client().HGet(context.Background(), q.Key(id), "fence").Int64()
			if err == nil && f == fence {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("master %s: fence %d, %v; want %d", s.Addr(), f, err, fence)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
