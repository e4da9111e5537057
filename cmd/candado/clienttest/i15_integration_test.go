//go:build integration

package clienttest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/candado-dev/candado/client"
)

// The Go client against the real service for issue 15: semaphores, shared
// and exclusive leases, holder labels, fair queues and lock-delay.

// acquire takes id or fails the test.
func acquire(t *testing.T, c *client.Client, id string, o *client.AcquireOptions) *client.Lease {
	t.Helper()
	l, err := c.Acquire(itCtx(t, 10*time.Second), id, o)
	if err != nil {
		t.Fatalf("acquire %s %+v: %v", id, o, err)
	}
	return l
}

// refusal is err's *APIError, which must match want.
func refusal(t *testing.T, err, want error) *client.APIError {
	t.Helper()
	var ae *client.APIError
	if !errors.Is(err, want) || !errors.As(err, &ae) {
		t.Fatalf("got %v, want %v", err, want)
	}
	return ae
}

// waitFor polls Inspect until ok says so (at most 5 s).
func waitFor(t *testing.T, c *client.Client, id, what string, ok func(client.Status) bool) client.Status {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st, err := c.Inspect(itCtx(t, 5*time.Second), id)
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s; last %+v %v", what, st, err)
		}
	}
}

// A semaphore of limit 3: three leases at once, each with its own owner,
// fence and label; the fourth is refused with the lock's state; another
// limit, or a shared acquire, is a limit mismatch; a freed slot is taken.
func TestIntegrationSemaphore(t *testing.T) {
	s := startStack(t)
	c := s.client(t, "")
	ctx := itCtx(t, 20*time.Second)
	const id = "pool/gpu"
	var leases []*client.Lease
	for i := range 3 {
		l := acquire(t, c, id, &client.AcquireOptions{TTL: time.Minute, Limit: 3, Holder: fmt.Sprintf("encoder-%d", i)})
		if l.Limit() != 3 || l.Holder() != fmt.Sprintf("encoder-%d", i) || l.Mode() != client.ModeExclusive {
			t.Fatalf("lease %d: limit %d holder %q mode %q", i, l.Limit(), l.Holder(), l.Mode())
		}
		if i > 0 && l.Fence() <= leases[i-1].Fence() {
			t.Fatalf("fence %d after %d", l.Fence(), leases[i-1].Fence())
		}
		leases = append(leases, l)
	}
	st, err := c.Inspect(ctx, id)
	if err != nil || !st.Held || st.Limit != 3 || st.Holders != 3 || len(st.Leases) != 3 || st.Owner != "" {
		t.Fatalf("inspect %+v %v", st, err)
	}
	seen := map[int64]string{}
	for _, li := range st.Leases {
		seen[li.Fence] = li.Holder
		if li.TTL <= 50*time.Second || li.Mode != client.ModeExclusive {
			t.Fatalf("lease %+v", li)
		}
	}
	for i, l := range leases {
		if seen[l.Fence()] != fmt.Sprintf("encoder-%d", i) {
			t.Fatalf("inspect's leases %+v lack lease %d (fence %d)", st.Leases, i, l.Fence())
		}
	}

	_, err = c.Acquire(ctx, id, &client.AcquireOptions{Limit: 3})
	if ae := refusal(t, err, client.ErrHeld); ae.Lock == nil || ae.Lock.Holders != 3 || ae.Lock.Limit != 3 || len(ae.Lock.Leases) != 3 {
		t.Fatalf("refusal's lock %+v", ae.Lock)
	}
	_, err = c.Acquire(ctx, id, &client.AcquireOptions{Limit: 2})
	if ae := refusal(t, err, client.ErrLimitMismatch); ae.Status != 409 || ae.Lock == nil || ae.Lock.Limit != 3 {
		t.Fatalf("limit 2 on a semaphore of 3: %+v", ae)
	}
	refusal(t, func() error { _, err := c.Acquire(ctx, id, nil); return err }(), client.ErrLimitMismatch)
	refusal(t, func() error { _, err := c.Acquire(ctx, id, &client.AcquireOptions{Shared: true}); return err }(), client.ErrLimitMismatch)

	// Each holder extends and releases only its own lease.
	if _, err := c.Heartbeat(ctx, id, leases[1].Owner(), 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Release(ctx, id, "nobody"); !errors.Is(err, client.ErrNotHeld) {
		t.Fatalf("release by a stranger: %v", err)
	}
	if err := leases[0].Release(ctx); err != nil {
		t.Fatal(err)
	}
	l4 := acquire(t, c, id, &client.AcquireOptions{TTL: time.Minute, Limit: 3, Holder: "encoder-3"})
	if l4.Fence() <= leases[2].Fence() {
		t.Fatalf("fence %d after %d", l4.Fence(), leases[2].Fence())
	}
	if st, _ := c.Inspect(ctx, id); st.Holders != 3 {
		t.Fatalf("holders %d after a release and an acquire", st.Holders)
	}
	for _, l := range append(leases[1:], l4) {
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Free again: any limit may start afresh.
	acquire(t, c, id, &client.AcquireOptions{Limit: 5}).Release(ctx)
}

// Shared leases hold together, never beside an exclusive one; a waiting
// exclusive acquire holds back new shared ones and gets the lock when they
// are gone.
func TestIntegrationSharedAndExclusive(t *testing.T) {
	s := startStack(t)
	c := s.client(t, "")
	ctx := itCtx(t, 30*time.Second)
	const id = "reports/q3"
	r1 := acquire(t, c, id, &client.AcquireOptions{TTL: time.Minute, Shared: true, Holder: "reader-1"})
	r2 := acquire(t, c, id, &client.AcquireOptions{TTL: time.Minute, Shared: true, Holder: "reader-2"})
	if r1.Mode() != client.ModeShared || r2.Fence() <= r1.Fence() {
		t.Fatalf("mode %q, fences %d then %d", r1.Mode(), r1.Fence(), r2.Fence())
	}
	st, err := c.Inspect(ctx, id)
	if err != nil || st.Mode != client.ModeShared || st.Holders != 2 || len(st.Leases) != 2 {
		t.Fatalf("inspect %+v %v", st, err)
	}
	_, err = c.Acquire(ctx, id, nil)
	if ae := refusal(t, err, client.ErrHeld); ae.Lock == nil || ae.Lock.Mode != client.ModeShared || ae.Lock.Holders != 2 {
		t.Fatalf("exclusive on shared: %+v", ae.Lock)
	}
	refusal(t, func() error { _, err := c.Acquire(ctx, id, &client.AcquireOptions{Limit: 3}); return err }(), client.ErrLimitMismatch)

	type result struct {
		l   *client.Lease
		err error
	}
	writer := make(chan result, 1)
	go func() {
		l, err := c.Acquire(ctx, id, &client.AcquireOptions{TTL: time.Minute, Wait: 15 * time.Second, Holder: "writer"})
		writer <- result{l, err}
	}()
	waitFor(t, c, id, "the writer queued", func(st client.Status) bool { return st.Waiters == 1 })
	_, err = c.Acquire(ctx, id, &client.AcquireOptions{Shared: true})
	refusal(t, err, client.ErrHeld) // a waiting writer holds back new readers
	if err := r1.Release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-writer:
		t.Fatalf("the writer got in beside a reader: %v %v", r.l, r.err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := r2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-writer
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.l.Mode() != client.ModeExclusive || r.l.Fence() <= r2.Fence() {
		t.Fatalf("writer mode %q fence %d after %d", r.l.Mode(), r.l.Fence(), r2.Fence())
	}
	_, err = c.Acquire(ctx, id, &client.AcquireOptions{Shared: true})
	refusal(t, err, client.ErrHeld)
	_ = r.l.Release(ctx)
}

// Leader election: the holder label answers "who leads?" in Inspect and in
// the refusal a candidate gets.
func TestIntegrationHolderLabel(t *testing.T) {
	s := startStack(t)
	c := s.client(t, "")
	ctx := itCtx(t, 10*time.Second)
	leader := acquire(t, c, "leader/billing", &client.AcquireOptions{TTL: time.Minute, Holder: "billing eu-1 pid 4242"})
	if leader.Holder() != "billing eu-1 pid 4242" {
		t.Fatalf("lease holder %q", leader.Holder())
	}
	if st, err := c.Inspect(ctx, "leader/billing"); err != nil || st.Holder != "billing eu-1 pid 4242" || st.Owner != "" {
		t.Fatalf("inspect %+v %v", st, err)
	}
	_, err := c.Acquire(ctx, "leader/billing", &client.AcquireOptions{Holder: "billing eu-2", Wait: 100 * time.Millisecond})
	if ae := refusal(t, err, client.ErrHeld); ae.Lock == nil || ae.Lock.Holder != "billing eu-1 pid 4242" {
		t.Fatalf("candidate's refusal %+v", ae.Lock)
	}
	// A listing row carries it too.
	page, err := c.List(ctx, "leader/", 0, "")
	if err != nil || len(page.Locks) != 1 || page.Locks[0].Holder != "billing eu-1 pid 4242" || page.Locks[0].Holders != 1 {
		t.Fatalf("list %+v %v", page, err)
	}
	// The label belongs to the lease: after a release, nobody holds it.
	if err := leader.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Inspect(ctx, "leader/billing"); err != nil || st.Holder != "" || st.Held {
		t.Fatalf("inspect after release %+v %v", st, err)
	}
}

// Waiters are granted in the order they began to wait, and an acquire that
// does not wait never jumps the queue.
func TestIntegrationFairQueue(t *testing.T) {
	s := startStack(t)
	c := s.client(t, "")
	ctx := itCtx(t, 40*time.Second)
	const id, n = "queue/fifo", 4
	holder := acquire(t, c, id, &client.AcquireOptions{TTL: time.Minute})
	var (
		mu    sync.Mutex
		order []int
		wg    sync.WaitGroup
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := c.Acquire(ctx, id, &client.AcquireOptions{TTL: time.Minute, Wait: 30 * time.Second})
			if err != nil {
				t.Errorf("waiter %d: %v", i, err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			time.Sleep(50 * time.Millisecond) // give a jumper every chance
			_ = l.Release(ctx)
		}()
		waitFor(t, c, id, fmt.Sprintf("waiter %d queued", i), func(st client.Status) bool { return st.Waiters == i+1 })
	}
	if err := holder.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// While anyone waits, an acquire without wait is refused, even in the
	// moments between one waiter's release and the next one's grant: it
	// may get the lock only once every waiter had its turn.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
			continue
		default:
		}
		l, err := c.Acquire(ctx, id, &client.AcquireOptions{TTL: time.Second})
		if err != nil {
			continue
		}
		mu.Lock()
		granted := len(order)
		mu.Unlock()
		if granted < n {
			t.Errorf("an acquire without wait got the lock while %d of %d waiters still waited", n-granted, n)
		}
		_ = l.Release(ctx)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != n {
		t.Fatalf("%d of %d waiters granted", len(order), n)
	}
	for i, w := range order {
		if w != i {
			t.Fatalf("granted in the order %v, want 0..%d", order, n-1)
		}
	}
}

// A waiter that gives up leaves the queue at once: it does not hold up
// those behind it or an acquire without wait.
func TestIntegrationWaiterGivingUpLeavesQueue(t *testing.T) {
	s := startStack(t)
	c := s.client(t, "")
	ctx := itCtx(t, 20*time.Second)
	const id = "queue/quitter"
	holder := acquire(t, c, id, &client.AcquireOptions{TTL: time.Minute})
	wctx, cancel := context.WithCancel(ctx)
	gone := make(chan error, 1)
	go func() {
		_, err := c.Acquire(wctx, id, &client.AcquireOptions{Wait: 15 * time.Second})
		gone <- err
	}()
	waitFor(t, c, id, "the waiter queued", func(st client.Status) bool { return st.Waiters == 1 })
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	// Within the 3 s an entry outlives its last refresh at most.
	waitFor(t, c, id, "the queue emptied", func(st client.Status) bool { return st.Waiters == 0 })
	if err := holder.Release(ctx); err != nil {
		t.Fatal(err)
	}
	acquire(t, c, id, nil)
}

// A lease with a lock-delay that expires keeps the lock from everyone for
// the delay (ErrHeld with DelayLeft), a waiter gets it when the delay ends;
// a release ends the delay at once.
func TestIntegrationLockDelay(t *testing.T) {
	s := startStack(t)
	c := s.client(t, "")
	ctx := itCtx(t, 20*time.Second)
	const delay = 1500 * time.Millisecond
	l := acquire(t, c, "delay/expired", &client.AcquireOptions{TTL: 300 * time.Millisecond, LockDelay: delay})
	<-l.Done() // no heartbeats: the lease expires
	expired := time.Now()
	time.Sleep(100 * time.Millisecond)
	_, err := c.Acquire(ctx, "delay/expired", nil)
	ae := refusal(t, err, client.ErrHeld)
	if ae.Lock == nil || ae.Lock.DelayLeft <= 0 || ae.Lock.DelayLeft > delay || ae.Lock.Held {
		t.Fatalf("refusal during the delay: %+v", ae.Lock)
	}
	st, err := c.Inspect(ctx, "delay/expired")
	if err != nil || st.DelayLeft <= 0 || st.Held {
		t.Fatalf("inspect during the delay %+v %v", st, err)
	}
	next := acquire(t, c, "delay/expired", &client.AcquireOptions{Wait: 10 * time.Second})
	if waited := time.Since(expired); waited < delay-100*time.Millisecond {
		t.Fatalf("granted %v after the expiry, within the %v delay", waited, delay)
	}
	if next.Fence() <= l.Fence() {
		t.Fatalf("fence %d after %d", next.Fence(), l.Fence())
	}

	r := acquire(t, c, "delay/released", &client.AcquireOptions{TTL: 10 * time.Second, LockDelay: 5 * time.Second})
	if err := r.Release(ctx); err != nil {
		t.Fatal(err)
	}
	acquire(t, c, "delay/released", nil)
}

// The limits of the new parameters, as the server enforces them.
func TestIntegrationParameterBounds(t *testing.T) {
	s := startStack(t)
	c := s.client(t, "")
	ctx := itCtx(t, 10*time.Second)
	acquire(t, c, "bounds/max", &client.AcquireOptions{Limit: client.MaxLimit}).Release(ctx)
	// Above CANDADO_MAX_TTL (1h here) a lock-delay is a bad request.
	_, err := c.Acquire(ctx, "bounds/delay", &client.AcquireOptions{LockDelay: 2 * time.Hour})
	refusal(t, err, client.ErrBadRequest)
}
