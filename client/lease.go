package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// AcquireOptions configure Acquire. A nil *AcquireOptions means all defaults.
type AcquireOptions struct {
	// TTL is the lease length, sent rounded up to whole milliseconds.
	// 0 takes the server's default (CANDADO_DEFAULT_TTL).
	TTL time.Duration

	// Wait is how long to wait for a held lock to come free; 0 tries once.
	// The request's timeout is extended by Wait; retries send only what is
	// left of it. A server may wait less than asked (its CANDADO_MAX_WAIT,
	// or its platform's request deadline) and say so (wait_cut): Acquire
	// then asks again, with the same owner, until Wait runs out, so Wait
	// holds on any server.
	Wait time.Duration

	// Owner is the lease's secret token (1–128 bytes). If empty, Acquire mints
	// 128 random bits before the first try, so every retry carries the same
	// owner and a retried acquire yields the same lease and fence.
	Owner string

	// AutoHeartbeat, if true, extends the lease by its TTL every TTL/3 (minus
	// up to 25% jitter) in a background goroutine. Heartbeats are not tied to
	// the ctx given to Acquire; they run until Release is called, the lease is
	// lost (Done closes), or Lifetime is done.
	AutoHeartbeat bool

	// Lifetime, if non-nil, bounds the automatic heartbeats: when it is done
	// they stop without releasing, and the lease expires at its TTL.
	Lifetime context.Context

	// Holder is a public label of the caller, at most MaxHolderLen bytes of
	// printable ASCII (e.g. "billing-worker-3 pid 4242"), shown to anyone who
	// inspects the lock: the answer to "who leads?". Never put a secret in it.
	// Empty: no label.
	Holder string

	// Limit makes the lock a semaphore: up to Limit leases (at most
	// MaxLimit) hold it at once, each with its own owner and fence. 0 or 1
	// is a mutex. Every holder must ask with the same limit: while the lock
	// is held, another limit fails with ErrLimitMismatch.
	Limit int

	// Shared asks for a shared lease: any number of shared leases hold the
	// lock at once, never beside an exclusive one (readers and a writer). A
	// waiting exclusive acquire holds back new shared ones. Shared takes no
	// Limit above 1.
	Shared bool

	// LockDelay, when the lease ends by expiry rather than Release, keeps
	// the lock from everyone for that long (at most the server's
	// CANDADO_MAX_TTL), so a resource that cannot check fences is not written
	// by the next holder while a paused one may still act. Sent rounded up
	// to whole milliseconds; 0: none.
	LockDelay time.Duration
}

// Limits of acquire parameters, as the server checks them.
const (
	MaxHolderLen = 256
	MaxLimit     = 1000
)

