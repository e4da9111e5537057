// Package lock holds Candado's lock semantics: named leases with TTLs, owner
// tokens and fencing tokens, independent of how requests arrive.
//
// A lock is free, or held by leases, each with its own owner, TTL and fence,
// until its TTL runs out or its owner releases it. A mutex (the default) has
// at most one lease; a semaphore of Limit N at most N; shared leases any
// number, but never beside an exclusive one. Every grant mints a fence
// strictly greater than every fence minted before for the same lock id, so a
// protected resource can reject a holder whose lease ended while it was
// paused. Waiting acquires are granted in the order they began to wait, and
// an acquire that does not wait never passes them (see Locker).
package lock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrHeld means another owner holds the lock.
	ErrHeld = errors.New("lock is held by another owner")
	// ErrNotHeld means the lease is not the caller's: expired, released or never held.
	ErrNotHeld = errors.New("lease is not held by this owner")
	// ErrUnavailable means the backend could not answer; the operation may or
	// may not have taken effect, and never counts as a success.
	ErrUnavailable = errors.New("backend unavailable")
	// ErrInvalid means the request itself is malformed.
	ErrInvalid = errors.New("invalid request")
	// ErrContended means a quorum store found the lock neither free nor held:
	// competing attempts each hold a minority of the masters, or the masters
	// that would decide did not answer. It wraps ErrUnavailable (503); a
	// waiting acquire tries again.
	ErrContended = fmt.Errorf("%w: contended, no owner holds a majority of the masters", ErrUnavailable)
	// ErrLimitMismatch means the lock is held with another limit or mode
	// family than the acquire asked for: a semaphore's limit is fixed while
	// anyone holds it, and shared leases are taken on a lock of limit 1.
	ErrLimitMismatch = errors.New("lock is held with another limit")
	// ErrModeCannot means this store (CANDADO_REDIS_MODE) cannot honour a
	// parameter of the request, as a semaphore, a shared lease or a
	// lock-delay in quorum mode. It wraps ErrInvalid: asking again will not
	// help (400, code "unsupported").
	ErrModeCannot = fmt.Errorf("%w: not supported in this CANDADO_REDIS_MODE", ErrInvalid)
	// ErrUnsupported means this store (mode) cannot do the operation at all,
	// as listing and watching in quorum mode. It wraps
	// ErrUnavailable (503), and its text is shown to callers.
	ErrUnsupported = fmt.Errorf("%w: not supported in this CANDADO_REDIS_MODE", ErrUnavailable)
)

// Lease is the state of one lock as an operation left it.
type Lease struct {
	// ID is the lock id.
	ID string
	// Held is true while an owner holds the lease.
	Held bool
	// Owner is the holder's secret token. Stores fill it only in answers to
	// the owner itself.
	Owner string
	// Fence is the fencing token of the current or last lease, 0 if unknown.
	Fence int64
	// TTL is the lease's remaining time, 0 when free.
	TTL time.Duration
	// Waited is how long an acquire waited for a held lock: to the start of
	// the try that granted it, or until the wait ran out.
	Waited time.Duration
	// Woken is true when an acquire succeeded after a release or expiry woke it.
	Woken bool
	// Holder is the public label of this lease (in answers to its owner) or
	// of the lease that blocks (in a refusal); never a secret.
	Holder string
	// Mode is Exclusive or Shared: of this lease, or of the leases that hold
	// the lock in a refusal. "" when free.
	Mode string
	// Limit is the lock's limit while it is held: 1 for a mutex or a lock
	// of shared leases, N for a semaphore; 0 when free.
	Limit int
	// Holders is how many leases are live now.
	Holders int
	// Waiters is how many acquires wait in the lock's queue.
	Waiters int
	// DelayLeft is the lock-delay left: after a lease with LockDelay
	// expired, nobody is granted the lock until it ends.
	DelayLeft time.Duration
	// Leases are the live leases, owners blank. Inspect fills it always,
	// refusals of a semaphore or of shared leases too.
	Leases []LeaseInfo
	// RetryIn, in a refusal, is when the answer may change without a
	// wake-up: the blocking lease's expiry, the lock-delay's end, or the
	// deadline of a waiter ahead in the queue. 0 when unknown. Not shown to
	// callers; Locker's waiters sleep on it.
	RetryIn time.Duration
}

// LeaseInfo is one live lease of a lock as anyone may see it.
type LeaseInfo struct {
	Fence  int64
	TTL    time.Duration
	Holder string
	Mode   string
}

// The modes of a lease.
const (
	// Exclusive leases count against the lock's Limit; with Limit 1, the
	// default, the holder is alone.
	Exclusive = "exclusive"
	// Shared leases may be many at once (up to MaxLimit), never beside an
	// exclusive lease. A waiting exclusive acquire holds back new shared
	// ones, so writers never starve.
	Shared = "shared"
)

