package drive

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Cycles is one run of acquire→release cycles.
type Cycles struct {
	Rate     float64       // completed cycles per second
	N        int           // completed cycles
	Errors   int           // failed calls
	P50, P99 time.Duration // of a whole cycle
	FirstErr error
}

// RunCycles runs c clients for d, each doing acquire→release on its own lock
// (prefix + client number) with no wait. An acquire that is refused counts
// as an error: nobody else uses the lock, so it is a wrong answer.
func RunCycles(ctx context.Context, drv Driver, prefix string, c int, d time.Duration) Cycles {
	ctx, cancel := context.WithTimeout(ctx, d+10*time.Second)
	defer cancel()
	var (
		mu       sync.Mutex
		lat      []time.Duration
		errs     int
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for i := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := prefix + strconv.Itoa(i)
			owner := "owner-" + strconv.Itoa(i)
			mine := make([]time.Duration, 0, 4096)
			var myErrs int
			var myFirst error
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t := time.Now()
				_, err := drv.Acquire(ctx, id, owner, 0)
				if err == nil {
					err = drv.Release(ctx, id, owner)
				}
				if err != nil {
					myErrs++
					if myFirst == nil {
						myFirst = err
					}
					continue
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += myErrs
			if firstErr == nil {
				firstErr = myFirst
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	r := Cycles{N: len(lat), Errors: errs, FirstErr: firstErr}
	if len(lat) > 0 {
		slices.Sort(lat)
		r.Rate = float64(len(lat)) / elapsed.Seconds()
		r.P50, r.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r
}

// Handoffs is one contended run.
type Handoffs struct {
	Rate     float64 // grants that followed a release, per second
	N        int
	Timeouts int // waits that ran out (ErrHeld)
	Errors   int
	P50, P99 time.Duration // release sent → next holder's grant answered
	// Violations counts grants while another client held the lock, and
	// fences that did not rise: any is a broken lock.
	Violations int
	FirstErr   error
}

// lockState is what the checker knows of one contended lock.
type lockState struct {
	holder      atomic.Int64 // client number + 1 of the holder, 0 when free
	mu          sync.Mutex
	lastFence   int64
	releaseSent time.Time // when the last holder sent its release
}

// Hold is how long a client keeps a granted lock before it releases it. The
// tables use 0, so a hand-off measures the lock service alone; but then a
// lock that grants twice is caught only when two grants land within
// nanoseconds, so the runners' own tests hold for a while.
var Hold time.Duration

// RunHandoffs runs c clients for d on locks locks (client i on lock i mod
// locks), each looping waiting acquire → release with no hold in between.
// It times each handoff, from the moment the holder sends its release to
// the moment the next holder's acquire answers, and checks every grant: the
// lock must be free in the checker's books and its fence, where the system
// has one, above the last.
func RunHandoffs(ctx context.Context, drv Driver, prefix string, c, locks int, d time.Duration) Handoffs {
	ctx, cancel := context.WithTimeout(ctx, d+15*time.Second)
	defer cancel()
	states := make([]*lockState, locks)
	for i := range states {
		states[i] = &lockState{}
	}
	var (
		mu       sync.Mutex
		lat      []time.Duration
		r        Handoffs
		wg       sync.WaitGroup
		violated atomic.Int64
	)
	start := time.Now()
	deadline := start.Add(d)
	for i := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := states[i%locks]
			id := prefix + strconv.Itoa(i%locks)
			owner := "owner-" + strconv.Itoa(i)
			var mine []time.Duration
			var timeouts, errs int
			var first error
			for time.Now().Before(deadline) && ctx.Err() == nil {
				wait := time.Until(deadline) + time.Second
				fence, err := drv.Acquire(ctx, id, owner, wait)
				granted := time.Now()
				if errors.Is(err, ErrHeld) {
					timeouts++
					continue
				}
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
					time.Sleep(time.Millisecond)
					continue
				}
				if !st.holder.CompareAndSwap(0, int64(i)+1) {
					violated.Add(1)
					if first == nil {
						first = fmt.Errorf("lock %s granted to client %d while client %d held it", id, i, st.holder.Load()-1)
					}
				}
				st.mu.Lock()
				if fence != 0 {
					if fence <= st.lastFence {
						violated.Add(1)
						if first == nil {
							first = fmt.Errorf("lock %s: fence %d after %d", id, fence, st.lastFence)
						}
					}
					st.lastFence = fence
				}
				if !st.releaseSent.IsZero() {
					mine = append(mine, granted.Sub(st.releaseSent))
				}
				st.mu.Unlock()
				if Hold > 0 {
					time.Sleep(Hold)
				}
				// Marked free before the release is sent: the next grant can
				// only come after it.
				st.holder.CompareAndSwap(int64(i)+1, 0)
				st.mu.Lock()
				st.releaseSent = time.Now()
				st.mu.Unlock()
				if err := drv.Release(ctx, id, owner); err != nil {
					errs++
					if first == nil {
						first = err
					}
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			r.Timeouts += timeouts
			r.Errors += errs
			if r.FirstErr == nil {
				r.FirstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	r.Violations = int(violated.Load())
	r.N = len(lat)
	if len(lat) > 0 {
		slices.Sort(lat)
		r.Rate = float64(len(lat)) / elapsed.Seconds()
		r.P50, r.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r
}
