package api

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"handler/function/function/lock"
)

// FuzzParseLimit: a limit that parses is 1-MaxLimit and is the decimal
// number the caller wrote; anything else is refused.
func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"1", "1000", "1001", "0", "007", "-1", "+1", "1.0", "1e3", " 1", "", "4294967297", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseLimit(s)
		if err != nil {
			if n != 0 || !strings.Contains(err.Error(), "limit must be a whole number") {
				t.Fatalf("%q: %d, %v", s, n, err)
			}
			return
		}
		if n < 1 || n > lock.MaxLimit {
			t.Fatalf("%q gave %d", s, n)
		}
		if strconv.Itoa(n) != strings.TrimLeft(s, "0") {
			t.Fatalf("%q gave %d", s, n)
		}
	})
}

// FuzzAcquireParameters drives Resolve with arbitrary holder, limit, mode
// and lock_delay on every operation: an error is always a 400; an acquire
// it accepts is one the lock layer accepts, within the limits, carrying
// exactly what was asked; a release or heartbeat is accepted only without
// them.
func FuzzAcquireParameters(f *testing.F) {
	f.Add("worker-3 pid 4242", "3", "", "2s")
	f.Add("", "1", "shared", "")
	f.Add("", "2", "shared", "")
	f.Add("", "", "exclusive", "1500")
	f.Add("\x00", "1000", "Shared", "1h1ms")
	f.Add(strings.Repeat("h", 257), "0", "", "500us")
	f.Add("", "1e3", "", "-1s")
	lim := Limits{DefaultTTL: 30 * time.Second, MaxTTL: time.Hour, MaxWait: time.Minute}
	f.Fuzz(func(t *testing.T, holder, limit, mode, delay string) {
		p := Params{ID: "x", Owner: "me", Holder: holder, Limit: limit, Mode: mode, LockDelay: delay}
		for _, op := range []Op{Acquire, Release, Heartbeat} {
			req, err := lim.Resolve(op, p)
			if err != nil {
				if !errors.Is(err, lock.ErrInvalid) || CodeOf(err) != CodeBadRequest {
					t.Fatalf("%s %+v: %v (code %q), want a 400 bad_request", op, p, err, CodeOf(err))
				}
				continue
			}
			if op != Acquire {
				if holder != "" || limit != "" || mode != "" || delay != "" {
					t.Fatalf("%s accepted %+v", op, p)
				}
				if req.Holder != "" || req.Limit != 0 || req.Mode != "" || req.LockDelay != 0 {
					t.Fatalf("%s request %+v", op, req)
				}
				continue
			}
			if err := lock.ValidateAcquire(req.acquireRequest()); err != nil {
				t.Fatalf("accepted %+v, which the lock layer refuses: %v", p, err)
			}
			if req.Holder != holder || req.Mode != mode {
				t.Fatalf("%+v: holder %q mode %q", p, req.Holder, req.Mode)
			}
			if (limit == "") != (req.Limit == 0) || req.Limit < 0 || req.Limit > lock.MaxLimit {
				t.Fatalf("%+v: limit %d", p, req.Limit)
			}
			if d := req.LockDelay; d < 0 || d > lim.MaxTTL || d > 0 && d < time.Millisecond {
				t.Fatalf("%+v: lock_delay %s", p, d)
			}
		}
	})
}