// Acquire takes lock id and returns its Lease. It fails with ErrHeld if the
// lock is still not to be had after Wait: other owners hold it (all of a
// semaphore's slots, or the other mode), earlier waiters are queued ahead, or
// a lock-delay runs; the *APIError's Lock then shows the current fence, TTL,
// holder label and DelayLeft. It fails with ErrLimitMismatch if the lock is
// held with another Limit or mode, and with ErrUnsupported if the server's
// backend cannot honour Limit, Shared or LockDelay. A successful acquire is
// idempotent per owner: the server keeps the fence and resets the TTL.
func (c *Client) Acquire(ctx context.Context, id string, opts *AcquireOptions) (*Lease, error) {
	var o AcquireOptions
	if opts != nil {
		o = *opts
	}
	if o.TTL < 0 || o.Wait < 0 || o.LockDelay < 0 {
		return nil, fmt.Errorf("%w: negative ttl, wait or lock-delay", ErrBadRequest)
	}
	if err := checkOwner(o.Owner, false); err != nil {
		return nil, err
	}
	if err := checkHolder(o.Holder); err != nil {
		return nil, err
	}
	if o.Limit < 0 || o.Limit > MaxLimit {
		return nil, fmt.Errorf("%w: limit must be 1-%d, got %d", ErrBadRequest, MaxLimit, o.Limit)
	}
	if o.Shared && o.Limit > 1 {
		return nil, fmt.Errorf("%w: a shared acquire takes no limit (got %d)", ErrBadRequest, o.Limit)
	}
	owner := o.Owner
	if owner == "" {
		owner = newOwner()
	}
	req := params{Owner: owner, TTL: millis(o.TTL), Holder: o.Holder, Limit: o.Limit, LockDelay: millis(o.LockDelay)}
	mode := ModeExclusive
	if o.Shared {
		req.Mode, mode = ModeShared, ModeShared // exclusive is the default, left out
	}
	ttlms := req.TTL
	waitUntil := time.Now().Add(o.Wait)
	remaining := func() time.Duration {
		if o.Wait <= 0 {
			return 0
		}
		return max(time.Until(waitUntil), 0)
	}
	var (
		st   Status
		sent time.Time
		err  error
	)
	for round := 0; ; round++ {
		st, sent, err = c.do(ctx, &call{
			method: http.MethodPost, route: "acquire", id: id,
			body: func() any {
				p := req
				p.Wait = millis(remaining())
				return p
			},
			extra: remaining,
		})
		var ae *APIError
		if err == nil || !errors.Is(err, ErrHeld) || !errors.As(err, &ae) || ae.Lock == nil || !ae.Lock.waitCut || remaining() <= 0 {
			break
		}
		// The server cut the wait short: ask again for the rest. A server
		// that hardly waits at all (a deadline below its margin) is asked
		// again only after a backoff, not in a tight loop.
		if ae.Lock.waited < minRound {
			pause, _ := c.pace.NextDelay(round+1, 0)
			t := time.NewTimer(min(pause, remaining()))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, err
			case <-t.C:
			}
		}
	}
	if err != nil {
		return nil, err
	}
	ttl := time.Duration(ttlms) * time.Millisecond
	if st.TTL > 0 && (ttl == 0 || st.TTL < ttl) {
		ttl = st.TTL // trust the shorter of asked and granted
	}
	l := &Lease{c: c, id: id, owner: owner, ttl: ttl, fence: st.Fence, holder: st.Holder, mode: st.Mode, limit: st.Limit,
		done: make(chan struct{})}
	// An answer without mode or limit comes from a server that predates
	// them and took none (it refuses unknown parameters): its lease is an
	// exclusive one of a mutex.
	if l.mode == "" {
		l.mode = mode
	}
	if l.limit == 0 {
		l.limit = max(o.Limit, 1)
	}
	l.mu.Lock()
	// The server granted the lease after waiting st.waited from the
	// request's arrival (a lower bound it sends), which came after sent: the
	// lease counts from the grant, and never outlives the server's.
	l.expiry = sent.Add(st.waited + ttl)
	l.timer = time.AfterFunc(time.Until(l.expiry), l.checkExpiry)
	if o.AutoHeartbeat {
		parent := o.Lifetime
		if parent == nil {
			parent = context.Background()
		}
		hctx, cancel := context.WithCancel(parent)
		l.stopHB, l.hbExited = cancel, make(chan struct{})
		go l.keepAlive(hctx, l.hbExited)
	}
	l.mu.Unlock()
	return l, nil
}

// minRound is the shortest server-side wait after which a cut wait is asked
// for again at once.
const minRound = 100 * time.Millisecond

func newOwner() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	return hex.EncodeToString(b[:])
}

// Lease is one acquisition of a lock. Its methods are safe for concurrent use.
//
// The client considers the lease lost, closes Done and sets Err, as soon as it
// knows the server no longer grants it: a heartbeat refused with not_held, or
// TTL elapsed since the last confirmed acquire or heartbeat. The latter is
// measured on the client's monotonic clock from the moment the request was
// sent, plus, for an acquire that waited, the time the server says it waited
// before granting (waited_ms, a lower bound), so a lease granted at the end of
// a long wait gets its whole TTL and still never ends later than the server's
// lease (barring clock-rate drift). Protect resources with Fence, not with
// Done alone.
type Lease struct {
	c         *Client
	id, owner string
	ttl       time.Duration
	fence     int64
	holder    string
	mode      string
	limit     int

	mu       sync.Mutex
	expiry   time.Time // sent time (+ server wait) of the last confirmation + ttl
	err      error     // why done closed; nil while live
	released bool      // Release succeeded
	lastErr  error     // last failed heartbeat since the last success
	timer    *time.Timer
	done     chan struct{}
	stopHB   context.CancelFunc // nil without AutoHeartbeat
	hbExited chan struct{}
}

// ID returns the lock id.
func (l *Lease) ID() string { return l.id }

// Owner returns the lease's owner token (secret: whoever has it can release the lease).
func (l *Lease) Owner() string { return l.owner }

// Fence returns the fence minted by the acquire: strictly greater than every
// earlier fence of the lock (each lease of a semaphore or of shared holders
// has its own). It does not change on heartbeats.
func (l *Lease) Fence() int64 { return l.fence }

// Holder returns the lease's public label as the server granted it: the
// AcquireOptions.Holder, or "" when none was given or the server's backend
// does not keep labels (quorum mode).
func (l *Lease) Holder() string { return l.holder }

