package lock

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Past the cap, a waiting acquire of a held lock answers at once with
// ErrTooManyWaiters (a 503) and the current lease; below it, it waits.
func TestWaitersAreCapped(t *testing.T) {
	m := miniredis.RunT(t)
	s := NewRedisStore(redis.NewClient(&redis.Options{Addr: m.Addr(), Protocol: 2}), RedisOptions{Prefix: "test:"})
	t.Cleanup(func() { s.Close() })
	l := NewLocker(s, s, WithMaxWaiters(2))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	held, err := l.Acquire(ctx, AcquireRequest{ID: "a", Owner: "holder", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 2)
	for _, id := range []string{"a", "a"} {
		go func() {
			_, err := l.Acquire(ctx, AcquireRequest{ID: id, Owner: "w", TTL: time.Second, Wait: time.Minute})
			ended <- err
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.Waiters() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters, want 2", l.Waiters())
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	lease, err := l.Acquire(ctx, AcquireRequest{ID: "a", Owner: "third", TTL: time.Second, Wait: time.Minute})
	if !errors.Is(err, ErrTooManyWaiters) || !errors.Is(err, ErrUnavailable) || !lease.Held || lease.Fence != held.Fence {
		t.Fatalf("third waiter = %+v, %v; want ErrTooManyWaiters with the current lease", lease, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the refusal took %v; it must come at once", d)
	}
	// A call that does not wait, or finds the lock free, is never refused.
	if _, err := l.Acquire(ctx, AcquireRequest{ID: "a", Owner: "x", TTL: time.Second}); !errors.Is(err, ErrHeld) {
		t.Fatalf("acquire without wait = %v, want ErrHeld", err)
	}
	if _, err := l.Acquire(ctx, AcquireRequest{ID: "free", Owner: "x", TTL: time.Second, Wait: time.Minute}); err != nil {
		t.Fatalf("waiting acquire of a free lock = %v", err)
	}
	cancel()
	for range 2 {
		<-ended
	}
	if n := l.Waiters(); n != 0 {
		t.Fatalf("%d waiters after every wait ended", n)
	}
	// The slots are free again.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := l.Acquire(ctx2, AcquireRequest{ID: "a", Owner: "w", TTL: time.Second, Wait: 20 * time.Millisecond}); !errors.Is(err, ErrHeld) {
		t.Fatalf("a waiter after the others left = %v, want ErrHeld after its wait", err)
	}
}

// A wait ended by the caller's cancellation or by shutdown says how long it
// lasted, as one that ran out or was granted does.
func TestWaitedSetWhateverEndsTheWait(t *testing.T) {
	l, s, _ := newMiniStore(t)
	if _, err := acquire(t, l, "w", "holder", time.Hour); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		waitForSubscribers(t, s, "w", 1)
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	lease, err := l.Acquire(ctx, AcquireRequest{ID: "w", Owner: "c", TTL: time.Second, Wait: time.Minute})
	if !errors.Is(err, context.Canceled) || lease.Waited < 20*time.Millisecond {
		t.Fatalf("cancelled wait = %+v, %v; want context.Canceled and Waited >= 20ms", lease, err)
	}
	// The hub leaves a channel after its last waiter, not at once: wait for
	// that, or the count below could be the first waiter's and the second
	// wait shorter than the sleep.
	waitForSubscribers(t, s, "w", 0)
	go func() {
		waitForSubscribers(t, s, "w", 1)
		time.Sleep(20 * time.Millisecond)
		l.Shutdown()
	}()
	lease, err = l.Acquire(context.Background(), AcquireRequest{ID: "w", Owner: "c", TTL: time.Second, Wait: time.Minute})
	if !errors.Is(err, ErrClosed) || lease.Waited < 20*time.Millisecond {
		t.Fatalf("wait ended by shutdown = %+v, %v; want ErrClosed and Waited >= 20ms", lease, err)
	}
}
