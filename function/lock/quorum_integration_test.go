//go:build integration

package lock_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"handler/function/function/lock"
	"handler/function/function/redistest"
)

func TestQuorumBasics(t *testing.T) {
	srvs, q := startQuorum(t, 3)
	l := lock.NewLocker(q, q)
	ctx := context.Background()
	a, err := l.Acquire(ctx, lock.AcquireRequest{ID: "b", Owner: "a", TTL: time.Minute})
	if err != nil || !a.Held || a.Fence == 0 || a.TTL <= 0 || a.TTL > time.Minute {
		t.Fatalf("acquire = %+v, %v", a, err)
	}
	// Every master granted it, with the same fence (the acquire answers once
	// a majority did, so the last grant may land a moment later).
	for _, s := range srvs {
		deadline := time.Now().Add(time.Second)
		for {
			f, err := s.Client().HGet(ctx, q.Key("b"), "fence").Int64()
			if err == nil && f == a.Fence {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("master %s: fence %d, %v; want %d", s.Addr(), f, err, a.Fence)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	again, err := l.Acquire(ctx, lock.AcquireRequest{ID: "b", Owner: "a", TTL: time.Minute})
	if err != nil || again.Fence != a.Fence {
		t.Fatalf("idempotent retry = %+v, %v; want fence %d", again, err, a.Fence)
	}
	if l, err := q.Acquire(ctx, lock.AcquireRequest{ID: "b", Owner: "x", TTL: time.Minute}); !errors.Is(err, lock.ErrHeld) || !l.Held || l.Fence != a.Fence || l.Owner != "" {
		t.Fatalf("acquire of a held lock = %+v, %v", l, err)
	}
	if got, err := q.Inspect(ctx, "b"); err != nil || !got.Held || got.Fence != a.Fence || got.TTL <= 0 {
		t.Fatalf("inspect = %+v, %v", got, err)
	}
	if _, err := q.Heartbeat(ctx, "b", "x", time.Minute); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("heartbeat by another owner = %v", err)
	}
	if h, err := q.Heartbeat(ctx, "b", "a", 2*time.Minute); err != nil || h.Fence != a.Fence || h.TTL <= time.Minute {
		t.Fatalf("heartbeat = %+v, %v", h, err)
	}
	if _, err := q.Release(ctx, "b", "x"); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("release by another owner = %v", err)
	}
	if r, err := q.Release(ctx, "b", "a"); err != nil || r.Held || r.Fence != a.Fence {
		t.Fatalf("release = %+v, %v", r, err)
	}
	if got, err := q.Inspect(ctx, "b"); err != nil || got.Held || got.Fence != a.Fence {
		t.Fatalf("inspect after release = %+v, %v", got, err)
	}
	b, err := q.Acquire(ctx, lock.AcquireRequest{ID: "b", Owner: "b", TTL: 100 * time.Millisecond})
	if err != nil || b.Fence <= a.Fence {
		t.Fatalf("next acquire = %+v, %v; want a fence above %d", b, err, a.Fence)
	}
	time.Sleep(150 * time.Millisecond)
	if _, err := q.Heartbeat(ctx, "b", "b", time.Minute); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("heartbeat after expiry = %v", err)
	}
	if _, err := q.Release(ctx, "b", "b"); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("late release after expiry = %v", err)
	}
}

func TestQuorumWaitWokenByRelease(t *testing.T) {
	_, q := startQuorum(t, 3)
	l := lock.NewLocker(q, q)
	ctx := context.Background()
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "w", Owner: "h", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	done := make(chan time.Time, 1)
	go func() {
		lease, err := l.Acquire(ctx, lock.AcquireRequest{ID: "w", Owner: "w", TTL: time.Second, Wait: 5 * time.Second})
		if err != nil || !lease.Woken {
			t.Errorf("waiter: %+v, %v", lease, err)
		}
		done <- time.Now()
	}()
	time.Sleep(200 * time.Millisecond)
	released := time.Now()
	if _, err := q.Release(ctx, "w", "h"); err != nil {
		t.Fatal(err)
	}
	if d := (<-done).Sub(released); d > 100*time.Millisecond {
		t.Fatalf("waiter answered %v after the release", d)
	}
}

// A minority down: the service stays up, exclusive, with rising fences.
func TestQuorumMinorityDown(t *testing.T) {
	for _, tc := range []struct{ n, down int }{{3, 1}, {5, 2}} {
		t.Run(fmt.Sprintf("%d-of-%d-down", tc.down, tc.n), func(t *testing.T) {
			srvs, q := startQuorum(t, tc.n)
			l := lock.NewLocker(q, q)
			e := newExclusion(t, l, "m/1", "m/2", "m/3")
			stop := e.run(8, 2*time.Second)
			time.Sleep(400 * time.Millisecond)
			for i := 0; i < tc.down; i++ {
				srvs[i].Kill() // in the middle of the load
				time.Sleep(100 * time.Millisecond)
			}
			before := e.grants.Load()
			time.Sleep(1200 * time.Millisecond)
			stop()
			if e.grants.Load() <= before {
				t.Errorf("no grants with %d of %d masters down", tc.down, tc.n)
			}
			e.check()
			if err := q.Ping(context.Background()); err != nil {
				t.Errorf("ping with a minority down: %v", err)
			}
		})
	}
}

