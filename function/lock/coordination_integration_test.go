//go:build integration

package lock_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"handler/function/function/lock"
	"handler/function/function/redistest"
)

// The holder label is public: the holder's own answer, Inspect and a
// refusal all show it; the owner only the holder's answer.
func TestHolderLabelIsShown(t *testing.T) {
	srv := redistest.Start(t)
	l, s := newLocker(t, srv)
	ctx := context.Background()
	a, err := l.Acquire(ctx, lock.AcquireRequest{ID: "leader", Owner: "a", TTL: time.Minute, Holder: "worker-3 pid 4242"})
	if err != nil || a.Holder != "worker-3 pid 4242" {
		t.Fatalf("acquire = %+v, %v", a, err)
	}
	in, err := s.Inspect(ctx, "leader")
	if err != nil || in.Holder != "worker-3 pid 4242" || in.Owner != "" || len(in.Leases) != 1 || in.Leases[0].Holder != "worker-3 pid 4242" {
		t.Fatalf("inspect = %+v, %v", in, err)
	}
	held, err := l.Acquire(ctx, lock.AcquireRequest{ID: "leader", Owner: "b", TTL: time.Minute, Holder: "other"})
	if !errors.Is(err, lock.ErrHeld) || held.Holder != "worker-3 pid 4242" || held.Owner != "" {
		t.Fatalf("second acquire = %+v, %v; want held by the first holder's label", held, err)
	}
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "leader", Owner: "b", TTL: time.Minute, Holder: "bad\nlabel"}); !errors.Is(err, lock.ErrInvalid) {
		t.Fatalf("a label with a newline = %v, want ErrInvalid", err)
	}
}

// A semaphore of 3: three owners hold at once, each with its own fence;
// the fourth waits for a slot; another limit is refused; only owners
// release or extend their own lease; nothing is left behind.
func TestSemaphore(t *testing.T) {
	srv := redistest.Start(t)
	l, s := newLocker(t, srv)
	ctx := context.Background()
	req := func(owner string) lock.AcquireRequest {
		return lock.AcquireRequest{ID: "pool", Owner: owner, TTL: time.Minute, Limit: 3, Holder: "h-" + owner}
	}
	var last int64
	for _, o := range []string{"a", "b", "c"} {
		g, err := l.Acquire(ctx, req(o))
		if err != nil || g.Fence <= last || g.Holders != 3 && o == "c" || g.Limit != 3 {
			t.Fatalf("%s: %+v, %v; want a grant with a fence above %d", o, g, err, last)
		}
		last = g.Fence
	}
	again, err := l.Acquire(ctx, req("b"))
	if err != nil || again.Holders != 3 {
		t.Fatalf("b again = %+v, %v; want its lease kept", again, err)
	}
	full, err := l.Acquire(ctx, req("d"))
	if !errors.Is(err, lock.ErrHeld) || full.Holders != 3 || full.Limit != 3 || len(full.Leases) != 3 {
		t.Fatalf("d = %+v, %v; want held with 3 leases", full, err)
	}
	for _, li := range full.Leases {
		if li.Holder == "" || li.Fence == 0 || li.TTL <= 0 || li.Mode != lock.Exclusive {
			t.Fatalf("lease %+v: want fence, TTL, holder and mode", li)
		}
	}
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "pool", Owner: "e", TTL: time.Minute, Limit: 2}); !errors.Is(err, lock.ErrLimitMismatch) {
		t.Fatalf("limit 2 on a semaphore of 3 = %v, want ErrLimitMismatch", err)
	}
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "pool", Owner: "e", TTL: time.Minute, Mode: lock.Shared}); !errors.Is(err, lock.ErrLimitMismatch) {
		t.Fatalf("shared on a semaphore = %v, want ErrLimitMismatch", err)
	}
	if _, err := s.Release(ctx, "pool", "d"); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("release by a non-holder = %v", err)
	}
	if _, err := s.Heartbeat(ctx, "pool", "d", time.Minute); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("heartbeat by a non-holder = %v", err)
	}
	hb, err := s.Heartbeat(ctx, "pool", "a", 2*time.Minute)
	if err != nil || hb.TTL != 2*time.Minute {
		t.Fatalf("heartbeat of a = %+v, %v", hb, err)
	}

	// d waits; b's release hands it b's slot.
	got := make(chan lock.Lease, 1)
	go func() {
		g, err := l.Acquire(ctx, lock.AcquireRequest{ID: "pool", Owner: "d", TTL: time.Minute, Limit: 3, Wait: 10 * time.Second})
		if err != nil {
			t.Errorf("d waiting: %v", err)
		}
		got <- g
	}()
	waitFor(t, func() bool { in, _ := s.Inspect(ctx, "pool"); return in.Waiters == 1 })
	if _, err := s.Release(ctx, "pool", "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Release(ctx, "pool", "b"); err != nil {
		t.Fatalf("a repeated release = %v, want the idempotent success", err)
	}
	select {
	case g := <-got:
		if g.Fence <= last {
			t.Fatalf("d = %+v; want a fence above %d", g, last)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("d was not granted the freed slot")
	}
	in, _ := s.Inspect(ctx, "pool")
	if in.Holders != 3 || len(in.Leases) != 3 || in.Waiters != 0 {
		t.Fatalf("inspect = %+v; want a, c, d", in)
	}
	for _, o := range []string{"a", "c", "d"} {
		if _, err := s.Release(ctx, "pool", o); err != nil {
			t.Fatalf("release %s: %v", o, err)
		}
	}
	// The tombstone keeps the fence for a moment, then nothing is left.
	waitFor(t, func() bool { return srv.Client().DBSize(ctx).Val() == 0 })
}

