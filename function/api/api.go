// Package api is Candado's wire contract, shared by the HTTP and the
// CloudEvents mappings: request parameters and their rules, the operations,
// and the JSON envelope every answer carries.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"handler/function/function/lock"
)

// Op is a lock operation a caller can ask for.
type Op string

// The operations.
const (
	Acquire   Op = "acquire"
	Release   Op = "release"
	Heartbeat Op = "heartbeat"
)

// MaxBody is the largest request body (or CloudEvent data) accepted.
const MaxBody = 64 << 10

// ErrTooLarge means a body exceeded MaxBody.
var ErrTooLarge = errors.New("body exceeds 64 KiB")

// Locks is what the mappings need of the lock layer; *lock.Locker has it.
type Locks interface {
	Acquire(ctx context.Context, req lock.AcquireRequest) (lock.Lease, error)
	Release(ctx context.Context, id, owner string) (lock.Lease, error)
	Heartbeat(ctx context.Context, id, owner string, ttl time.Duration) (lock.Lease, error)
	Inspect(ctx context.Context, id string) (lock.Lease, error)
}

// Params are a request's parameters as the caller wrote them; "" means not
// given. TTL, Wait and LockDelay are Go durations or whole milliseconds;
// Holder, Limit, Mode and LockDelay apply to acquire only (see acquire.go).
type Params struct {
	ID        string `json:"id"`
	Owner     string `json:"owner"`
	TTL       string `json:"ttl"`
	Wait      string `json:"wait"`
	Holder    string `json:"holder"`
	Limit     string `json:"limit"`
	Mode      string `json:"mode"`
	LockDelay string `json:"lock_delay"`
}

// body is Params as JSON, where the durations may also be numbers and the
// limit is one.
type body struct {
	ID        string       `json:"id"`
	Owner     string       `json:"owner"`
	TTL       jsonDuration `json:"ttl"`
	Wait      jsonDuration `json:"wait"`
	Holder    string       `json:"holder"`
	Limit     jsonCount    `json:"limit"`
	Mode      string       `json:"mode"`
	LockDelay jsonDuration `json:"lock_delay"`
}

type jsonDuration string

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*d = jsonDuration(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("must be a duration string or a number of milliseconds")
	}
	*d = jsonDuration(n.String())
	return nil
}

// DecodeParams reads a JSON object of parameters; an empty body gives none.
// Unknown fields are refused, so a misspelt "tll" is not silently ignored.
func DecodeParams(r io.Reader) (Params, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBody+1))
	if err != nil {
		return Params{}, fmt.Errorf("%w: reading body: %w", lock.ErrInvalid, err)
	}
	if len(data) > MaxBody {
		return Params{}, ErrTooLarge
	}
	return ParseParams(data)
}

// ParseParams parses a JSON object of parameters; empty data gives none.
func ParseParams(data []byte) (Params, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return Params{}, nil
	}
	var b body
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return Params{}, fmt.Errorf("%w: body is not a valid JSON object of parameters: %w", lock.ErrInvalid, err)
	}
	if dec.More() {
		return Params{}, fmt.Errorf("%w: body holds more than one JSON value", lock.ErrInvalid)
	}
	return Params{ID: b.ID, Owner: b.Owner, TTL: string(b.TTL), Wait: string(b.Wait),
		Holder: b.Holder, Limit: string(b.Limit), Mode: b.Mode, LockDelay: string(b.LockDelay)}, nil
}

// Merge combines parameters from two places (query and body); a name given
// in both with different values is an error.
func Merge(a, b Params) (Params, error) {
	var err error
	pick := func(name, x, y string, same func(x, y string) bool) string {
		switch {
		case x == "":
			return y
		case y != "" && !same(x, y) && err == nil:
			err = fmt.Errorf("%w: %s is given twice with different values (%q, %q)", lock.ErrInvalid, name, x, y)
		}
		return x
	}
	equal := func(x, y string) bool { return x == y }
	sameDuration := func(x, y string) bool {
		if x == y {
			return true // and if both are bad, Resolve says why
		}
		dx, ex := ParseDuration(x)
		dy, ey := ParseDuration(y)
		return ex == nil && ey == nil && dx == dy
	}
	sameCount := func(x, y string) bool {
		if x == y {
			return true
		}
		nx, ex := ParseLimit(x)
		ny, ey := ParseLimit(y)
		return ex == nil && ey == nil && nx == ny
	}
	m := Params{
		ID:        pick("id", a.ID, b.ID, equal),
		Owner:     pick("owner", a.Owner, b.Owner, equal),
		TTL:       pick("ttl", a.TTL, b.TTL, sameDuration),
		Wait:      pick("wait", a.Wait, b.Wait, sameDuration),
		Holder:    pick("holder", a.Holder, b.Holder, equal),
		Limit:     pick("limit", a.Limit, b.Limit, sameCount),
		Mode:      pick("mode", a.Mode, b.Mode, equal),
		LockDelay: pick("lock_delay", a.LockDelay, b.LockDelay, sameDuration),
	}
	return m, err
}

// ParseDuration reads a Go duration ("30s", "1500ms") or whole milliseconds
// ("30000"). Negative values are refused.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if strings.Trim(s, "0123456789") == "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > int64(1<<63-1)/int64(time.Millisecond) {
			return 0, fmt.Errorf("%q milliseconds is out of range", s)
		}
		return time.Duration(n) * time.Millisecond, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a Go duration nor whole milliseconds", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