// A majority down: every call is ErrUnavailable, never a grant, and fast.
func TestQuorumMajorityDownIsUnavailable(t *testing.T) {
	srvs, q := startQuorum(t, 5)
	ctx := context.Background()
	held, err := q.Acquire(ctx, lock.AcquireRequest{ID: "held", Owner: "o", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	srvs[0].Kill()
	srvs[1].Kill()
	srvs[2].Pause() // one of the majority paused rather than dead
	defer srvs[2].Resume()
	for i := 0; i < 10; i++ {
		start := time.Now()
		l, err := q.Acquire(ctx, lock.AcquireRequest{ID: fmt.Sprintf("free/%d", i), Owner: "x", TTL: time.Minute})
		if !errors.Is(err, lock.ErrUnavailable) {
			t.Fatalf("acquire with a majority down = %+v, %v; want ErrUnavailable", l, err)
		}
		if d := time.Since(start); d > 3*opTimeout {
			t.Fatalf("acquire took %v", d)
		}
	}
	if _, err := q.Acquire(ctx, lock.AcquireRequest{ID: "held", Owner: "o", TTL: time.Minute}); !errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("retry by the holder with a majority down = %v", err)
	}
	if _, err := q.Heartbeat(ctx, "held", "o", time.Minute); !errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("heartbeat = %v", err)
	}
	if _, err := q.Release(ctx, "held", "o"); !errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("release = %v", err)
	}
	if _, err := q.Inspect(ctx, "held"); !errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("inspect = %v", err)
	}
	if err := q.Ping(ctx); !errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("ping = %v", err)
	}
	l := lock.NewLocker(q, q)
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "held", Owner: "w", TTL: time.Minute, Wait: time.Second}); !errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("waiting acquire = %v", err)
	}
	_ = held
}

// A paused master (SIGSTOP) costs no call more than the majority's answer.
func TestQuorumPausedMasterDoesNotHang(t *testing.T) {
	srvs, q := startQuorum(t, 3)
	l := lock.NewLocker(q, q)
	ctx := context.Background()
	srvs[1].Pause()
	defer srvs[1].Resume()
	var last int64
	for i := 0; i < 20; i++ {
		start := time.Now()
		// Bounds with room for a loaded CI machine: a paused master would
		// otherwise hold these calls for as long as it stays paused.
		cctx, cancel := context.WithTimeout(ctx, 2*opTimeout)
		lease, err := l.Acquire(cctx, lock.AcquireRequest{ID: "p", Owner: "o" + strconv.Itoa(i), TTL: time.Second})
		cancel()
		if err != nil || lease.Fence <= last {
			t.Fatalf("acquire %d with a paused master = %+v, %v", i, lease, err)
		}
		last = lease.Fence
		if _, err := q.Heartbeat(ctx, "p", "o"+strconv.Itoa(i), time.Second); err != nil {
			t.Fatalf("heartbeat: %v", err)
		}
		if _, err := q.Inspect(ctx, "p"); err != nil {
			t.Fatalf("inspect: %v", err)
		}
		if _, err := q.Release(ctx, "p", "o"+strconv.Itoa(i)); err != nil {
			t.Fatalf("release: %v", err)
		}
		if d := time.Since(start); d > 4*opTimeout {
			t.Fatalf("acquire, heartbeat, inspect and release took %v with a paused master", d)
		}
	}
	// A waiter is woken by a release although one master never confirms.
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "pw", Owner: "h", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := l.Acquire(ctx, lock.AcquireRequest{ID: "pw", Owner: "w", TTL: time.Second, Wait: 3 * time.Second})
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	released := time.Now()
	if _, err := q.Release(ctx, "pw", "h"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	if d := time.Since(released); d > 150*time.Millisecond {
		t.Fatalf("waiter answered %v after the release", d)
	}
}

// Fences rise across a minority that loses its data, by FLUSHALL or by a
// restart without persistence, while the lock is held and after it ended.
func TestQuorumFencesAcrossMinorityDataLoss(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			srvs, q := startQuorum(t, n)
			ctx := context.Background()
			minority := n / 2
			var last int64
			step := func(what string, hold bool) {
				t.Helper()
				lease := acquireRetry(t, q, "f", what, time.Minute)
				if lease.Fence <= last {
					t.Fatalf("%s: fence %d, not above %d", what, lease.Fence, last)
				}
				last = lease.Fence
				if hold {
					// The acquire answered once a majority granted; a master
					// whose connection a restart broke may have none. Losing a
					// minority below keeps the lease only if every master has
					// it, so take it again until they all do. A restarted
					// master takes a moment to be dialled again: try for 5 s,
					// not 20 times in a row (which a loaded machine ran
					// through before the master was back).
					for deadline := time.Now().Add(5 * time.Second); !onEveryMaster(ctx, srvs, q.Key("f"), what); time.Sleep(50 * time.Millisecond) {
						if time.Now().After(deadline) {
							for _, s := range srvs {
								t.Logf("%s: %v pttl %v", s.Addr(), s.Client().HGetAll(ctx, q.Key("f")).Val(), s.Client().PTTL(ctx, q.Key("f")).Val())
							}
							t.Fatalf("%s: never granted on every master within 5s", what)
						}
						if _, err := q.Release(ctx, "f", what); err != nil {
							t.Fatalf("%s: release: %v", what, err)
						}
						lease = acquireRetry(t, q, "f", what, time.Minute)
						if lease.Fence <= last {
							t.Fatalf("%s: fence %d, not above %d", what, lease.Fence, last)
						}
						last = lease.Fence
					}
				}
				if !hold {
					if _, err := q.Release(ctx, "f", what); err != nil {
						t.Fatalf("%s: release: %v", what, err)
					}
					// The release answered once a majority released; a master
					// whose connection a restart broke may still hold the
					// lease, and would refuse the next holder there for a
					// whole TTL. Release again (each call goes to every
					// master) until none holds it.
					for deadline := time.Now().Add(5 * time.Second); onAnyMaster(ctx, srvs, q.Key("f"), what); time.Sleep(50 * time.Millisecond) {
						if time.Now().After(deadline) {
							t.Fatalf("%s: still held on a master 5s after its release", what)
						}
						_, _ = q.Release(ctx, "f", what) // a majority may answer not held: it is released there
					}
				}
			}
			step("first", true)
			for round := 0; round < 3; round++ {
				// A different minority each round, so every master lost data once.
				var lost []int
				for i := 0; i < minority; i++ {
					lost = append(lost, (round*minority+i)%n)
				}
				for _, i := range lost {
					srvs[i].Flush()
				}
				// The holder's lease still lives on a majority.
				if _, err := q.Acquire(ctx, lock.AcquireRequest{ID: "f", Owner: "intruder", TTL: time.Minute}); !errors.Is(err, lock.ErrHeld) {
					t.Fatalf("round %d: acquire by another owner after FLUSHALL of %v = %v", round, lost, err)
				}
				if _, err := q.Release(ctx, "f", lastOwner(round)); err != nil {
					for _, s := range srvs {
						t.Logf("%s: %v", s.Addr(), s.Client().HGetAll(ctx, q.Key("f")).Val())
					}
					t.Fatalf("round %d: release by %s: %v", round, lastOwner(round), err)
				}
				step(fmt.Sprintf("after FLUSHALL %d", round), false)
				for _, i := range lost {
					srvs[i].Restart()
				}
				step(fmt.Sprintf("after restart %d", round), false)
				time.Sleep(600 * time.Millisecond) // every tombstone gone: the clocks are the floor
				step(lastOwner(round+1), true)
			}
		})
	}
}

