package check

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"handler/function/function/lock"
)

// Load shapes the clients' workload.
type Load struct {
	Clients int
	Locks   int
	// Ops is how many operations to record before stopping.
	Ops int
	// Max bounds the run's length whatever the count.
	Max time.Duration
	// TTL is every lease's length; MaxWait bounds an acquire's wait.
	TTL, MaxWait time.Duration
	// PauseOneIn makes one hold in so many sleep past the TTL.
	PauseOneIn int
	// Reacquires is how often, at most, a holder acquires its lease again
	// (same owner: an idempotent retry) before its hold, each after up to
	// TTL/4.
	Reacquires int
	// Seed varies the random choices.
	Seed uint64
	// Shapes make the lock ids semaphores or locks of shared and exclusive
	// leases: id lkN takes Shapes[N % len(Shapes)]. None: every id a mutex.
	Shapes []Shape
	// WaitAll makes every acquire wait, for MaxWait/4 up to MaxWait (else
	// half of them wait, for up to MaxWait).
	WaitAll bool
	// Hold bounds a holder's critical section; 0 holds for 0-3 ms.
	Hold time.Duration
	// Holder sends each acquire with a holder label (its client's name).
	Holder bool
	// Rotate, if not 0, moves the load to fresh lock ids every Rotate
	// recorded operations (generation g uses lk(g*Locks) to
	// lk(g*Locks+Locks-1), of the same shapes): the queues stay as long, and
	// each id's history, which the check searches as one, stays short.
	Rotate int
}

// Shape is what kind of lock an id is: Limit 0 or 1 a mutex, N a semaphore
// of N leases; SharedPct > 0 makes it a lock of shared and exclusive leases
// (limit 1), that percentage of the acquires asking for a shared one.
type Shape struct {
	Limit     int
	SharedPct int
}

// shape is lock i's shape.
func (l Load) shape(i int) Shape {
	if len(l.Shapes) == 0 {
		return Shape{}
	}
	return l.Shapes[i%len(l.Shapes)]
}

// Stats sums a workload up.
type Stats struct {
	Ops        int
	BadAnswers int64
	LastBad    string
	Pauses     int64
}

// Run drives the load against targets (base URLs; each call picks one at
// random), recording into rec and using counter as the protected resource.
// It returns when rec holds load.Ops operations, load.Max passed or ctx ends.
func Run(ctx context.Context, load Load, targets []string, rec *Recorder, counter *Counter) Stats {
	ctx, cancel := context.WithTimeout(ctx, load.Max)
	defer cancel()
	tr := &http.Transport{MaxIdleConns: load.Clients * 2, MaxIdleConnsPerHost: load.Clients * 2, IdleConnTimeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 3*time.Second + load.MaxWait}
	var bad atomic.Int64
	var lastBad atomic.Value
	var pauses atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < load.Clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(load.Seed, uint64(i)))
			c := &Client{HTTP: hc, Rec: rec, ID: i, BadAnswers: &bad, LastBad: &lastBad,
				Base: func() string { return targets[rng.IntN(len(targets))] }}
			cl := &worker{c: c, load: load, rng: rng, counter: counter, pauses: &pauses}
			for n := 0; ctx.Err() == nil && rec.Len() < load.Ops; n++ {
				cl.round(ctx, fmt.Sprintf("c%d-%d", i, n))
			}
		}(i)
	}
	wg.Wait()
	st := Stats{Ops: rec.Len(), BadAnswers: bad.Load(), Pauses: pauses.Load()}
	if s, ok := lastBad.Load().(string); ok {
		st.LastBad = s
	}
	return st
}

type worker struct {
	c       *Client
	load    Load
	rng     *rand.Rand
	counter *Counter
	pauses  *atomic.Int64
}