// A semaphore lease that expires frees its slot, and its late heartbeat
// is refused.
func TestSemaphoreLeaseExpires(t *testing.T) {
	srv := redistest.Start(t)
	l, s := newLocker(t, srv)
	ctx := context.Background()
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "p", Owner: "a", TTL: 150 * time.Millisecond, Limit: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "p", Owner: "b", TTL: time.Minute, Limit: 2}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, err := l.Acquire(ctx, lock.AcquireRequest{ID: "p", Owner: "c", TTL: time.Minute, Limit: 2, Wait: 5 * time.Second})
	if err != nil || time.Since(start) > 3*time.Second {
		t.Fatalf("c = %+v, %v after %s; want a's slot once it expired", c, err, time.Since(start))
	}
	if _, err := s.Heartbeat(ctx, "p", "a", time.Minute); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("heartbeat of the expired lease = %v, want ErrNotHeld", err)
	}
}

// Shared leases are many; an exclusive one is alone; a waiting exclusive
// acquire holds back new shared ones, and is granted when the shared
// holders leave.
func TestSharedAndExclusive(t *testing.T) {
	srv := redistest.Start(t)
	l, s := newLocker(t, srv)
	ctx := context.Background()
	shared := func(owner string, wait time.Duration) (lock.Lease, error) {
		return l.Acquire(ctx, lock.AcquireRequest{ID: "doc", Owner: owner, TTL: time.Minute, Mode: lock.Shared, Wait: wait})
	}
	r1, err1 := shared("r1", 0)
	r2, err2 := shared("r2", 0)
	if err1 != nil || err2 != nil || r2.Fence <= r1.Fence || r2.Holders != 2 || r2.Mode != lock.Shared {
		t.Fatalf("two readers: %+v %v, %+v %v", r1, err1, r2, err2)
	}
	if w, err := l.Acquire(ctx, lock.AcquireRequest{ID: "doc", Owner: "w", TTL: time.Minute}); !errors.Is(err, lock.ErrHeld) || w.Mode != lock.Shared || w.Holders != 2 {
		t.Fatalf("writer beside readers = %+v, %v; want held by 2 shared", w, err)
	}
	writer := make(chan lock.Lease, 1)
	go func() {
		g, err := l.Acquire(ctx, lock.AcquireRequest{ID: "doc", Owner: "w", TTL: time.Minute, Wait: 10 * time.Second})
		if err != nil {
			t.Errorf("waiting writer: %v", err)
		}
		writer <- g
	}()
	waitFor(t, func() bool { in, _ := s.Inspect(ctx, "doc"); return in.Waiters == 1 })
	if _, err := shared("r3", 0); !errors.Is(err, lock.ErrHeld) {
		t.Fatalf("a new reader while a writer waits = %v, want held (writers do not starve)", err)
	}
	for _, o := range []string{"r1", "r2"} {
		if _, err := s.Release(ctx, "doc", o); err != nil {
			t.Fatal(err)
		}
	}
	var w lock.Lease
	select {
	case w = <-writer:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer was not granted after the readers left")
	}
	if w.Fence <= r2.Fence || w.Mode != lock.Exclusive {
		t.Fatalf("writer = %+v; want an exclusive lease with a fence above %d", w, r2.Fence)
	}
	if _, err := shared("r4", 0); !errors.Is(err, lock.ErrHeld) {
		t.Fatalf("reader beside the writer = %v, want held", err)
	}
	if _, err := s.Release(ctx, "doc", "w"); err != nil {
		t.Fatal(err)
	}
	if r, err := shared("r4", 0); err != nil || r.Fence <= w.Fence {
		t.Fatalf("reader after the writer = %+v, %v", r, err)
	}
}

