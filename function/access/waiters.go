package access

import (
	"context"
	"sync"

	"handler/function/function/api"
	"handler/function/function/lock"
)

// ErrTooManyWaiters: the identity already has its cap of acquires waiting
// (a 429 too_many_waiters with Retry-After). It does not wrap
// lock.ErrUnavailable: the instance is fine, this caller is over its share.
var ErrTooManyWaiters = api.ErrTooManyWaiters

// Waiters caps the acquires with a wait that each identity has in flight at
// once on this instance (CANDADO_MAX_WAITERS_PER_IDENTITY), so one team or
// sender cannot fill the instance's waiting slots. All Anonymous callers
// share one count.
type Waiters struct {
	max int

	mu sync.Mutex
	n  map[string]int
}

// NewWaiters caps each identity at max waiting acquires; max <= 0 is no cap.
func NewWaiters(max int) *Waiters {
	return &Waiters{max: max, n: make(map[string]int)}
}

func waiterKey(ident Identity) string {
	if p := ident.Principal(); p != "" {
		return p
	}
	return "anonymous"
}

// enter takes a slot for key, if one is free.
func (w *Waiters) enter(key string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n[key] >= w.max {
		return false
	}
	w.n[key]++
	return true
}

func (w *Waiters) leave(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n[key]--; w.n[key] <= 0 {
		delete(w.n, key) // the map holds only identities with waiters
	}
}

// Waiting is how many acquires with a wait ident has in flight.
func (w *Waiters) Waiting(ident Identity) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n[waiterKey(ident)]
}

// LimitWaiters returns locks whose acquires with a wait count against
// ident's cap in w: past it, such an acquire answers ErrTooManyWaiters at
// once, without reaching the lock layer. Acquires without a wait are never
// capped. A nil w or one with no cap returns locks as it is.
func LimitWaiters(locks api.Locks, w *Waiters, ident Identity) api.Locks {
	if w == nil || w.max <= 0 {
		return locks
	}
	return limitedLocks{Locks: locks, w: w, key: waiterKey(ident)}
}

type limitedLocks struct {
	api.Locks
	w   *Waiters
	key string
}

func (l limitedLocks) Acquire(ctx context.Context, req lock.AcquireRequest) (lock.Lease, error) {
	if req.Wait <= 0 {
		return l.Locks.Acquire(ctx, req)
	}
	if !l.w.enter(l.key) {
		return lock.Lease{ID: req.ID}, ErrTooManyWaiters
	}
	defer l.w.leave(l.key)
	return l.Locks.Acquire(ctx, req)
}

// Wrap returns locks whose acquires with a wait count against the cap of
// the identity in their context (see WithIdentity; none counts as
// Anonymous), like LimitWaiters. With no cap it returns locks as it is.
func (w *Waiters) Wrap(locks api.Locks) api.Locks {
	if w == nil || w.max <= 0 {
		return locks
	}
	return contextLimited{Locks: locks, w: w}
}

type contextLimited struct {
	api.Locks
	w *Waiters
}

func (c contextLimited) Acquire(ctx context.Context, req lock.AcquireRequest) (lock.Lease, error) {
	ident, _ := FromContext(ctx)
	return limitedLocks{Locks: c.Locks, w: c.w, key: waiterKey(ident)}.Acquire(ctx, req)
}
