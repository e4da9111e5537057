package lock

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// newMiniStore is a store on miniredis, whose TTLs move only on FastForward.
func newMiniStore(t *testing.T) (*Locker, *RedisStore, *miniredis.Miniredis) {
	t.Helper()
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), Protocol: 2})
	s := NewRedisStore(rdb, RedisOptions{Prefix: "test:"})
	t.Cleanup(func() { s.Close() })
	return NewLocker(s, s), s, m
}

func acquire(t *testing.T, l *Locker, id, owner string, ttl time.Duration) (Lease, error) {
	t.Helper()
	return l.Acquire(context.Background(), AcquireRequest{ID: id, Owner: owner, TTL: ttl})
}

func TestAcquireReleaseHeartbeat(t *testing.T) {
	l, s, m := newMiniStore(t)
	ctx := context.Background()

	a, err := acquire(t, l, "job", "alice", time.Second)
	if err != nil || !a.Held || a.Owner != "alice" || a.Fence <= 0 || a.TTL != time.Second {
		t.Fatalf("first acquire = %+v, %v", a, err)
	}
	if !m.Exists("test:{job}") {
		t.Fatalf("key test:{job} missing; keys: %v", m.Keys())
	}
	b, err := acquire(t, l, "job", "bob", time.Second)
	if !errors.Is(err, ErrHeld) || b.Owner != "" || b.Fence != a.Fence || !b.Held || b.TTL <= 0 {
		t.Fatalf("acquire by another owner = %+v, %v; want ErrHeld with the current lease, no owner", b, err)
	}
	again, err := acquire(t, l, "job", "alice", 2*time.Second)
	if err != nil || again.Fence != a.Fence || again.TTL != 2*time.Second {
		t.Fatalf("re-acquire by the holder = %+v, %v; want same fence, new TTL", again, err)
	}
	if _, err := s.Heartbeat(ctx, "job", "bob", time.Second); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("heartbeat by a stranger = %v, want ErrNotHeld", err)
	}
	if _, err := s.Release(ctx, "job", "bob"); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("release by a stranger = %v, want ErrNotHeld", err)
	}
	hb, err := s.Heartbeat(ctx, "job", "alice", 5*time.Second)
	if err != nil || hb.Fence != a.Fence || hb.TTL != 5*time.Second {
		t.Fatalf("heartbeat by the holder = %+v, %v", hb, err)
	}
	if got := m.TTL("test:{job}"); got != 5*time.Second {
		t.Fatalf("TTL after heartbeat = %v, want 5s", got)
	}
	in, err := s.Inspect(ctx, "job")
	if err != nil || !in.Held || in.Owner != "" || in.Fence != a.Fence {
		t.Fatalf("inspect = %+v, %v", in, err)
	}
	rel, err := s.Release(ctx, "job", "alice")
	if err != nil || rel.Held || rel.Fence != a.Fence {
		t.Fatalf("release = %+v, %v", rel, err)
	}
	if _, err := s.Release(ctx, "job", "alice"); err != nil {
		t.Fatalf("a repeated release by the same owner should succeed (idempotent retry): %v", err)
	}
	if _, err := s.Heartbeat(ctx, "job", "alice", time.Second); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("heartbeat after release = %v, want ErrNotHeld", err)
	}
	in, _ = s.Inspect(ctx, "job")
	if in.Held || in.Fence != a.Fence || in.TTL != 0 {
		t.Fatalf("inspect of a released lock = %+v, want free with the last fence", in)
	}
	c, err := acquire(t, l, "job", "bob", time.Second)
	if err != nil || c.Fence <= a.Fence {
		t.Fatalf("acquire after release = %+v, %v; want a fence above %d", c, err, a.Fence)
	}
	m.FastForward(2 * time.Second)
	if m.Exists("test:{job}") {
		t.Fatal("the key outlived its lease")
	}
}

func TestExpiredLeaseIsNeverRevived(t *testing.T) {
	l, s, m := newMiniStore(t)
	ctx := context.Background()
	a, _ := acquire(t, l, "x", "alice", 100*time.Millisecond)
	m.FastForward(101 * time.Millisecond)
	if _, err := s.Heartbeat(ctx, "x", "alice", time.Second); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("heartbeat after expiry = %v, want ErrNotHeld", err)
	}
	if _, err := s.Release(ctx, "x", "alice"); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("late release = %v, want ErrNotHeld", err)
	}
	b, err := acquire(t, l, "x", "bob", time.Second)
	if err != nil || b.Fence <= a.Fence {
		t.Fatalf("takeover after expiry = %+v, %v", b, err)
	}
	if len(m.Keys()) != 1 {
		t.Fatalf("keys = %v, want only the lock's hash", m.Keys())
	}
}

