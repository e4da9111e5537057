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

	// ErrBadRequest: the request was malformed (bad id, ttl, wait or owner),
	// detected by the client before sending or by the server. Server code "bad_request".
	ErrBadRequest = errors.New("candado: bad request")

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
type APIError struct {
	Status  int    // HTTP status code
	Code    string // envelope "code", e.g. "held"
	Message string // envelope "error"
	// Lock is the envelope's data, if any. On ErrHeld it describes the current
	// lease (ID, Held, Fence, TTL; never its owner).
	Lock *Status
	// RetryAfter is the Retry-After header of a 503, or 0.
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
	case "":
		switch e.Status {
		case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
			return ErrUnavailable
		case http.StatusUnauthorized:
			return ErrUnauthorized
		case http.StatusBadRequest:
			return ErrBadRequest
		}
	}
	return nil
}
