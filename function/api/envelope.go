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

// AcquireData is the data of an answer to an acquire, granted or held.
type AcquireData struct {
	LeaseData
	// WaitCut is true when the server waited less than the wait asked for
	// (CANDADO_MAX_WAIT, or the entry's request deadline, cut it): a caller
	// that still wants the lock asks again, with the same owner, for the rest.
	WaitCut bool `json:"wait_cut"`
	// WaitedMs is how long the server waited for the lock, in whole
	// milliseconds rounded down. Of a grant it is a lower bound of the time
	// between the request's arrival and the grant, so a client's lease may
	// count from its send time plus WaitedMs without outliving the server's.
	WaitedMs int64 `json:"waited_ms"`
}

// IDData is the data of an error answer that parsed no lease, only an id.
type IDData struct {
	ID string `json:"id"`
}

// Unusable is an error that says, naming the variable, why the service
// cannot serve as configured (an empty Redis URL, say). It wraps
// lock.ErrUnavailable (503), and unlike other backend errors its text is
// shown to callers: it holds no secret and tells the operator what to fix.
type Unusable struct{ Reason string }

func (e *Unusable) Error() string { return e.Reason }

// Unwrap makes an Unusable match lock.ErrUnavailable.
func (e *Unusable) Unwrap() error { return lock.ErrUnavailable }

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
	var unusable *Unusable
	if code == CodeUnavailable && !errors.Is(err, lock.ErrClosed) && !errors.Is(err, lock.ErrTooManyWaiters) && !errors.As(err, &unusable) {
		msg = "backend unavailable, retry later" // the cause goes to the log, not to callers
	}
	return Envelope{Error: msg, Code: code, Data: data}
}

// Envelope is the envelope of r's outcome on id: Result's, with
// AcquireData instead of LeaseData in answers to an acquire.
func (r Request) Envelope(id string, lease lock.Lease, err error) Envelope {
	env := Result(id, lease, err)
	if d, ok := env.Data.(LeaseData); ok && r.Op == Acquire {
		env.Data = AcquireData{LeaseData: d, WaitCut: r.WaitCut, WaitedMs: lease.Waited.Milliseconds()}
	}
	return env
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