// Waiters are granted in the order they began to wait, and an acquire
// that does not wait never passes them.
func TestFairQueueOrder(t *testing.T) {
	srv := redistest.Start(t)
	l, s := newLocker(t, srv)
	ctx := context.Background()
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "q", Owner: "holder", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	for i := 0; i < n; i++ {
		owner := fmt.Sprintf("w%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "q", Owner: owner, TTL: time.Minute, Wait: 20 * time.Second}); err != nil {
				t.Errorf("%s: %v", owner, err)
				return
			}
			mu.Lock()
			order = append(order, owner)
			mu.Unlock()
			// Hold a moment, then pass it on.
			time.Sleep(5 * time.Millisecond)
			if _, err := s.Release(ctx, "q", owner); err != nil {
				t.Errorf("%s release: %v", owner, err)
			}
		}()
		// Each waiter is queued before the next one starts.
		waitFor(t, func() bool { in, _ := s.Inspect(ctx, "q"); return in.Waiters == i+1 })
	}
	if _, err := s.Release(ctx, "q", "holder"); err != nil {
		t.Fatal(err)
	}
	// While the queue drains, acquires that do not wait are refused.
	for i := 0; i < 20; i++ {
		if in, _ := s.Inspect(ctx, "q"); in.Waiters == 0 {
			break
		}
		if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "q", Owner: "jumper", TTL: time.Minute}); err == nil {
			if in, _ := s.Inspect(ctx, "q"); in.Waiters > 0 {
				t.Fatal("an acquire without wait passed the queue")
			}
			s.Release(ctx, "q", "jumper")
		}
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()
	for i, o := range order {
		if want := fmt.Sprintf("w%d", i); o != want {
			t.Fatalf("grant order %v, want w0..w%d", order, n-1)
		}
	}
}

