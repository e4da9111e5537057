package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned to callers, waiters among them, once the Locker or
// Store is shutting down. It wraps ErrUnavailable: try again elsewhere.
var ErrClosed = fmt.Errorf("%w: shutting down", ErrUnavailable)

// ErrTooManyWaiters is returned at once, with the lock's current lease, to
// a waiting acquire that finds the lock held while the Locker's cap of
// waiters is reached. It wraps ErrUnavailable (a 503): try again later, or
// elsewhere.
var ErrTooManyWaiters = fmt.Errorf("%w: too many acquires are waiting on this instance", ErrUnavailable)

// DefaultMaxWaiters is the cap of waiting acquires a Locker takes when
// WithMaxWaiters is not given or not positive.
const DefaultMaxWaiters = 1000

// LockerOption changes a Locker.
type LockerOption func(*Locker)

// WithMaxWaiters caps the acquires that wait at once: past n, a waiting
// acquire that finds the lock held answers ErrTooManyWaiters instead of
// waiting. In Cluster mode every lock id with waiters holds a pub/sub
// connection to its master, so the cap bounds those connections too. n <= 0
// means DefaultMaxWaiters.
func WithMaxWaiters(n int) LockerOption {
	return func(l *Locker) {
		if n > 0 {
			l.maxWaiters = int64(n)
		}
	}
}

// Notifier wakes waiters when a lease on a lock ends by release.
type Notifier interface {
	// Subscribe returns a channel that receives a value after each release of
	// id, and a func that ends it. It returns once the subscription is
	// active, or after a bounded wait for it: a release before the late
	// activation then goes unseen, and the activation itself sends a value.
	Subscribe(ctx context.Context, id string) (wake <-chan struct{}, stop func(), err error)
}

// Queue is a Store whose waiting acquires keep a place in a queue of the
// lock (RedisStore): a refused acquire with Wait > 0 takes one, or
// refreshes its own, and a grant gives it up.
type Queue interface {
	// Leave gives up req's place, when its wait ended without a grant.
	Leave(ctx context.Context, req AcquireRequest) error
}

// QueueNotifier is a Notifier that can wake just the waiter whose turn it
// is: SubscribeWaiter's channel receives the wake-ups that name req's place
// in the queue, and those that name none.
type QueueNotifier interface {
	SubscribeWaiter(ctx context.Context, req AcquireRequest) (wake <-chan struct{}, stop func(), err error)
}

// Locker adds waiting to a Store: an acquire with Wait > 0 that finds the lock
// held sleeps until the holder releases it or its lease expires, then tries
// again, until it wins or Wait runs out. It never polls; on a Queue store
// it tries at least every QueueRefresh, which keeps its place in the queue,
// and leaves the queue when it gives up, so the next waiter is not held up.
type Locker struct {
	Store
	notify     Notifier
	done       chan struct{}
	once       sync.Once
	maxWaiters int64
	waiters    atomic.Int64
}