func TestFenceSurvivesClockStall(t *testing.T) {
	// With Redis' clock frozen, fences still increase through the tombstone.
	l, s, m := newMiniStore(t)
	m.SetTime(time.Unix(1_800_000_000, 0))
	var last int64
	for i := 0; i < 5; i++ {
		a, err := acquire(t, l, "f", "o", time.Second)
		if err != nil || a.Fence <= last {
			t.Fatalf("round %d: %+v, %v (last fence %d)", i, a, err, last)
		}
		last = a.Fence
		if _, err := s.Release(context.Background(), "f", "o"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBackendDownIsUnavailable(t *testing.T) {
	l, s, m := newMiniStore(t)
	m.Close()
	ctx := context.Background()
	if _, err := acquire(t, l, "x", "o", time.Second); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("acquire = %v, want ErrUnavailable", err)
	}
	if _, err := s.Release(ctx, "x", "o"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("release = %v", err)
	}
	if _, err := s.Heartbeat(ctx, "x", "o", time.Second); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("heartbeat = %v", err)
	}
	if _, err := s.Inspect(ctx, "x"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("inspect = %v", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ping = %v", err)
	}
}

// TestWaitWokenByRelease: a waiter on a lock held for an hour gets it soon
// after the holder releases, with a higher fence, and not before. Whether it
// reports Woken depends on where the release lands: after the waiter's
// subscription is confirmed it tries once more before sleeping, and a release
// that lands before that retry is seen by the retry itself (Woken false).
// Both are what the contract promises; a broken wake-up would leave the
// waiter asleep until its 10 s wait ran out and answer ErrHeld.
func TestWaitWokenByRelease(t *testing.T) {
	l, s, _ := newMiniStore(t)
	held, err := acquire(t, l, "w", "holder", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	const wait = 10 * time.Second
	type answer struct {
		lease Lease
		err   error
		at    time.Time
	}
	got := make(chan answer, 1)
	go func() {
		lease, err := l.Acquire(context.Background(), AcquireRequest{ID: "w", Owner: "waiter", TTL: time.Second, Wait: wait})
		got <- answer{lease, err, time.Now()}
	}()
	waitForSubscribers(t, s, "w", 1) // the first try was refused: it waits
	select {
	case a := <-got:
		t.Fatalf("waiter answered while the lock was held: %+v, %v", a.lease, a.err)
	default:
	}
	released := time.Now()
	if _, err := s.Release(context.Background(), "w", "holder"); err != nil {
		t.Fatal(err)
	}
	a := <-got
	if a.err != nil || a.lease.Owner != "waiter" || !a.lease.Held || a.lease.Fence <= held.Fence || a.lease.Waited <= 0 {
		t.Fatalf("waiter got %+v, %v; want the lease with a fence above %d", a.lease, a.err, held.Fence)
	}
	// Answered because of the release, not at the end of the wait (generous
	// for a loaded machine, far below the 10 s wait).
	if d := a.at.Sub(released); d > wait/2 {
		t.Fatalf("waiter answered %v after the release", d)
	}
	t.Logf("waiter granted %v after the release (woken: %v)", a.at.Sub(released), a.lease.Woken)
	waitForSubscribers(t, s, "w", 0)
}

func TestWaitRunsOut(t *testing.T) {
	l, s, _ := newMiniStore(t)
	first, _ := acquire(t, l, "w", "holder", time.Hour)
	lease, err := l.Acquire(context.Background(), AcquireRequest{ID: "w", Owner: "waiter", TTL: time.Second, Wait: 30 * time.Millisecond})
	if !errors.Is(err, ErrHeld) || lease.Fence != first.Fence || lease.Owner != "" {
		t.Fatalf("wait ran out: %+v, %v; want ErrHeld with the holder's fence", lease, err)
	}
	waitForSubscribers(t, s, "w", 0)
}

func TestShutdownEndsWaiters(t *testing.T) {
	l, s, _ := newMiniStore(t)
	acquire(t, l, "w", "holder", time.Hour)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.Acquire(context.Background(), AcquireRequest{ID: "w", Owner: "waiter", TTL: time.Second, Wait: time.Minute})
			errs <- err
		}()
	}
	waitForSubscribers(t, s, "w", 1)
	l.Shutdown()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrClosed) || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("waiter after shutdown: %v, want ErrClosed (an ErrUnavailable)", err)
		}
	}
	if _, err := acquire(t, l, "other", "o", time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("acquire after shutdown = %v", err)
	}
	if _, err := s.Release(context.Background(), "w", "holder"); err != nil {
		t.Fatalf("release after shutdown must still work: %v", err)
	}
}

