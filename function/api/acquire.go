package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"handler/function/function/lock"
)

// This file holds the parameters that only an acquire takes: holder,
// limit, mode and lock_delay (issue 15). Their meaning is the lock layer's
// (lock.AcquireRequest); here they are read, bounded and checked.

// jsonCount is a limit in a JSON body: a number, or null for not given. A
// string is refused, so that "3" and 3 are not two spellings of one count
// the way "30s" and 30000 are of one duration.
type jsonCount string

func (c *jsonCount) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var n json.Number
	if len(b) == 0 || b[0] == '"' || json.Unmarshal(b, &n) != nil {
		return fmt.Errorf("limit must be a whole number 1-%d", lock.MaxLimit)
	}
	*c = jsonCount(n.String())
	return nil
}

// ParseLimit reads a limit: a whole number 1-lock.MaxLimit, in decimal
// digits only (no sign, no fraction, no exponent).
func ParseLimit(s string) (int, error) {
	bad := fmt.Errorf("limit must be a whole number 1-%d, got %q", lock.MaxLimit, s)
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, bad
	}
	// Leading zeros are fine ("007"); a long run of digits is out of range
	// whatever it is, so ParseInt's own range error is the same refusal.
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 1 || n > lock.MaxLimit {
		return 0, bad
	}
	return int(n), nil
}

// resolveAcquire reads p's acquire-only parameters into req. On a release
// or heartbeat they are refused rather than ignored: a heartbeat cannot
// change a lease's limit, mode or label, and a caller who sends one
// believes it can.
func (lim Limits) resolveAcquire(op Op, p Params, req *Request) error {
	if op != Acquire {
		for _, f := range [...]struct{ name, value string }{
			{"holder", p.Holder}, {"limit", p.Limit}, {"mode", p.Mode}, {"lock_delay", p.LockDelay},
		} {
			if f.value != "" {
				return fmt.Errorf("%w: %s applies only to acquire", lock.ErrInvalid, f.name)
			}
		}
		return nil
	}
	req.Holder, req.Mode = p.Holder, p.Mode
	if p.Limit != "" {
		n, err := ParseLimit(p.Limit)
		if err != nil {
			return fmt.Errorf("%w: %w", lock.ErrInvalid, err)
		}
		req.Limit = n
	}
	if p.LockDelay != "" {
		d, err := ParseDuration(p.LockDelay)
		if err != nil {
			return fmt.Errorf("%w: lock_delay: %w", lock.ErrInvalid, err)
		}
		// The stores keep time in milliseconds: a delay under one would
		// silently become none.
		if d > 0 && d < time.Millisecond {
			return fmt.Errorf("%w: lock_delay must be 0 or at least 1ms, got %s", lock.ErrInvalid, d)
		}
		if d > lim.MaxTTL {
			return fmt.Errorf("%w: lock_delay %s is over the maximum %s (CANDADO_MAX_TTL)", lock.ErrInvalid, d, lim.MaxTTL)
		}
		req.LockDelay = d
	}
	return lock.ValidateAcquire(req.acquireRequest())
}

// acquireRequest is the lock layer's form of an acquire.
func (r *Request) acquireRequest() lock.AcquireRequest {
	return lock.AcquireRequest{ID: r.ID, Owner: r.Owner, TTL: r.TTL, Wait: r.Wait,
		Holder: r.Holder, Limit: r.Limit, Mode: r.Mode, LockDelay: r.LockDelay}
}