// A place in the queue whose waiter never comes back (its instance died)
// lapses within QueueHold, and a waiter that gives up leaves at once and
// wakes the one behind it.
func TestDeadWaitersDoNotBlockTheQueue(t *testing.T) {
	srv := redistest.Start(t)
	l, s := newLocker(t, srv)
	ctx := context.Background()
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "d", Owner: "holder", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	// A try as a waiter would make it, whose waiter then vanishes.
	if _, err := s.Acquire(ctx, lock.AcquireRequest{ID: "d", Owner: "ghost", TTL: time.Minute, Wait: time.Hour}); !errors.Is(err, lock.ErrHeld) {
		t.Fatal(err)
	}
	if _, err := s.Release(ctx, "d", "holder"); err != nil {
		t.Fatal(err)
	}
	if in, err := l.Acquire(ctx, lock.AcquireRequest{ID: "d", Owner: "jumper", TTL: time.Minute}); !errors.Is(err, lock.ErrHeld) || in.Held || in.Waiters != 1 {
		t.Fatalf("acquire of a free lock with a waiter queued = %+v, %v; want refused, 1 waiter", in, err)
	}
	start := time.Now()
	g, err := l.Acquire(ctx, lock.AcquireRequest{ID: "d", Owner: "live", TTL: time.Minute, Wait: 10 * time.Second})
	took := time.Since(start)
	if err != nil || took > lock.QueueHold+time.Second {
		t.Fatalf("live waiter = %+v, %v after %s; want granted once the ghost's place lapsed", g, err, took)
	}
	if took < lock.QueueHold/2 {
		t.Fatalf("live waiter granted after %s, before the ghost's place could lapse", took)
	}

	// A writer ahead that gives up: the reader behind it, held back by
	// it, joins the reader that holds the lock at once.
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "e", Owner: "reader", TTL: time.Minute, Mode: lock.Shared}); err != nil {
		t.Fatal(err)
	}
	firstCtx, cancelFirst := context.WithCancel(ctx)
	firstDone := make(chan error, 1)
	go func() {
		_, err := l.Acquire(firstCtx, lock.AcquireRequest{ID: "e", Owner: "writer", TTL: time.Minute, Wait: time.Minute})
		firstDone <- err
	}()
	waitFor(t, func() bool { in, _ := s.Inspect(ctx, "e"); return in.Waiters == 1 })
	second := make(chan time.Time, 1)
	go func() {
		if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "e", Owner: "second", TTL: time.Minute, Mode: lock.Shared, Wait: time.Minute}); err != nil {
			t.Errorf("second: %v", err)
		}
		second <- time.Now()
	}()
	waitFor(t, func() bool { in, _ := s.Inspect(ctx, "e"); return in.Waiters == 2 })
	cancelFirst()
	gaveUp := time.Now()
	if err := <-firstDone; err == nil {
		t.Fatal("the cancelled waiter was granted")
	}
	select {
	case at := <-second:
		if d := at.Sub(gaveUp); d > lock.QueueRefresh/2 {
			t.Fatalf("second granted %s after the first gave up; want at once", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second was not granted")
	}
}

// Lock-delay: a lease that expires keeps the lock refused for the delay;
// one that is released does not; the expired owner's late release ends it.
func TestLockDelay(t *testing.T) {
	srv := redistest.Start(t)
	l, s := newLocker(t, srv)
	ctx := context.Background()
	const ttl, delay = 100 * time.Millisecond, 700 * time.Millisecond
	a, err := l.Acquire(ctx, lock.AcquireRequest{ID: "ld", Owner: "a", TTL: ttl, LockDelay: delay})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl + 20*time.Millisecond)
	b, err := l.Acquire(ctx, lock.AcquireRequest{ID: "ld", Owner: "b", TTL: time.Minute})
	if !errors.Is(err, lock.ErrHeld) || b.Held || b.DelayLeft <= 0 || b.DelayLeft > delay {
		t.Fatalf("acquire during the lock-delay = %+v, %v; want refused, not held, delay left", b, err)
	}
	if in, _ := s.Inspect(ctx, "ld"); in.DelayLeft <= 0 {
		t.Fatalf("inspect during the lock-delay = %+v", in)
	}
	start := time.Now()
	b, err = l.Acquire(ctx, lock.AcquireRequest{ID: "ld", Owner: "b", TTL: time.Minute, Wait: 5 * time.Second})
	if err != nil || b.Fence <= a.Fence {
		t.Fatalf("waiting acquire = %+v, %v", b, err)
	}
	if took := time.Since(start); took < delay/2 || took > delay+time.Second {
		t.Fatalf("granted %s into a lock-delay of %s", took, delay)
	}
	if _, err := s.Release(ctx, "ld", "b"); err != nil {
		t.Fatal(err)
	}

	// A release ends the lease with no delay.
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "ld2", Owner: "a", TTL: time.Minute, LockDelay: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Release(ctx, "ld2", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "ld2", Owner: "b", TTL: time.Minute}); err != nil {
		t.Fatalf("acquire after a release = %v, want no lock-delay", err)
	}

	// The expired owner's late release ends the delay.
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "ld3", Owner: "a", TTL: ttl, LockDelay: time.Minute}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl + 20*time.Millisecond)
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "ld3", Owner: "b", TTL: time.Minute}); !errors.Is(err, lock.ErrHeld) {
		t.Fatalf("acquire in the delay = %v", err)
	}
	if _, err := s.Release(ctx, "ld3", "a"); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("late release = %v, want ErrNotHeld (the lease had expired)", err)
	}
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "ld3", Owner: "b", TTL: time.Minute}); err != nil {
		t.Fatalf("acquire after the late release = %v, want the delay ended", err)
	}
}