// AcquireRequest asks for the lease on ID.
type AcquireRequest struct {
	ID string
	// Owner is the caller's token; an acquire by the current holder succeeds
	// again, keeps the fence and resets the TTL.
	Owner string
	TTL   time.Duration
	// Wait is how long to wait for a held lock; 0 tries once. A waiting
	// acquire keeps its place in the lock's queue; one that does not wait
	// is refused while anyone waits ahead of it.
	Wait time.Duration
	// Holder is a public label of the caller ("worker-3 pid 4242"), shown
	// to anyone who looks at the lock; at most MaxHolderLen printable bytes.
	Holder string
	// Limit is how many leases may hold ID at once: 0 or 1 is a mutex, N
	// (at most MaxLimit) a semaphore. Shared acquires take limit 1.
	Limit int
	// Mode is Exclusive (also "") or Shared.
	Mode string
	// LockDelay, when this lease ends by expiry rather than release, keeps
	// every acquire of ID refused for that long (at most the TTL limit).
	LockDelay time.Duration
}

// limit is the request's lock limit: 1 unless a semaphore's.
func (r AcquireRequest) limit() int {
	if r.Limit < 1 {
		return 1
	}
	return r.Limit
}

// shared reports whether the request asks for a shared lease.
func (r AcquireRequest) shared() bool { return r.Mode == Shared }

// Store is a backend that keeps leases. Every method is safe for concurrent use.
//
// Acquire returns the lease or ErrHeld (with the current lease, owner blank);
// Release and Heartbeat return ErrNotHeld unless owner holds a live lease;
// errors the backend caused wrap ErrUnavailable.
type Store interface {
	Acquire(ctx context.Context, req AcquireRequest) (Lease, error)
	Release(ctx context.Context, id, owner string) (Lease, error)
	Heartbeat(ctx context.Context, id, owner string, ttl time.Duration) (Lease, error)
	Inspect(ctx context.Context, id string) (Lease, error)
	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error
	// Close ends every waiter with ErrUnavailable and frees connections.
	Close() error
}

// Limits on request values.
const (
	MaxIDLen     = 255
	MaxOwnerLen  = 128
	MaxHolderLen = 256
	// MaxLimit bounds a semaphore's limit and the shared leases of one lock,
	// so that each script's work on a lock stays bounded.
	MaxLimit = 1000
)

// ValidateAcquire reports whether req's holder, limit, mode and lock-delay
// are usable (the id, owner and durations are checked by their own rules).
func ValidateAcquire(req AcquireRequest) error {
	if len(req.Holder) > MaxHolderLen {
		return fmt.Errorf("%w: holder must be at most %d bytes, got %d", ErrInvalid, MaxHolderLen, len(req.Holder))
	}
	for i := 0; i < len(req.Holder); i++ {
		if c := req.Holder[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("%w: holder may hold only printable ASCII, got byte %#x", ErrInvalid, c)
		}
	}
	if req.Limit < 0 || req.Limit > MaxLimit {
		return fmt.Errorf("%w: limit must be 1-%d, got %d", ErrInvalid, MaxLimit, req.Limit)
	}
	switch req.Mode {
	case "", Exclusive:
	case Shared:
		if req.Limit > 1 {
			return fmt.Errorf("%w: a shared acquire takes no limit (got %d): shared leases are many by nature", ErrInvalid, req.Limit)
		}
	default:
		return fmt.Errorf("%w: mode must be %q or %q, got %q", ErrInvalid, Exclusive, Shared, req.Mode)
	}
	if req.LockDelay < 0 {
		return fmt.Errorf("%w: lock_delay must not be negative", ErrInvalid)
	}
	return nil
}

// ValidateID reports whether id is a lock id: 1-255 bytes of ASCII letters,
// digits and -_.:@/ with no empty, "." or ".." segment.
func ValidateID(id string) error {
	if len(id) == 0 || len(id) > MaxIDLen {
		return fmt.Errorf("%w: lock id must be 1-%d bytes, got %d", ErrInvalid, MaxIDLen, len(id))
	}
	segStart := 0
	for i := 0; i <= len(id); i++ {
		if i == len(id) || id[i] == '/' {
			switch seg := id[segStart:i]; seg {
			case "", ".", "..":
				return fmt.Errorf("%w: lock id %q has an empty, \".\" or \"..\" segment", ErrInvalid, id)
			}
			segStart = i + 1
			continue
		}
		if !idByte(id[i]) {
			return fmt.Errorf("%w: lock id may hold only ASCII letters, digits and -_.:@/, got %q", ErrInvalid, id[i])
		}
	}
	return nil
}

func idByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '.', ':', '@', '/':
		return true
	}
	return false
}

// ValidateOwner reports whether owner is a usable owner token: 1-128 bytes.
func ValidateOwner(owner string) error {
	if len(owner) == 0 || len(owner) > MaxOwnerLen {
		return fmt.Errorf("%w: owner must be 1-%d bytes, got %d", ErrInvalid, MaxOwnerLen, len(owner))
	}
	return nil
}

// NewOwner mints an owner token of 128 random bits.
func NewOwner() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}