// NewLocker returns a Locker on s, woken by n.
func NewLocker(s Store, n Notifier, opts ...LockerOption) *Locker {
	l := &Locker{Store: s, notify: n, done: make(chan struct{}), maxWaiters: DefaultMaxWaiters}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Waiters is the number of acquires waiting now.
func (l *Locker) Waiters() int { return int(l.waiters.Load()) }

// Acquire takes the lease on req.ID, waiting up to req.Wait for it. A wait
// that runs out returns ErrHeld with the current lease.
func (l *Locker) Acquire(ctx context.Context, req AcquireRequest) (Lease, error) {
	select {
	case <-l.done:
		return Lease{ID: req.ID}, ErrClosed
	default:
	}
	lease, err := l.Store.Acquire(ctx, req)
	if req.Wait <= 0 || !blocked(err) {
		return lease, err
	}
	return l.wait(ctx, req, lease, err)
}

// wait waits for the lease that the first try found blocked, with lease held
// and error heldErr (ErrHeld or ErrContended). Whatever ends the wait, the
// answer's Waited says how long it lasted.
func (l *Locker) wait(ctx context.Context, req AcquireRequest, held Lease, heldErr error) (lease Lease, err error) {
	queue, queued := l.Store.(Queue)
	if queued {
		defer func() {
			if err != nil { // the place the tries took is given up
				leave, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
				defer cancel()
				_ = queue.Leave(leave, req) // if Redis is gone, the place lapses in QueueHold
			}
		}()
	}
	if l.waiters.Add(1) > l.maxWaiters {
		l.waiters.Add(-1)
		return held, ErrTooManyWaiters
	}
	defer l.waiters.Add(-1)
	start := time.Now()
	deadline := start.Add(req.Wait)
	var tried time.Time // when the latest try started
	defer func() {
		// A grant counts to the start of the try that granted it: a lower
		// bound of the time from the request's arrival to the grant (see
		// api.AcquireData). Any other end counts to now.
		end := time.Now()
		if err == nil {
			end = tried
		}
		lease.Waited = end.Sub(start)
	}()
	waitCtx, cancel := context.WithTimeout(ctx, req.Wait)
	defer cancel()

	// Subscribe before trying again, so no release between the two is missed.
	var (
		wake <-chan struct{}
		stop func()
	)
	if qn, ok := l.notify.(QueueNotifier); ok && queued {
		wake, stop, err = qn.SubscribeWaiter(waitCtx, req)
	} else {
		wake, stop, err = l.notify.Subscribe(waitCtx, req.ID)
	}
	if err != nil {
		if waitCtx.Err() != nil && ctx.Err() == nil {
			return held, heldErr // the whole wait went by while subscribing
		}
		return Lease{ID: req.ID}, err
	}
	defer stop()

	expiry := time.NewTimer(l.retryIn(held, queued))
	defer expiry.Stop()
	woken := false
	for {
		tried = time.Now()
		try := req
		try.Wait = max(deadline.Sub(tried), time.Millisecond) // the place lasts no longer than the wait
		lease, err := l.Store.Acquire(ctx, try)
		if err == nil {
			lease.Woken = woken
			return lease, nil
		}
		if !blocked(err) {
			return lease, err
		}
		if errors.Is(err, ErrContended) {
			// No lease to wait out: the competing attempts are undone within
			// the backend timeout, so look again shortly.
			expiry.Reset(contendedRetry)
		} else {
			expiry.Reset(l.retryIn(lease, queued))
		}
		select {
		case <-wake:
		case <-expiry.C:
		case <-l.done:
			return Lease{ID: req.ID}, ErrClosed
		case <-waitCtx.Done():
			if ctx.Err() != nil {
				return Lease{ID: req.ID}, fmt.Errorf("%w: %w", ErrUnavailable, context.Cause(ctx))
			}
			return lease, err // ErrHeld, or ErrContended
		}
		woken = true
	}
}

// blocked reports whether err means someone else is in the way, so a
// waiting acquire waits rather than answers.
func blocked(err error) bool {
	return errors.Is(err, ErrHeld) || errors.Is(err, ErrContended)
}

// contendedRetry is how soon a waiter looks again at a contended lock.
const contendedRetry = 25 * time.Millisecond

// untilExpiry is when a waiter on lease l tries again if no release wakes it:
// just after the lease runs out on Redis' clock.
func untilExpiry(l Lease) time.Duration {
	if l.TTL <= 0 {
		return 5 * time.Millisecond // ended already, or about to
	}
	return l.TTL + time.Millisecond
}

// retryIn is when a waiter refused with lease tries again if no wake-up
// comes first: when the store says the answer may change, else just after
// the lease runs out; on a Queue, at least every QueueRefresh.
func (l *Locker) retryIn(lease Lease, queued bool) time.Duration {
	d := lease.RetryIn
	if d <= 0 {
		d = untilExpiry(lease)
	} else {
		d += time.Millisecond // past the moment on Redis' clock
	}
	if queued {
		d = min(d, QueueRefresh)
	}
	return d
}

// Shutdown ends every wait with ErrClosed and refuses new acquires; calls
// already past their wait finish normally. Close the Store afterwards.
func (l *Locker) Shutdown() {
	l.once.Do(func() { close(l.done) })
}