// waitForSubscribers waits until Redis counts n subscribers to id's channel.
func waitForSubscribers(t *testing.T, s *RedisStore, id string, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := s.rdb.PubSubNumSub(context.Background(), s.channel(id)).Result()
		if err == nil && got[s.channel(id)] == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscribers of %s = %v (%v), want %d", id, got, err, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestPipelinedCalls runs many concurrent calls, which the store sends to
// Redis in pipelines, across a SCRIPT FLUSH that makes EVALSHA fail.
func TestPipelinedCalls(t *testing.T) {
	l, s, _ := newMiniStore(t)
	round := func(name string) {
		var wg sync.WaitGroup
		for i := 0; i < 64; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				id, owner := fmt.Sprintf("%s-%d", name, i), fmt.Sprintf("o%d", i)
				a, err := acquire(t, l, id, owner, time.Second)
				if err != nil || a.Owner != owner || a.Fence <= 0 {
					t.Errorf("%s: acquire = %+v, %v", id, a, err)
					return
				}
				if _, err := acquire(t, l, id, "other", time.Second); !errors.Is(err, ErrHeld) {
					t.Errorf("%s: second owner: %v", id, err)
				}
				if r, err := s.Release(context.Background(), id, owner); err != nil || r.Fence != a.Fence {
					t.Errorf("%s: release = %+v, %v", id, r, err)
				}
			}(i)
		}
		wg.Wait()
	}
	round("warm")
	if err := s.rdb.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	round("flushed")
}

func TestCloseAnswersQueuedCalls(t *testing.T) {
	l, s, _ := newMiniStore(t)
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := acquire(t, l, fmt.Sprintf("c%d", i), "o", time.Second)
			if err != nil && !errors.Is(err, ErrUnavailable) {
				t.Errorf("call during Close: %v, want success or ErrUnavailable", err)
			}
		}(i)
	}
	s.Close()
	wg.Wait()
	if _, err := acquire(t, l, "after", "o", time.Second); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("call after Close: %v", err)
	}
}

// A release by another owner just after the holder's release finds the
// tombstone: the lock is free (state 0), not held.
func TestReleaseOfTombstoneByAnotherIsFree(t *testing.T) {
	l, s, _ := newMiniStore(t)
	ctx := context.Background()
	a, err := acquire(t, l, "job", "alice", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Release(ctx, "job", "alice"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Release(ctx, "job", "bob")
	if !errors.Is(err, ErrNotHeld) || got.Held || got.TTL != 0 || got.Fence != a.Fence {
		t.Fatalf("release by another owner of a released lock = %+v, %v; want ErrNotHeld, free, fence %d", got, err, a.Fence)
	}
	hb, err := s.Heartbeat(ctx, "job", "bob", time.Second)
	if !errors.Is(err, ErrNotHeld) || hb.Held {
		t.Fatalf("heartbeat of a released lock = %+v, %v; want ErrNotHeld, free", hb, err)
	}
	in, err := s.Inspect(ctx, "job")
	if err != nil || in.Held || in.Fence != a.Fence {
		t.Fatalf("inspect of a released lock = %+v, %v", in, err)
	}
	// A repeated release by the holder itself still succeeds (idempotent).
	if _, err := s.Release(ctx, "job", "alice"); err != nil {
		t.Fatalf("repeated release by the holder: %v", err)
	}
}

// keysOf names the same keys as the one-key helpers, in each script's order.
func TestKeysOfMatchesTheKeyNames(t *testing.T) {
	s := &RedisStore{opts: RedisOptions{Prefix: "candado:"}}
	id := "jobs/nightly{x}"
	for _, tc := range []struct {
		suffixes []string
		want     []string
	}{
		{acquireKeys, []string{s.Key(id), s.changes(id), s.leasesKey(id), s.leaseInfoKey(id), s.queueKey(id), s.queueDeadlinesKey(id), s.channel(id)}},
		{releaseKeys, []string{s.Key(id), s.channel(id), s.changes(id), s.leasesKey(id), s.leaseInfoKey(id), s.queueKey(id), s.queueDeadlinesKey(id)}},
		{heartbeatKeys, []string{s.Key(id), s.changes(id), s.leasesKey(id), s.leaseInfoKey(id)}},
		{inspectKeys, []string{s.Key(id), s.leasesKey(id), s.leaseInfoKey(id), s.queueDeadlinesKey(id)}},
	} {
		if got := s.keysOf(id, tc.suffixes); !slices.Equal(got, tc.want) {
			t.Errorf("keysOf = %q, want %q", got, tc.want)
		}
	}
}
