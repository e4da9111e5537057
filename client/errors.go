package client

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Sentinel errors. Match them with errors.Is; an error returned by the server is
// an *APIError that wraps one of them, so errors.As gives the details.
var (
	// ErrHeld: acquire was refused because another owner holds the lock
	// (after the requested Wait). Server code "held".
	ErrHeld = errors.New("candado: lock held by another owner")

	// ErrNotHeld: release or heartbeat was refused because the lease is not the
	// caller's (expired, released or never held). Server code "not_held".
	ErrNotHeld = errors.New("candado: lease not held")

	// ErrUnavailable: the server answered 503 (backend unreachable, shutting
	// down) or could not be reached at all, and retries ran out. The outcome of
	// the call is unknown.
	ErrUnavailable = errors.New("candado: service unavailable")

	// ErrUnauthorized: the bearer token was missing or wrong. Server code "unauthorized".
	ErrUnauthorized = errors.New("candado: unauthorized")

	// ErrBadRequest: the request was malformed (bad id, ttl, wait, owner,
	// holder, limit or lock-delay), detected by the client before sending or
	// by the server. Server code "bad_request".
	ErrBadRequest = errors.New("candado: bad request")

	// ErrForbidden: the token is known but its scope (verbs, lock ids) does
	// not cover the call. Server code "forbidden" (403).
	ErrForbidden = errors.New("candado: forbidden")

	// ErrLimitMismatch: acquire was refused because the lock is held with
	// another limit (a semaphore's limit is fixed while anyone holds it), or
	// in the other mode: a shared acquire of a semaphore, an exclusive
	// acquire with a limit above 1 of a lock held by shared leases. The
	// *APIError's Lock shows the lock's Limit, Mode and leases. Server code
	// "limit_mismatch" (409).
	ErrLimitMismatch = errors.New("candado: lock held with another limit or mode")

	// ErrUnsupported: the server's backend cannot honour a parameter of the
	// request (quorum mode refuses a limit above 1, shared leases and a
	// lock-delay). Asking again will not help, so it also matches
	// ErrBadRequest. Server code "unsupported" (400).
	ErrUnsupported = fmt.Errorf("%w: not supported by the server's backend", ErrBadRequest)

	// ErrTooManyRequests: the server refused at once, doing nothing, because
	// this token already has its cap of waiting acquires or open watch
	// streams on that server instance. Such answers are retried like a 503;
	// this is what is left when retries ran out. Server codes
	// "too_many_waiters" and "too_many_watchers" (429).
	ErrTooManyRequests = errors.New("candado: too many requests")

	// ErrLeaseExpired: the lease's TTL passed, measured from the moment the last
	// successful acquire (plus the server's reported wait) or heartbeat was
	// sent, without a new confirmation.
	ErrLeaseExpired = errors.New("candado: lease expired")

	// ErrReleased: the lease was given back with Release.
	ErrReleased = errors.New("candado: lease released")
)

// APIError is an error answer of the server, decoded from the response
// envelope. It unwraps to the sentinel of its code (ErrHeld, ErrNotHeld, ...),
// or to nil for codes without one (not_found, method_not_allowed, too_large).
// Unknown codes unwrap to nil too, except that a 429 matches ErrTooManyRequests.
type APIError struct {
	Status  int    // HTTP status code
	Code    string // envelope "code", e.g. "held"
	Message string // envelope "error"
	// Lock is the envelope's data, if any. On ErrHeld and ErrLimitMismatch it
	// describes the lock (ID, Held, Fence, TTL, Holder, Mode, Limit, Holders,
	// Waiters, DelayLeft, and of a semaphore or shared lock its Leases; never
	// an owner).
	Lock *Status
	// RetryAfter is the Retry-After header of a 503 or a 429, or 0.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.Status)
	}
	if e.Message == "" || e.Message == code {
		return fmt.Sprintf("candado: %d %s", e.Status, code)
	}
	return fmt.Sprintf("candado: %d %s: %s", e.Status, code, e.Message)
}

// Unwrap returns the sentinel error matching the code (or, without a code, the status).
func (e *APIError) Unwrap() error {
	switch e.Code {
	case "held":
		return ErrHeld
	case "not_held":
		return ErrNotHeld
	case "unavailable":
		return ErrUnavailable
	case "unauthorized":
		return ErrUnauthorized
	case "bad_request":
		return ErrBadRequest
	case "forbidden":
		return ErrForbidden
	case "limit_mismatch":
		return ErrLimitMismatch
	case "unsupported":
		return ErrUnsupported
	case "too_many_waiters", "too_many_watchers":
		return ErrTooManyRequests
	case "":
		switch e.Status {
		case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
			return ErrUnavailable
		case http.StatusUnauthorized:
			return ErrUnauthorized
		case http.StatusForbidden:
			return ErrForbidden
		case http.StatusBadRequest:
			return ErrBadRequest
		}
	}
	if e.Status == http.StatusTooManyRequests {
		// A proxy's or a later server's 429 means the same: nothing was done.
		return ErrTooManyRequests
	}
	return nil
}