// Limits are the service's bounds on lease and wait lengths.
type Limits struct {
	DefaultTTL, MaxTTL, MaxWait time.Duration
	// Deadline is how long after a request arrives the entry's server cuts
	// the answer (0: never). Waits end Margin(Deadline) before it, so the
	// caller always gets a whole answer.
	Deadline time.Duration
}

// Margin is how long before a request deadline d a wait ends: a fifth of
// d, at least 1s and at most 5s. It leaves room for the last try, the
// answer, and a slow network.
func Margin(d time.Duration) time.Duration {
	return max(time.Second, min(5*time.Second, d/5))
}

// WaitCap is the longest wait an acquire gets: MaxWait, or less when the
// entry's Deadline minus its Margin is shorter (never negative).
func (lim Limits) WaitCap() time.Duration {
	if lim.Deadline <= 0 {
		return lim.MaxWait
	}
	return max(0, min(lim.MaxWait, lim.Deadline-Margin(lim.Deadline)))
}

// Request is one validated operation.
type Request struct {
	Op    Op
	ID    string
	Owner string
	TTL   time.Duration
	Wait  time.Duration
	// Holder, Limit, Mode and LockDelay are an acquire's, as in
	// lock.AcquireRequest; zero on release and heartbeat.
	Holder    string
	Limit     int
	Mode      string
	LockDelay time.Duration
	// WaitCut is set when the wait asked for was shortened, by MaxWait or
	// by the request deadline: the caller may ask again for the rest.
	WaitCut bool
	// Deadline is Limits.Deadline, so that Do can also count the time the
	// request spent arriving (see WithArrival).
	Deadline time.Duration
}

// Resolve checks p for op and applies defaults. An acquire without an owner
// gets a fresh 128-bit token; a wait over WaitCap is cut down to it. The
// acquire-only parameters on a release or heartbeat are refused.
func (lim Limits) Resolve(op Op, p Params) (Request, error) {
	req := Request{Op: op, ID: p.ID, Owner: p.Owner, Deadline: lim.Deadline}
	if err := lock.ValidateID(p.ID); err != nil {
		return req, err
	}
	switch op {
	case Acquire, Release, Heartbeat:
	default:
		return req, fmt.Errorf("%w: unknown operation %q", lock.ErrInvalid, op)
	}
	if req.Owner == "" && op == Acquire {
		req.Owner = lock.NewOwner()
	}
	if req.Owner == "" {
		return req, fmt.Errorf("%w: owner is required to %s", lock.ErrInvalid, op)
	}
	if err := lock.ValidateOwner(req.Owner); err != nil {
		return req, err
	}
	if op != Release {
		req.TTL = lim.DefaultTTL
		if p.TTL != "" {
			d, err := ParseDuration(p.TTL)
			if err != nil {
				return req, fmt.Errorf("%w: ttl: %w", lock.ErrInvalid, err)
			}
			if d < time.Millisecond {
				return req, fmt.Errorf("%w: ttl must be at least 1ms, got %s", lock.ErrInvalid, d)
			}
			if d > lim.MaxTTL {
				return req, fmt.Errorf("%w: ttl %s is over the maximum %s", lock.ErrInvalid, d, lim.MaxTTL)
			}
			req.TTL = d
		}
	} else if p.TTL != "" {
		return req, fmt.Errorf("%w: ttl does not apply to release", lock.ErrInvalid)
	}
	if p.Wait != "" {
		if op != Acquire {
			return req, fmt.Errorf("%w: wait applies only to acquire", lock.ErrInvalid)
		}
		d, err := ParseDuration(p.Wait)
		if err != nil {
			return req, fmt.Errorf("%w: wait: %w", lock.ErrInvalid, err)
		}
		req.Wait = min(d, lim.WaitCap())
		req.WaitCut = req.Wait < d
	}
	return req, lim.resolveAcquire(op, p, &req)
}

type arrivalKey struct{}

// WithArrival records in ctx when the request arrived, so that Do ends a
// wait a margin before the request deadline even when reading the request
// took a while.
func WithArrival(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, arrivalKey{}, t)
}

// arrival is the time WithArrival recorded, if any.
func arrival(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(arrivalKey{}).(time.Time)
	return t, ok
}

// Do carries out the request on locks. An acquire's wait, already capped
// by Resolve, is cut further if reading the request (a slow body) took more
// than a tenth of the margin, so that it still ends at least nine tenths of
// Margin(Deadline) before the request deadline counted from its arrival (see
// WithArrival); WaitCut then says so.
func (r *Request) Do(ctx context.Context, locks Locks) (lock.Lease, error) {
	switch r.Op {
	case Acquire:
		if at, ok := arrival(ctx); ok && r.Deadline > 0 && r.Wait > 0 {
			m := Margin(r.Deadline)
			if left := max(0, time.Until(at.Add(r.Deadline-m+m/10))); r.Wait > left {
				r.Wait, r.WaitCut = left, true
			}
		}
		return locks.Acquire(ctx, r.acquireRequest())
	case Release:
		return locks.Release(ctx, r.ID, r.Owner)
	case Heartbeat:
		return locks.Heartbeat(ctx, r.ID, r.Owner, r.TTL)
	}
	return lock.Lease{ID: r.ID}, fmt.Errorf("%w: unknown operation %q", lock.ErrInvalid, r.Op)
}