// Mode returns ModeShared for a shared lease, else ModeExclusive.
func (l *Lease) Mode() string { return l.mode }

// Limit returns the lock's limit at the grant: 1 for a mutex or a shared
// lease, N for a semaphore.
func (l *Lease) Limit() int { return l.limit }

// TTL returns the lease length; each heartbeat extends the lease by it.
func (l *Lease) TTL() time.Duration { return l.ttl }

// Deadline returns when the client will consider the lease expired unless a
// heartbeat is confirmed first.
func (l *Lease) Deadline() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expiry
}

// Done returns a channel that is closed the moment the lease is known lost or released.
func (l *Lease) Done() <-chan struct{} { return l.done }

// Err returns nil while the lease is live, and after Done is closed the
// reason: ErrReleased, ErrLeaseExpired (wrapping the last heartbeat error, if
// any), or an error matching ErrNotHeld.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Heartbeat extends the lease by its TTL. It fails with ErrNotHeld (and the
// lease is lost) if the server refuses; with Err() at once, without asking the
// server, if the lease is already lost; any other error leaves the lease live
// until its deadline.
func (l *Lease) Heartbeat(ctx context.Context) error {
	if err := l.Err(); err != nil {
		return err
	}
	st, sent, err := l.c.heartbeat(ctx, l.id, l.owner, l.ttl, l.failed)
	if err != nil {
		if errors.Is(err, ErrNotHeld) {
			l.lose(err)
			return err
		}
		l.failed(err)
		return err
	}
	if st.Fence != 0 && st.Fence != l.fence {
		err := fmt.Errorf("%w: fence moved from %d to %d", ErrNotHeld, l.fence, st.Fence)
		l.lose(err)
		return err
	}
	ttl := l.ttl
	if st.TTL > 0 && st.TTL < ttl {
		ttl = st.TTL
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil { // lost meanwhile; a lost lease is never revived
		return l.err
	}
	if exp := sent.Add(ttl); exp.After(l.expiry) {
		l.expiry = exp
	}
	l.lastErr = nil
	return nil
}

// Release stops the automatic heartbeats (for good, whatever the outcome) and
// gives the lease back. On success Done is closed and Err is ErrReleased; a
// second call returns ErrReleased without a request. If the server answers
// not_held the lease is lost and the error matches ErrNotHeld. Other errors
// (ErrUnavailable, a done ctx) leave the lease to expire; Release may be
// called again.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return ErrReleased
	}
	stop, exited := l.stopHB, l.hbExited
	l.mu.Unlock()
	if stop != nil {
		stop()
		<-exited // no heartbeat is sent after this point
	}
	_, err := l.c.Release(ctx, l.id, l.owner)
	if err != nil {
		if errors.Is(err, ErrNotHeld) {
			l.lose(err)
		}
		return err
	}
	l.mu.Lock()
	l.released = true
	l.loseLocked(ErrReleased)
	l.mu.Unlock()
	return nil
}

// failed records a failed heartbeat try, reported if the lease then expires.
func (l *Lease) failed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastErr = err
}

func (l *Lease) lose(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.loseLocked(err)
}

// loseLocked ends the lease with err unless it already ended. l.mu is held.
func (l *Lease) loseLocked(err error) {
	if l.err != nil {
		return
	}
	l.err = err
	close(l.done)
	l.timer.Stop()
	if l.stopHB != nil {
		l.stopHB()
	}
}

// checkExpiry runs on the lease timer: it ends the lease if its deadline
// passed, else re-arms the timer for the deadline moved by heartbeats.
func (l *Lease) checkExpiry() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	if rem := time.Until(l.expiry); rem > 0 {
		l.timer.Reset(rem)
		return
	}
	err := ErrLeaseExpired
	if l.lastErr != nil {
		err = fmt.Errorf("%w (last heartbeat: %w)", ErrLeaseExpired, l.lastErr)
	}
	l.loseLocked(err)
}

// keepAlive sends heartbeats every TTL/3 with jitter until ctx is done (Release,
// loss of the lease, or the end of AcquireOptions.Lifetime).
func (l *Lease) keepAlive(ctx context.Context, exited chan struct{}) {
	defer close(exited)
	interval := max(l.ttl/3, time.Millisecond)
	for {
		t := time.NewTimer(interval - time.Duration(mrand.Int64N(int64(interval)/4+1)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		hctx, cancel := context.WithDeadline(ctx, l.Deadline())
		_ = l.Heartbeat(hctx) // failures are recorded in the lease
		cancel()
	}
}
