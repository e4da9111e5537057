//go:build integration

package lock_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"handler/function/function/lock"
	"handler/function/function/redistest"
)

// newLocker is a Locker on srv whose round trips may take 2 s: these tests
// prove exclusion, fences and wake-ups, and on a loaded two-core machine
// (the race detector, other suites) a 300 ms bound failed healthy calls.
func newLocker(t *testing.T, srv *redistest.Server) (*lock.Locker, *lock.RedisStore) {
	return newLockerTimeout(t, srv, 2*time.Second)
}

// newLockerTimeout is newLocker with round trips bounded by timeout.
func newLockerTimeout(t *testing.T, srv *redistest.Server, timeout time.Duration) (*lock.Locker, *lock.RedisStore) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: 2, ContextTimeoutEnabled: true,
		DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, MaxRetries: 1})
	s := lock.NewRedisStore(rdb, lock.RedisOptions{Prefix: "it:", Timeout: timeout})
	t.Cleanup(func() { s.Close() })
	return lock.NewLocker(s, s), s
}

func TestMutualExclusion16Clients(t *testing.T) {
	srv := redistest.Start(t)
	l, _ := newLocker(t, srv)
	var (
		inside   atomic.Int32
		mu       sync.Mutex
		fences   []int64
		overlaps atomic.Int32
	)
	const clients, rounds = 16, 25
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			ctx := context.Background()
			owner := fmt.Sprintf("client-%d", c)
			for r := 0; r < rounds; r++ {
				lease, err := l.Acquire(ctx, lock.AcquireRequest{ID: "shared", Owner: owner, TTL: 5 * time.Second, Wait: 20 * time.Second})
				if err != nil {
					t.Errorf("%s: %v", owner, err)
					return
				}
				if inside.Add(1) != 1 {
					overlaps.Add(1)
				}
				mu.Lock()
				fences = append(fences, lease.Fence)
				mu.Unlock()
				time.Sleep(100 * time.Microsecond)
				inside.Add(-1)
				if _, err := l.Release(ctx, "shared", owner); err != nil {
					t.Errorf("%s release: %v", owner, err)
					return
				}
			}
		}(c)
	}
	wg.Wait()
	if n := overlaps.Load(); n != 0 {
		t.Fatalf("%d overlapping holders", n)
	}
	if len(fences) != clients*rounds {
		t.Fatalf("%d grants, want %d", len(fences), clients*rounds)
	}
	for i := 1; i < len(fences); i++ {
		if fences[i] <= fences[i-1] {
			t.Fatalf("fence %d (%d) not above fence %d (%d)", i, fences[i], i-1, fences[i-1])
		}
	}
}

func TestExpiryTakeoverAndHeartbeat(t *testing.T) {
	srv := redistest.Start(t)
	l, s := newLocker(t, srv)
	ctx := context.Background()
	const ttl = 500 * time.Millisecond // generous: heartbeats must land in time on a loaded 2-core CI
	a, err := l.Acquire(ctx, lock.AcquireRequest{ID: "e", Owner: "a", TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	// Heartbeats keep it past its first TTL.
	for i := 0; i < 4; i++ {
		time.Sleep(ttl / 3)
		if _, err := s.Heartbeat(ctx, "e", "a", ttl); err != nil {
			t.Fatalf("heartbeat %d: %v", i, err)
		}
	}
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "e", Owner: "b", TTL: time.Second}); !errors.Is(err, lock.ErrHeld) {
		t.Fatalf("acquire during a heartbeated lease = %v", err)
	}
	time.Sleep(ttl + 50*time.Millisecond)
	if _, err := s.Heartbeat(ctx, "e", "a", time.Second); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("heartbeat after expiry = %v, want ErrNotHeld", err)
	}
	b, err := l.Acquire(ctx, lock.AcquireRequest{ID: "e", Owner: "b", TTL: time.Second})
	if err != nil || b.Fence <= a.Fence {
		t.Fatalf("takeover = %+v, %v", b, err)
	}
	if _, err := s.Release(ctx, "e", "a"); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("late release by the expired owner = %v", err)
	}
}

func TestFencesAcrossDataLoss(t *testing.T) {
	srv := redistest.Start(t)
	l, _ := newLocker(t, srv)
	ctx := context.Background()
	var last int64
	step := func(what string) {
		t.Helper()
		lease, err := l.Acquire(ctx, lock.AcquireRequest{ID: "f", Owner: what, TTL: time.Minute})
		for err != nil && errors.Is(err, lock.ErrUnavailable) { // the first call after a restart may meet a dead connection
			lease, err = l.Acquire(ctx, lock.AcquireRequest{ID: "f", Owner: what, TTL: time.Minute})
		}
		if err != nil || lease.Fence <= last {
			t.Fatalf("%s: %+v, %v; want a fence above %d", what, lease, err, last)
		}
		last = lease.Fence
	}
	step("first")
	srv.Flush()
	step("after FLUSHALL")
	srv.Restart()
	step("after a restart that lost everything")
	srv.Kill()
	srv.Restart()
	step("after SIGKILL and restart")
}