func (w *worker) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// round is one attempt at a critical section under a fresh owner token.
func (w *worker) round(ctx context.Context, owner string) {
	n := w.rng.IntN(w.load.Locks)
	if w.load.Rotate > 0 {
		n += w.c.Rec.Len() / w.load.Rotate * w.load.Locks
	}
	id := fmt.Sprintf("lk%d", n)
	ttl := w.load.TTL
	var wait time.Duration
	switch {
	case w.load.WaitAll && w.load.MaxWait > 0:
		wait = w.load.MaxWait/4 + time.Duration(w.rng.Int64N(int64(w.load.MaxWait*3/4)+1))
	case w.load.MaxWait > 0 && w.rng.IntN(2) == 0:
		wait = time.Duration(w.rng.Int64N(int64(w.load.MaxWait)))
	}
	// Random draws only for the shapes that need them, so that the mutex
	// scenarios keep their random choices.
	acq := Input{Kind: Acquire, ID: id, Owner: owner, TTL: ttl, Wait: wait}
	switch sh := w.load.shape(n); {
	case sh.SharedPct > 0:
		acq.Mode = lock.Exclusive
		if w.rng.IntN(100) < sh.SharedPct {
			acq.Mode = lock.Shared
		}
	case sh.Limit > 1:
		acq.Limit = sh.Limit
	}
	holder := ""
	if w.load.Holder {
		holder = fmt.Sprintf("client %d", w.c.ID)
	}
	// The HTTP calls do not use ctx: a run ending must not turn answers
	// into unknowns.
	bg := context.Background()
	out, sent := w.c.Call(bg, acq, holder)
	if !sent {
		w.sleep(ctx, 20*time.Millisecond)
		return
	}
	switch out.Result {
	case Rejected, Mismatch: // no lease: a bad answer, or the model's to judge
		w.sleep(ctx, 20*time.Millisecond)
		return
	case Refused:
		w.sleep(ctx, time.Duration(w.rng.IntN(3))*time.Millisecond)
		return
	case Unknown:
		// Maybe it took effect: let go of it, in case.
		w.c.Do(bg, Release, id, owner, 0, 0)
		w.sleep(ctx, 50*time.Millisecond) // back off, as Retry-After asks

		return
	}
	fence := out.Fence
	// A shared holder only reads the resource: the fenced counter counts
	// the increments of exclusive holders.
	var v int64
	readOK := false
	if !acq.shared() {
		v, readOK = w.counter.Read(id, fence)
	}
	if w.load.Reacquires > 0 { // leaves the other scenarios' random choices as they were
		again := acq
		again.Wait = 0
		for range w.rng.IntN(w.load.Reacquires + 1) {
			w.sleep(ctx, time.Duration(w.rng.Int64N(int64(ttl/4)+1)))
			w.c.Call(bg, again, holder)
		}
	}
	hold := time.Duration(w.rng.IntN(4)) * time.Millisecond
	if w.load.Hold > 0 {
		hold = time.Duration(w.rng.Int64N(int64(w.load.Hold)))
	}
	if w.load.PauseOneIn > 0 && w.rng.IntN(w.load.PauseOneIn) == 0 {
		hold = ttl + time.Duration(w.rng.Int64N(int64(ttl/2)+1)) // a holder paused past its lease
		w.pauses.Add(1)
	}
	if w.rng.IntN(3) == 0 {
		w.sleep(ctx, hold/2)
		w.c.Do(bg, Heartbeat, id, owner, ttl, 0)
		w.sleep(ctx, hold/2)
	} else {
		w.sleep(ctx, hold)
	}
	if readOK {
		w.counter.Write(id, fence, v+1)
	}
	switch r := w.rng.IntN(20); {
	case r == 0:
		// Let the lease expire.
	case r == 1:
		w.c.Do(bg, Release, id, owner, 0, 0)
		w.c.Do(bg, Release, id, owner, 0, 0) // a retried release
	default:
		w.c.Do(bg, Release, id, owner, 0, 0)
	}
}
