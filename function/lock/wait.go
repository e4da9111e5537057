package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrClosed is returned to callers, waiters among them, once the Locker or
// Store is shutting down. It wraps ErrUnavailable: try again elsewhere.
var ErrClosed = fmt.Errorf("%w: shutting down", ErrUnavailable)

// Notifier wakes waiters when a lease on a lock ends by release.
type Notifier interface {
	// Subscribe returns a channel that receives a value after each release of
	// id, once the subscription is active, and a func that ends it.
	Subscribe(ctx context.Context, id string) (wake <-chan struct{}, stop func(), err error)
}

// Locker adds waiting to a Store: an acquire with Wait > 0 that finds the lock
// held sleeps until the holder releases it or its lease expires, then tries
// again, until it wins or Wait runs out. It never polls.
type Locker struct {
	Store
	notify Notifier
	done   chan struct{}
	once   sync.Once
}

// NewLocker returns a Locker on s, woken by n.
func NewLocker(s Store, n Notifier) *Locker {
	return &Locker{Store: s, notify: n, done: make(chan struct{})}
}

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
// and error heldErr (ErrHeld or ErrContended).
func (l *Locker) wait(ctx context.Context, req AcquireRequest, held Lease, heldErr error) (Lease, error) {
	start := time.Now()
	waitCtx, cancel := context.WithTimeout(ctx, req.Wait)
	defer cancel()

	// Subscribe before trying again, so no release between the two is missed.
	wake, stop, err := l.notify.Subscribe(waitCtx, req.ID)
	if err != nil {
		if waitCtx.Err() != nil && ctx.Err() == nil {
			return held, heldErr // the whole wait went by while subscribing
		}
		return Lease{ID: req.ID}, err
	}
	defer stop()

	expiry := time.NewTimer(untilExpiry(held))
	defer expiry.Stop()
	woken := false
	for {
		tried := time.Now()
		lease, err := l.Store.Acquire(ctx, req)
		if err == nil {
			// Counted to the start of the granting try: a lower bound of the
			// time from the request's arrival to the grant (see api.AcquireData).
			lease.Waited, lease.Woken = tried.Sub(start), woken
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
			expiry.Reset(untilExpiry(lease))
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
			lease.Waited = time.Since(start)
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

// Shutdown ends every wait with ErrClosed and refuses new acquires; calls
// already past their wait finish normally. Close the Store afterwards.
func (l *Locker) Shutdown() {
	l.once.Do(func() { close(l.done) })
}

// hub shares one pub/sub connection among all waiters of a process: one
// Redis subscription per lock with waiters, removed with its last waiter. In
// sharded mode (SSUBSCRIBE, Redis Cluster) each lock with waiters has its own
// connection instead, to the master of the lock's slot.
type hub struct {
	newPubSub func(context.Context) *redis.PubSub
	sharded   bool

	mu     sync.Mutex
	ps     *redis.PubSub
	topics map[string]*topic
	closed bool
	done   chan struct{}
	exited chan struct{}
}

type topic struct {
	channel string
	waiters map[chan struct{}]struct{}
	ready   chan struct{} // closed when Redis confirmed the subscription
	isReady bool

	// In sharded mode each topic has its own pub/sub connection: a Cluster
	// routes a shard channel to the master of its slot, so one connection
	// cannot carry the channels of every node.
	ps     *redis.PubSub
	exited chan struct{}
}

func newHub(newPubSub func(context.Context) *redis.PubSub, sharded bool) *hub {
	return &hub{newPubSub: newPubSub, sharded: sharded, topics: map[string]*topic{}, done: make(chan struct{})}
}

// subscribe returns once Redis confirmed the subscription to channel.
func (h *hub) subscribe(ctx context.Context, channel string) (<-chan struct{}, func(), error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, nil, ErrClosed
	}
	if h.ps == nil && !h.sharded {
		h.ps = h.newPubSub(context.Background())
		h.exited = make(chan struct{})
		go h.receive(h.ps, h.exited, nil)
	}
	t, exists := h.topics[channel]
	if !exists {
		t = &topic{channel: channel, waiters: map[chan struct{}]struct{}{}, ready: make(chan struct{})}
		if h.sharded {
			// newPubSub does no I/O: the connection is dialled by SSubscribe
			// below, to the node that owns the channel's slot.
			t.ps = h.newPubSub(context.Background())
			t.exited = make(chan struct{})
		}
		h.topics[channel] = t
	}
	w := make(chan struct{}, 1)
	t.waiters[w] = struct{}{}
	ps := h.ps
	h.mu.Unlock()

	stop := func() { h.leave(channel, t, w) }
	if !exists {
		var err error
		if h.sharded {
			// The channel is recorded before the receiver starts, so every
			// (re)connection is routed by its slot.
			err = t.ps.SSubscribe(ctx, channel)
			go h.receive(t.ps, t.exited, t)
		} else {
			err = ps.Subscribe(ctx, channel)
		}
		if err != nil {
			stop()
			return nil, nil, fmt.Errorf("%w: subscribe: %w", ErrUnavailable, err)
		}
	}
	select {
	case <-t.ready:
		return w, stop, nil
	case <-ctx.Done():
		stop()
		return nil, nil, fmt.Errorf("%w: subscribe: %w", ErrUnavailable, ctx.Err())
	case <-h.done:
		stop()
		return nil, nil, ErrClosed
	}
}

// leave removes waiter w; the last waiter of a confirmed topic unsubscribes.
// An unconfirmed topic stays until its confirmation arrives, so a confirmation
// can never be taken for that of a later subscription.
func (h *hub) leave(channel string, t *topic, w chan struct{}) {
	h.mu.Lock()
	delete(t.waiters, w)
	if h.sharded {
		// A topic's own connection: closing it ends the subscription, and a
		// later subscription gets a new connection, so no confirmation can be
		// mistaken for another's.
		last := len(t.waiters) == 0 && h.topics[channel] == t
		if last {
			delete(h.topics, channel)
		}
		h.mu.Unlock()
		if last {
			_ = t.ps.Close()
		}
		return
	}
	defer h.mu.Unlock()
	if len(t.waiters) == 0 && t.isReady && h.topics[channel] == t {
		h.unsubscribeLocked(channel)
	}
}

func (h *hub) unsubscribeLocked(channel string) {
	delete(h.topics, channel)
	if h.closed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	// A failed UNSUBSCRIBE leaves a subscription whose messages find no topic
	// and are dropped; go-redis forgets the channel either way.
	if h.sharded {
		_ = h.ps.SUnsubscribe(ctx, channel)
	} else {
		_ = h.ps.Unsubscribe(ctx, channel)
	}
}

// receive reads ps until it is closed and dispatches its confirmations and
// releases. own is nil for the shared connection, or the one sharded topic
// that owns ps: its confirmations then count for that topic only, never for
// a later topic of the same channel on another connection.
func (h *hub) receive(ps *redis.PubSub, exited chan struct{}, own *topic) {
	defer close(exited)
	for {
		msg, err := ps.Receive(context.Background())
		if err != nil {
			h.mu.Lock()
			gone := h.closed || (own != nil && h.topics[own.channel] != own)
			h.mu.Unlock()
			if gone {
				return
			}
			select {
			case <-h.done:
				return
			case <-time.After(50 * time.Millisecond): // reconnects on the next Receive
			}
			continue
		}
		h.mu.Lock()
		switch m := msg.(type) {
		case *redis.Subscription:
			t := h.topics[m.Channel]
			if (m.Kind != "subscribe" && m.Kind != "ssubscribe") || t == nil || (own != nil && t != own) {
				break
			}
			if t.isReady {
				// A resubscription after a reconnect: a release may have been
				// missed meanwhile, so every waiter tries again.
				wakeAll(t)
				break
			}
			t.isReady = true
			close(t.ready)
			if len(t.waiters) == 0 && own == nil {
				h.unsubscribeLocked(m.Channel)
			}
		case *redis.Message:
			if t := h.topics[m.Channel]; t != nil && (own == nil || t == own) {
				wakeAll(t)
			}
		}
		h.mu.Unlock()
	}
}

func wakeAll(t *topic) {
	for w := range t.waiters {
		select {
		case w <- struct{}{}:
		default: // already has a wake-up pending
		}
	}
}

func (h *hub) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	close(h.done)
	ps, exited := h.ps, h.exited
	var own []*topic
	for channel, t := range h.topics {
		if t.ps != nil {
			own = append(own, t)
			delete(h.topics, channel)
		}
	}
	h.mu.Unlock()
	if ps != nil {
		_ = ps.Close()
		<-exited
	}
	for _, t := range own {
		_ = t.ps.Close()
		<-t.exited
	}
}