// Revoke ends every lease of a semaphore, and their owners' later calls
// are refused.
func TestRevokeEndsEveryLease(t *testing.T) {
	srv := redistest.Start(t)
	l, s := newLocker(t, srv)
	ctx := context.Background()
	for _, o := range []string{"a", "b"} {
		if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "rv", Owner: o, TTL: time.Minute, Limit: 2}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Revoke(ctx, "rv"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Heartbeat(ctx, "rv", "a", time.Minute); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("heartbeat after revoke = %v", err)
	}
	if _, err := s.Release(ctx, "rv", "b"); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("release after revoke = %v", err)
	}
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "rv", Owner: "c", TTL: time.Minute}); err != nil {
		t.Fatalf("a mutex after the revoked semaphore = %v", err)
	}
}

// The listing shows a semaphore's leases and holders beside a mutex.
func TestListShowsSemaphores(t *testing.T) {
	srv := redistest.Start(t)
	l, s := newLocker(t, srv)
	ctx := context.Background()
	for _, o := range []string{"a", "b"} {
		if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "ls/sem", Owner: o, TTL: time.Minute, Limit: 5, Holder: o}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "ls/mutex", Owner: "m", TTL: time.Minute, Holder: "mh"}); err != nil {
		t.Fatal(err)
	}
	// One waiter's place on the mutex, as a try of a waiting acquire takes it.
	if _, err := s.Acquire(ctx, lock.AcquireRequest{ID: "ls/mutex", Owner: "w", TTL: time.Minute, Wait: time.Minute}); !errors.Is(err, lock.ErrHeld) {
		t.Fatal(err)
	}
	page, err := s.List(ctx, lock.ListRequest{Prefix: "ls/"})
	if err != nil || len(page.Locks) != 2 {
		t.Fatalf("list = %+v, %v", page, err)
	}
	for _, got := range page.Locks {
		switch got.ID {
		case "ls/sem":
			if got.Limit != 5 || got.Holders != 2 || len(got.Leases) != 2 {
				t.Fatalf("semaphore row %+v", got)
			}
		case "ls/mutex":
			if got.Holder != "mh" || got.Holders != 1 || got.Limit != 1 || got.Waiters != 1 {
				t.Fatalf("mutex row %+v", got)
			}
		}
	}
}

