package api

import (
	"errors"

	"handler/function/function/lock"
)

// Error codes of the envelope.
const (
	CodeBadRequest       = "bad_request"
	CodeUnauthorized     = "unauthorized"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeHeld             = "held"
	CodeNotHeld          = "not_held"
	CodeTooLarge         = "too_large"
	CodeUnavailable      = "unavailable"
)

// Envelope is the JSON body of every answer.
type Envelope struct {
	Error   string `json:"error"`
	Code    string `json:"code"`
	Success bool   `json:"success"`
	Data    any    `json:"data"`
}

// LeaseData is the data of an answer about a lease. Owner is set only in
// answers to the owner.
type LeaseData struct {
	ID    string `json:"id"`
	State int    `json:"state"`
	Owner string `json:"owner,omitempty"`
	Fence int64  `json:"fence"`
	TTLms int64  `json:"ttl_ms"`
}

// IDData is the data of an error answer that parsed no lease, only an id.
type IDData struct {
	ID string `json:"id"`
}

// CodeOf maps an error of the lock layer to its envelope code.
func CodeOf(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrUnauthorized):
		return CodeUnauthorized
	case errors.Is(err, ErrForbidden):
		return CodeForbidden
	case errors.Is(err, ErrTooManyWaiters):
		return CodeTooManyWaiters
	case errors.Is(err, lock.ErrHeld):
		return CodeHeld
	case errors.Is(err, lock.ErrNotHeld):
		return CodeNotHeld
	case errors.Is(err, ErrTooLarge):
		return CodeTooLarge
	case errors.Is(err, lock.ErrInvalid):
		return CodeBadRequest
	default:
		return CodeUnavailable
	}
}

// Result is the envelope for an operation on id that returned lease and err.
// A refusal (held, not held) carries the current lease without its owner.
func Result(id string, lease lock.Lease, err error) Envelope {
	code := CodeOf(err)
	switch code {
	case "":
		return Envelope{Success: true, Data: leaseData(lease, true)}
	case CodeHeld, CodeNotHeld:
		return Envelope{Error: err.Error(), Code: code, Data: leaseData(lease, false)}
	}
	var data any
	if id != "" {
		data = IDData{ID: id}
	}
	msg := err.Error()
	if code == CodeUnavailable && !errors.Is(err, lock.ErrClosed) && !errors.Is(err, lock.ErrTooManyWaiters) {
		msg = "backend unavailable, retry later" // the cause goes to the log, not to callers
	}
	return Envelope{Error: msg, Code: code, Data: data}
}

func leaseData(l lock.Lease, withOwner bool) LeaseData {
	d := LeaseData{ID: l.ID, Fence: l.Fence, TTLms: l.TTL.Milliseconds()}
	if l.Held {
		d.State = 1
	}
	if withOwner {
		d.Owner = l.Owner
	}
	return d
}