// onEveryMaster reports whether owner holds key on every one of srvs.
func onEveryMaster(ctx context.Context, srvs []*redistest.Server, key, owner string) bool {
	time.Sleep(20 * time.Millisecond) // a grant answered late is still on its way
	for _, srv := range srvs {
		if srv.Client().HGet(ctx, key, "owner").Val() != owner {
			return false
		}
	}
	return true
}

// onAnyMaster reports whether some master's lease on key is owner's.
func onAnyMaster(ctx context.Context, srvs []*redistest.Server, key, owner string) bool {
	time.Sleep(20 * time.Millisecond) // a release answered late is still on its way
	for _, srv := range srvs {
		if srv.Client().HGet(ctx, key, "owner").Val() == owner {
			return true
		}
	}
	return false
}

func lastOwner(round int) string {
	if round == 0 {
		return "first"
	}
	return fmt.Sprintf("holder %d", round)
}

// A master that saw a later proposal refuses an earlier one; the acquire
// still succeeds on the majority, or with a fresh proposal.
func TestQuorumStaleProposal(t *testing.T) {
	srvs, q := startQuorum(t, 3)
	ctx := context.Background()
	a := acquireRetry(t, q, "s", "a", time.Minute)
	if _, err := q.Release(ctx, "s", "a"); err != nil {
		t.Fatal(err)
	}
	// A failed attempt's tombstone with a fence far above the clocks, on
	// one master, then on all of them.
	high := a.Fence + int64(time.Hour/time.Microsecond)
	srvs[0].Client().HSet(ctx, q.Key("s"), "owner", "", "fence", high, "prev", "gone")
	b := acquireRetry(t, q, "s", "b", time.Minute)
	if b.Fence <= a.Fence {
		t.Fatalf("fence %d, not above %d", b.Fence, a.Fence)
	}
	if _, err := q.Release(ctx, "s", "b"); err != nil {
		t.Fatal(err)
	}
	for _, s := range srvs {
		s.Client().HSet(ctx, q.Key("s"), "owner", "", "fence", high, "prev", "gone")
	}
	c := acquireRetry(t, q, "s", "c", time.Minute)
	if c.Fence <= high {
		t.Fatalf("fence %d, not above the majority's %d", c.Fence, high)
	}
}