// Semaphores, shared leases and the queue work in a Cluster: every key of
// a lock is in its id's slot.
func TestClusterSemaphoreAndShared(t *testing.T) {
	srvs := redistest.StartCluster(t, 3)
	l, s := newClusterLocker(t, srvs)
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("cs/%d", i)
		for _, o := range []string{"a", "b"} {
			if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: id, Owner: o, TTL: time.Minute, Limit: 2}); err != nil {
				t.Fatalf("%s %s: %v", id, o, err)
			}
		}
		done := make(chan error, 1)
		go func() {
			_, err := l.Acquire(ctx, lock.AcquireRequest{ID: id, Owner: "c", TTL: time.Minute, Limit: 2, Wait: 10 * time.Second})
			done <- err
		}()
		waitFor(t, func() bool { in, _ := s.Inspect(ctx, id); return in.Waiters == 1 })
		if _, err := s.Release(ctx, id, "a"); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("%s waiter: %v", id, err)
		}
		if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: id + "/rw", Owner: "r", TTL: time.Minute, Mode: lock.Shared}); err != nil {
			t.Fatal(err)
		}
	}
}

// Quorum mode refuses what it cannot do, with a clear error, before any
// round trip; a holder label it accepts.
func TestQuorumRefusesWhatItCannotDo(t *testing.T) {
	var clients []redis.UniversalClient
	for i := 0; i < 3; i++ {
		clients = append(clients, redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}))
	}
	q, err := lock.NewQuorumStore(clients, lock.RedisOptions{Prefix: "it:"})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()
	for _, req := range []lock.AcquireRequest{
		{ID: "x", Owner: "o", TTL: time.Second, Limit: 2},
		{ID: "x", Owner: "o", TTL: time.Second, Mode: lock.Shared},
		{ID: "x", Owner: "o", TTL: time.Second, LockDelay: time.Second},
	} {
		if _, err := q.Acquire(ctx, req); !errors.Is(err, lock.ErrModeCannot) || !errors.Is(err, lock.ErrInvalid) {
			t.Errorf("%+v = %v, want ErrModeCannot", req, err)
		}
	}
	if _, err := q.Acquire(ctx, lock.AcquireRequest{ID: "x", Owner: "o", TTL: time.Second, Holder: "h"}); !errors.Is(err, lock.ErrUnavailable) {
		t.Errorf("a holder label in quorum mode = %v, want it tried (unavailable: no masters)", err)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
	}
}

// A mutex's release wakes the first waiter of its queue alone (and any
// waiter that keeps no place, as a pod of the previous version); the others
// sleep on, where before every waiter tried again and all but one lost.
func TestReleaseWakesTheFirstWaiterOnly(t *testing.T) {
	srv := redistest.Start(t)
	l, s := newLocker(t, srv)
	ctx := context.Background()
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "h", Owner: "holder", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	places := []lock.AcquireRequest{
		{ID: "h", Owner: "first", TTL: time.Minute, Wait: time.Minute},
		{ID: "h", Owner: "second", TTL: time.Minute, Wait: time.Minute},
	}
	var wakes []<-chan struct{}
	for _, req := range places {
		if _, err := s.Acquire(ctx, req); !errors.Is(err, lock.ErrHeld) { // takes its place
			t.Fatal(err)
		}
		w, stop, err := s.SubscribeWaiter(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		wakes = append(wakes, w)
	}
	anyone, stop, err := s.Subscribe(ctx, "h")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if _, err := s.Release(ctx, "h", "holder"); err != nil {
		t.Fatal(err)
	}
	for name, w := range map[string]<-chan struct{}{"the first waiter": wakes[0], "a waiter with no place": anyone} {
		select {
		case <-w:
		case <-time.After(2 * time.Second):
			t.Fatalf("%s was not woken", name)
		}
	}
	select {
	case <-wakes[1]:
		t.Fatal("the second waiter was woken by a release that was not its turn")
	case <-time.After(100 * time.Millisecond):
	}
	// The first gives up: the second is next, and is woken.
	if err := s.Leave(ctx, places[0]); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wakes[1]:
	case <-time.After(2 * time.Second):
		t.Fatal("the second waiter was not woken when the first left")
	}
}