func TestKeysGoneSoonAfterLeasesEnd(t *testing.T) {
	srv := redistest.Start(t)
	l, s := newLocker(t, srv)
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		id := fmt.Sprintf("k%d", i)
		if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: id, Owner: "o", TTL: 200 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := s.Release(ctx, id, "o"); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(time.Second)
	// Redis expires keys lazily and by sampling; ask each key, as a reader would.
	for i := 0; i < 100; i++ {
		if n := srv.Client().Exists(ctx, s.Key(fmt.Sprintf("k%d", i))).Val(); n != 0 {
			t.Fatalf("k%d still live 1s after its lease ended", i)
		}
	}
	if n := srv.Client().DBSize(ctx).Val(); n != 0 {
		t.Fatalf("DBSIZE = %d after every lease ended", n)
	}
}

func TestWaitWokenByReleaseAndByExpiry(t *testing.T) {
	srv := redistest.Start(t)
	l, s := newLocker(t, srv)
	ctx := context.Background()
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "w", Owner: "h", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	done := make(chan time.Time, 1)
	go func() {
		if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "w", Owner: "w1", TTL: 300 * time.Millisecond, Wait: 5 * time.Second}); err != nil {
			t.Errorf("waiter: %v", err)
		}
		done <- time.Now()
	}()
	time.Sleep(100 * time.Millisecond)
	released := time.Now()
	if _, err := s.Release(ctx, "w", "h"); err != nil {
		t.Fatal(err)
	}
	if d := (<-done).Sub(released); d > 250*time.Millisecond {
		t.Fatalf("waiter answered %v after the release", d)
	}
	// w1 holds it for 300ms and never releases: the next waiter gets it at expiry.
	start := time.Now()
	lease, err := l.Acquire(ctx, lock.AcquireRequest{ID: "w", Owner: "w2", TTL: time.Second, Wait: 5 * time.Second})
	if err != nil || !lease.Woken {
		t.Fatalf("waiter on expiry: %+v, %v", lease, err)
	}
	// Woken by the lease's end, not by a poll: well before the 5s wait is out.
	if d := time.Since(start); d > time.Second {
		t.Fatalf("expiry wake-up took %v for a 300ms lease", d)
	}
}

func TestCancelledWaitersLeaveNothing(t *testing.T) {
	srv := redistest.Start(t)
	l, s := newLocker(t, srv)
	ctx := context.Background()
	// Warm the shared subscription so its one goroutine is in the baseline.
	l.Acquire(ctx, lock.AcquireRequest{ID: "warm", Owner: "a", TTL: time.Hour})
	l.Acquire(ctx, lock.AcquireRequest{ID: "warm", Owner: "b", TTL: time.Hour, Wait: time.Millisecond})
	time.Sleep(50 * time.Millisecond)
	base := runtime.NumGoroutine()

	for i := 0; i < 20; i++ {
		l.Acquire(ctx, lock.AcquireRequest{ID: fmt.Sprintf("c%d", i), Owner: "h", TTL: time.Hour})
	}
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			wctx, cancel := context.WithTimeout(ctx, time.Duration(20+i%50)*time.Millisecond)
			defer cancel()
			if i%2 == 0 { // half cancelled by their caller, half timing out
				wctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(time.Duration(10+i%40)*time.Millisecond, cancel)
			}
			_, err := l.Acquire(wctx, lock.AcquireRequest{ID: fmt.Sprintf("c%d", i%20), Owner: fmt.Sprintf("w%d", i), TTL: time.Second, Wait: 10 * time.Second})
			if err == nil {
				t.Errorf("waiter %d got a held lock", i)
			}
		}(i)
	}
	wg.Wait()
	deadline := time.Now().Add(3 * time.Second)
	for {
		g := runtime.NumGoroutine()
		chans, _ := srv.Client().PubSubChannels(ctx, "*").Result()
		if g <= base && len(chans) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after cancelled waiters: %d goroutines (baseline %d), channels %v", g, base, chans)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A waiter leaves the queue as it gives up; one cancelled while its
	// try was on the wire may be queued again by that try after it left,
	// and that place lapses within QueueHold.
	for deadline := time.Now().Add(lock.QueueHold + time.Second); ; time.Sleep(20 * time.Millisecond) {
		n := srv.Client().DBSize(ctx).Val()
		if n == 21 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("DBSIZE = %d, want the 21 held locks only", n)
		}
	}
	_ = s
}

func TestPausedRedisAnswersInTime(t *testing.T) {
	srv := redistest.Start(t)
	l, _ := newLockerTimeout(t, srv, 300*time.Millisecond)
	ctx := context.Background()
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "p", Owner: "o", TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	start := time.Now()
	_, err := l.Acquire(ctx, lock.AcquireRequest{ID: "p2", Owner: "o", TTL: time.Second})
	srv.Resume()
	if !errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("acquire on a paused Redis = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v", d)
	}
}
