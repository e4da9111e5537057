package api

import (
	"errors"
	"time"

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
	// CodeLimitMismatch (409): the lock is held with another limit or mode
	// family than the acquire asked for (lock.ErrLimitMismatch).
	CodeLimitMismatch = "limit_mismatch"
	// CodeUnsupported (400): this CANDADO_REDIS_MODE cannot honour a
	// parameter, as a limit, shared mode or lock_delay in quorum mode
	// (lock.ErrModeCannot). Asking again will not help.
	CodeUnsupported = "unsupported"
)

// Envelope is the JSON body of every answer.
type Envelope struct {
	Error   string `json:"error"`
	Code    string `json:"code"`
	Success bool   `json:"success"`
	Data    any    `json:"data"`
}

// LeaseData is the data of an answer about a lease. Owner is set only in
// answers to the owner; Holder is public; Limit and Mode only while the
// lock is held; the other fields of issue 15 only when not zero. Holders
// and Waiters are set (0 included) where the store counts them, in answers
// to acquire and inspect (see Counted), and nil elsewhere: a release or
// heartbeat answer does not count them, and must not read as "nobody holds
// it, nobody waits".
type LeaseData struct {
	ID          string      `json:"id"`
	State       int         `json:"state"`
	Owner       string      `json:"owner,omitempty"`
	Fence       int64       `json:"fence"`
	TTLms       int64       `json:"ttl_ms"`
	Holder      string      `json:"holder,omitempty"`
	Mode        string      `json:"mode,omitempty"`
	Limit       int         `json:"limit,omitempty"`
	Holders     *int        `json:"holders,omitempty"`
	Waiters     *int        `json:"waiters,omitempty"`
	DelayLeftMs int64       `json:"delay_left_ms,omitempty"`
	Leases      []LeaseInfo `json:"leases,omitempty"`
}

// LeaseInfo is one live lease of a lock, as anyone may see it: it has no
// owner field, so no answer can carry one by mistake.
type LeaseInfo struct {
	Fence  int64  `json:"fence"`
	TTLms  int64  `json:"ttl_ms"`
	Holder string `json:"holder,omitempty"`
	Mode   string `json:"mode"`
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
	case errors.Is(err, ErrTooManyWatchers):
		return CodeTooManyWatchers
	case errors.Is(err, lock.ErrLimitMismatch): // before held: the more precise refusal
		return CodeLimitMismatch
	case errors.Is(err, lock.ErrHeld):
		return CodeHeld
	case errors.Is(err, lock.ErrNotHeld):
		return CodeNotHeld
	case errors.Is(err, ErrTooLarge):
		return CodeTooLarge
	case errors.Is(err, lock.ErrModeCannot): // it wraps ErrInvalid
		return CodeUnsupported
	case errors.Is(err, lock.ErrInvalid):
		return CodeBadRequest
	default:
		return CodeUnavailable
	}
}

// Result is the envelope for an operation on id that returned lease and err.
// A refusal (held, not held, limit mismatch) carries the current lease
// without its owner. It shows no holder or waiter counts; see Counted.
func Result(id string, lease lock.Lease, err error) Envelope {
	return result(id, lease, err, false)
}

// Counted is Result for the operations whose leases count their holders
// and waiters: acquire (see Request.Envelope) and inspect.
func Counted(id string, lease lock.Lease, err error) Envelope {
	return result(id, lease, err, true)
}

func result(id string, lease lock.Lease, err error, counted bool) Envelope {
	code := CodeOf(err)
	switch code {
	case "":
		return Envelope{Success: true, Data: leaseData(lease, true, counted)}
	case CodeHeld, CodeNotHeld, CodeLimitMismatch:
		return Envelope{Error: err.Error(), Code: code, Data: leaseData(lease, false, counted)}
	}
	var data any
	if id != "" {
		data = IDData{ID: id}
	}
	msg := err.Error()
	var unusable *Unusable
	if code == CodeUnavailable && !errors.Is(err, lock.ErrClosed) && !errors.Is(err, lock.ErrTooManyWaiters) &&
		!errors.Is(err, lock.ErrUnsupported) && !errors.Is(err, lock.ErrTooManyWatchers) && !errors.As(err, &unusable) {
		msg = "backend unavailable, retry later" // the cause goes to the log, not to callers
	}
	return Envelope{Error: msg, Code: code, Data: data}
}

// Envelope is the envelope of r's outcome on id: Result's, with
// AcquireData instead of LeaseData in answers to an acquire.
func (r Request) Envelope(id string, lease lock.Lease, err error) Envelope {
	env := result(id, lease, err, r.Op == Acquire)
	if d, ok := env.Data.(LeaseData); ok && r.Op == Acquire {
		env.Data = AcquireData{LeaseData: d, WaitCut: r.WaitCut, WaitedMs: lease.Waited.Milliseconds()}
	}
	return env
}

// Counts is l's holders and waiters, nil where its store did not count
// them: a held lock has a holder, so a held lease of none was not counted
// (quorum mode's answers are such).
func Counts(l lock.Lease) (holders, waiters *int) {
	if l.Held && l.Holders == 0 {
		return nil, nil
	}
	h, w := l.Holders, l.Waiters
	return &h, &w
}

func leaseData(l lock.Lease, withOwner, counted bool) LeaseData {
	d := LeaseData{ID: l.ID, Fence: l.Fence, TTLms: l.TTL.Milliseconds(), Holder: l.Holder, DelayLeftMs: ceilMs(l.DelayLeft)}
	if counted {
		d.Holders, d.Waiters = Counts(l)
	}
	if l.Held {
		d.State, d.Mode, d.Limit = 1, l.Mode, l.Limit
	}
	if withOwner {
		d.Owner = l.Owner
	}
	if len(l.Leases) > 0 {
		d.Leases = make([]LeaseInfo, len(l.Leases))
		for i, li := range l.Leases {
			mode := li.Mode
			if mode == "" { // a live lease has a mode; "" is the default one
				mode = lock.Exclusive
			}
			d.Leases[i] = LeaseInfo{Fence: li.Fence, TTLms: li.TTL.Milliseconds(), Holder: li.Holder, Mode: mode}
		}
	}
	return d
}

// ceilMs is d in whole milliseconds rounded up, so that a caller who
// sleeps delay_left_ms before trying again is never early, and a delay
// still running never reads as 0 (absent).
func ceilMs(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}
