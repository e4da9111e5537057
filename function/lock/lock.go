// Package lock holds Candado's lock semantics: named leases with TTLs, owner
// tokens and fencing tokens, independent of how requests arrive.
//
// A lock is free, or held by exactly one owner until its TTL runs out or the
// owner releases it. Every successful acquisition mints a fence strictly
// greater than every fence minted before for the same lock id, so a protected
// resource can reject a holder whose lease ended while it was paused.
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
}

// AcquireRequest asks for the lease on ID.
type AcquireRequest struct {
	ID string
	// Owner is the caller's token; an acquire by the current holder succeeds
	// again, keeps the fence and resets the TTL.
	Owner string
	TTL   time.Duration
	// Wait is how long to wait for a held lock; 0 tries once.
	Wait time.Duration
}

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
	MaxIDLen    = 255
	MaxOwnerLen = 128
)

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
