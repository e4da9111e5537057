package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"handler/function/function/lock"
)

var testLimits = Limits{DefaultTTL: 30 * time.Second, MaxTTL: time.Hour, MaxWait: time.Minute}

// The acquire-only parameters reach the request as the caller meant them.
func TestResolveAcquireParameters(t *testing.T) {
	for _, tc := range []struct {
		p      Params
		holder string
		limit  int
		mode   string
		delay  time.Duration
	}{
		{Params{}, "", 0, "", 0},
		{Params{Holder: "billing-worker-3 pid 4242"}, "billing-worker-3 pid 4242", 0, "", 0},
		{Params{Holder: strings.Repeat("h", lock.MaxHolderLen)}, strings.Repeat("h", lock.MaxHolderLen), 0, "", 0},
		{Params{Limit: "1"}, "", 1, "", 0},
		{Params{Limit: "5"}, "", 5, "", 0},
		{Params{Limit: "1000"}, "", 1000, "", 0},
		{Params{Limit: "007"}, "", 7, "", 0},
		{Params{Mode: "exclusive", Limit: "3"}, "", 3, "exclusive", 0},
		{Params{Mode: "shared"}, "", 0, "shared", 0},
		{Params{Mode: "shared", Limit: "1"}, "", 1, "shared", 0},
		{Params{LockDelay: "0"}, "", 0, "", 0},
		{Params{LockDelay: "1500"}, "", 0, "", 1500 * time.Millisecond},
		{Params{LockDelay: "10s"}, "", 0, "", 10 * time.Second},
		{Params{LockDelay: "1ms"}, "", 0, "", time.Millisecond},
		{Params{LockDelay: "1h"}, "", 0, "", time.Hour}, // exactly CANDADO_MAX_TTL
	} {
		tc.p.ID = "x"
		req, err := testLimits.Resolve(Acquire, tc.p)
		if err != nil {
			t.Errorf("%+v: %v", tc.p, err)
			continue
		}
		if req.Holder != tc.holder || req.Limit != tc.limit || req.Mode != tc.mode || req.LockDelay != tc.delay {
			t.Errorf("%+v: holder %q limit %d mode %q lock_delay %s; want %q %d %q %s",
				tc.p, req.Holder, req.Limit, req.Mode, req.LockDelay, tc.holder, tc.limit, tc.mode, tc.delay)
		}
	}
}

// Bad values are a 400 bad_request that says what is wrong, never
// "unsupported" (which is the store's to say) and never a silent default.
func TestResolveRefusesBadAcquireParameters(t *testing.T) {
	for _, tc := range []struct {
		p    Params
		want string
	}{
		{Params{Limit: "0"}, "limit must be a whole number 1-1000"},
		{Params{Limit: "1001"}, "limit must be a whole number 1-1000"},
		{Params{Limit: "-1"}, "limit must be a whole number"},
		{Params{Limit: "+3"}, "limit must be a whole number"},
		{Params{Limit: "1.5"}, "limit must be a whole number"},
		{Params{Limit: "1e2"}, "limit must be a whole number"},
		{Params{Limit: " 3"}, "limit must be a whole number"},
		{Params{Limit: "three"}, "limit must be a whole number"},
		{Params{Limit: "99999999999999999999"}, "limit must be a whole number"},
		{Params{LockDelay: "2h"}, "lock_delay 2h0m0s is over the maximum 1h0m0s"},
		{Params{LockDelay: "3600001"}, "over the maximum"},
		{Params{LockDelay: "-1s"}, "lock_delay"},
		{Params{LockDelay: "soon"}, "lock_delay"},
		{Params{LockDelay: "500us"}, "lock_delay must be 0 or at least 1ms"},
		{Params{Holder: strings.Repeat("h", lock.MaxHolderLen+1)}, "holder must be at most 256 bytes"},
		{Params{Holder: "line\nbreak"}, "printable ASCII"},
		{Params{Holder: "tab\there"}, "printable ASCII"},
		{Params{Holder: "señor"}, "printable ASCII"},
		{Params{Mode: "Shared"}, `mode must be "exclusive" or "shared"`},
		{Params{Mode: "read"}, `mode must be "exclusive" or "shared"`},
		{Params{Mode: "shared", Limit: "2"}, "a shared acquire takes no limit"},
	} {
		tc.p.ID = "x"
		_, err := testLimits.Resolve(Acquire, tc.p)
		if !errors.Is(err, lock.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want an invalid request saying %q", tc.p, err, tc.want)
			continue
		}
		if code := CodeOf(err); code != CodeBadRequest {
			t.Errorf("%+v: code %q, want %q", tc.p, code, CodeBadRequest)
		}
	}
}

// Release and heartbeat refuse the acquire-only parameters: a heartbeat
// cannot change a lease's limit, mode or label, and ignoring them would
// let the caller believe it had.
func TestReleaseAndHeartbeatRefuseAcquireParameters(t *testing.T) {
	for _, op := range []Op{Release, Heartbeat} {
		for name, p := range map[string]Params{
			"holder":     {Holder: "w"},
			"limit":      {Limit: "2"},
			"mode":       {Mode: "shared"},
			"lock_delay": {LockDelay: "1s"},
		} {
			p.ID, p.Owner = "x", "me"
			_, err := testLimits.Resolve(op, p)
			if want := name + " applies only to acquire"; !errors.Is(err, lock.ErrInvalid) || !strings.Contains(err.Error(), want) {
				t.Errorf("%s with %s: %v; want %q", op, name, err, want)
			}
		}
		// Without them, both still work.
		if _, err := testLimits.Resolve(op, Params{ID: "x", Owner: "me"}); err != nil {
			t.Errorf("%s: %v", op, err)
		}
	}
}

func TestParseParamsReadsAcquireParameters(t *testing.T) {
	p, err := ParseParams([]byte(`{"holder":"w-3","limit":3,"mode":"shared","lock_delay":"1s"}`))
	if err != nil || p != (Params{Holder: "w-3", Limit: "3", Mode: "shared", LockDelay: "1s"}) {
		t.Fatalf("got %+v, %v", p, err)
	}
	p, err = ParseParams([]byte(`{"limit":null,"lock_delay":1500,"holder":null,"mode":null}`))
	if err != nil || p != (Params{LockDelay: "1500"}) {
		t.Fatalf("nulls and a number: %+v, %v", p, err)
	}
	for _, body := range []string{
		`{"limit":"3"}`,        // a count is a number, not a string
		`{"limit":true}`,       // nor anything else
		`{"limit":[3]}`,        //
		`{"holder":5}`,         // a label is a string
		`{"mode":1}`,           //
		`{"lock_delay":true}`,  //
		`{"lockdelay":"1s"}`,   // misspelt: refused, not ignored
		`{"lock-delay":"1s"}`,  //
		`{"holders":"w"}`,      // an answer's field, not a parameter
		`{"limit":3,"limit"}`,  // not JSON
		`{"limit":3} {"x":1}`,  // two values
		`{"lock_delay":"1s"}x`, // trailing garbage
	} {
		if _, err := ParseParams([]byte(body)); !errors.Is(err, lock.ErrInvalid) {
			t.Errorf("%s: %v, want an invalid request", body, err)
		}
	}
	// Numbers that parse as JSON but are no count reach Resolve, which says so.
	for _, body := range []string{`{"limit":2.5}`, `{"limit":-1}`, `{"limit":0}`, `{"limit":1e2}`, `{"limit":1e400}`} {
		p, err := ParseParams([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		p.ID = "x"
		if _, err := testLimits.Resolve(Acquire, p); !errors.Is(err, lock.ErrInvalid) || !strings.Contains(err.Error(), "limit") {
			t.Errorf("%s: %v, want a refused limit", body, err)
		}
	}
}

// Query and body may both give a parameter; they must agree, by value.
func TestMergeAcquireParameters(t *testing.T) {
	for _, tc := range []struct {
		query, body Params
		want        Params
		conflict    string
	}{
		{Params{Limit: "3"}, Params{Limit: "3"}, Params{Limit: "3"}, ""},
		{Params{Limit: "03"}, Params{Limit: "3"}, Params{Limit: "03"}, ""},
		{Params{LockDelay: "1s"}, Params{LockDelay: "1000"}, Params{LockDelay: "1s"}, ""},
		{Params{Holder: "w"}, Params{}, Params{Holder: "w"}, ""},
		{Params{}, Params{Mode: "shared", LockDelay: "5s"}, Params{Mode: "shared", LockDelay: "5s"}, ""},
		{Params{Limit: "3"}, Params{Limit: "4"}, Params{}, "limit is given twice"},
		{Params{LockDelay: "1s"}, Params{LockDelay: "2000"}, Params{}, "lock_delay is given twice"},
		{Params{Holder: "a"}, Params{Holder: "b"}, Params{}, "holder is given twice"},
		{Params{Holder: "a"}, Params{Holder: "A"}, Params{}, "holder is given twice"},
		{Params{Mode: "shared"}, Params{Mode: "exclusive"}, Params{}, "mode is given twice"},
	} {
		got, err := Merge(tc.query, tc.body)
		switch {
		case tc.conflict != "":
			if !errors.Is(err, lock.ErrInvalid) || !strings.Contains(err.Error(), tc.conflict) {
				t.Errorf("Merge(%+v, %+v) = %v, want %q", tc.query, tc.body, err, tc.conflict)
			}
		case err != nil || got != tc.want:
			t.Errorf("Merge(%+v, %+v) = %+v, %v; want %+v", tc.query, tc.body, got, err, tc.want)
		}
	}
}

// Do hands the acquire-only parameters to the lock layer untouched.
func TestDoPassesAcquireParameters(t *testing.T) {
	req, err := testLimits.Resolve(Acquire, Params{ID: "jobs/1", Owner: "me", Holder: "w-1", Limit: "4", LockDelay: "2s", Wait: "1s"})
	if err != nil {
		t.Fatal(err)
	}
	var l recordLocks
	if _, err := req.Do(context.Background(), &l); err != nil {
		t.Fatal(err)
	}
	want := lock.AcquireRequest{ID: "jobs/1", Owner: "me", TTL: 30 * time.Second, Wait: time.Second,
		Holder: "w-1", Limit: 4, LockDelay: 2 * time.Second}
	if l.got != want {
		t.Fatalf("the store got %+v, want %+v", l.got, want)
	}
	req, _ = testLimits.Resolve(Acquire, Params{ID: "jobs/1", Mode: "shared"})
	if _, err := req.Do(context.Background(), &l); err != nil || l.got.Mode != lock.Shared {
		t.Fatalf("shared acquire reached the store as %+v, %v", l.got, err)
	}
}

func TestCodesOfIssue15Errors(t *testing.T) {
	for _, tc := range []struct {
		err    error
		code   string
		status int
	}{
		{lock.ErrLimitMismatch, CodeLimitMismatch, 409},
		{fmt.Errorf("%w: held with limit 3, asked 2", lock.ErrLimitMismatch), CodeLimitMismatch, 409},
		// A store may say both; the precise one wins.
		{fmt.Errorf("%w: %w", lock.ErrHeld, lock.ErrLimitMismatch), CodeLimitMismatch, 409},
		{lock.ErrModeCannot, CodeUnsupported, 400},
		{fmt.Errorf("%w: limit 3 in quorum mode", lock.ErrModeCannot), CodeUnsupported, 400},
		{lock.ErrInvalid, CodeBadRequest, 400},
		{lock.ErrHeld, CodeHeld, 409},
	} {
		if code := CodeOf(tc.err); code != tc.code {
			t.Errorf("CodeOf(%v) = %q, want %q", tc.err, code, tc.code)
		}
		if status := StatusOf(tc.code); status != tc.status {
			t.Errorf("StatusOf(%q) = %d, want %d", tc.code, status, tc.status)
		}
	}
}

// keysOf is the set of JSON object keys of v's encoding.
func keysOf(t *testing.T, v any) ([]string, []byte) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, b
}

// A refusal of a semaphore shows the text, the lock's limit, its leases
// with their labels, and no owner anywhere.
func TestLimitMismatchEnvelope(t *testing.T) {
	held := lock.Lease{ID: "pool", Held: true, Owner: "secret-owner", Fence: 9, TTL: 4 * time.Second,
		Holder: "w-1", Mode: lock.Exclusive, Limit: 3, Holders: 2, Waiters: 1,
		Leases:  []lock.LeaseInfo{{Fence: 8, TTL: 3 * time.Second, Holder: "w-0", Mode: lock.Exclusive}, {Fence: 9, TTL: 4 * time.Second, Holder: "w-1"}},
		RetryIn: time.Second}
	err := fmt.Errorf("%w: held with limit 3, asked 5", lock.ErrLimitMismatch)
	req := Request{Op: Acquire, ID: "pool"}
	env := req.Envelope("pool", held, err)
	if env.Success || env.Code != CodeLimitMismatch || env.Error != err.Error() {
		t.Fatalf("envelope %+v", env)
	}
	d, ok := env.Data.(AcquireData)
	if !ok {
		t.Fatalf("data %#v, want AcquireData", env.Data)
	}
	if d.Owner != "" || d.Limit != 3 || d.Holders == nil || *d.Holders != 2 || d.Waiters == nil || *d.Waiters != 1 || d.Holder != "w-1" || d.Mode != lock.Exclusive {
		t.Fatalf("data %+v", d)
	}
	want := []LeaseInfo{{Fence: 8, TTLms: 3000, Holder: "w-0", Mode: "exclusive"}, {Fence: 9, TTLms: 4000, Holder: "w-1", Mode: "exclusive"}}
	if !slices.Equal(d.Leases, want) {
		t.Fatalf("leases %+v, want %+v", d.Leases, want)
	}
	keys, b := keysOf(t, d)
	if strings.Contains(string(b), "secret-owner") || strings.Contains(string(b), `"owner"`) || strings.Contains(string(b), "retry") {
		t.Fatalf("a refusal shows %s", b)
	}
	if w := []string{"fence", "holder", "holders", "id", "leases", "limit", "mode", "state", "ttl_ms", "wait_cut", "waited_ms", "waiters"}; !slices.Equal(keys, w) {
		t.Fatalf("keys %v, want %v", keys, w)
	}
}

// "unsupported" is a 400 whose text names what the mode cannot do.
func TestUnsupportedEnvelope(t *testing.T) {
	err := fmt.Errorf("%w: limit 3 (semaphores)", lock.ErrModeCannot)
	env := Result("pool", lock.Lease{ID: "pool"}, err)
	if env.Code != CodeUnsupported || env.Error != err.Error() || env.Data != (IDData{ID: "pool"}) {
		t.Fatalf("envelope %+v", env)
	}
}

// The counts appear, 0 included, in the answers whose store counted them
// (acquire and inspect), and nowhere else; the other fields of issue 15
// only when they say something; mode and limit only while held.
func TestLeaseDataShape(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lease     lock.Lease
		withOwner bool
		counted   bool
		want      []string
	}{
		{"a free lock, inspected", lock.Lease{ID: "x", Fence: 3}, false, true,
			[]string{"fence", "holders", "id", "state", "ttl_ms", "waiters"}},
		{"a free lock, released", lock.Lease{ID: "x", Fence: 3}, true, false,
			[]string{"fence", "id", "state", "ttl_ms"}},
		{"a heartbeat", lock.Lease{ID: "x", Held: true, Owner: "o", Fence: 3, TTL: time.Second}, true, false,
			[]string{"fence", "id", "owner", "state", "ttl_ms"}},
		// Quorum mode counts nothing: a held lock of no holders was not counted.
		{"a quorum grant", lock.Lease{ID: "x", Held: true, Owner: "o", Fence: 3, TTL: time.Second}, true, true,
			[]string{"fence", "id", "owner", "state", "ttl_ms"}},
		{"a granted shared lease", lock.Lease{ID: "x", Held: true, Owner: "o", Fence: 4, TTL: time.Second,
			Holder: "w", Mode: lock.Shared, Limit: 1, Holders: 3}, true, true,
			[]string{"fence", "holder", "holders", "id", "limit", "mode", "owner", "state", "ttl_ms", "waiters"}},
	} {
		d := leaseData(tc.lease, tc.withOwner, tc.counted)
		if keys, b := keysOf(t, d); !slices.Equal(keys, tc.want) {
			t.Errorf("%s: %s, want keys %v", tc.name, b, tc.want)
		}
		if d.Holders != nil && (*d.Holders != tc.lease.Holders || *d.Waiters != tc.lease.Waiters) {
			t.Errorf("%s: holders %d waiters %d", tc.name, *d.Holders, *d.Waiters)
		}
	}
	// Lock-delay after an expiry: free, refused, with the delay left
	// rounded up so that a caller sleeping that long is not early.
	delayed := leaseData(lock.Lease{ID: "x", Fence: 3, Mode: lock.Exclusive, Limit: 2, DelayLeft: 1500 * time.Microsecond}, false, true)
	if delayed.DelayLeftMs != 2 || delayed.Mode != "" || delayed.Limit != 0 {
		t.Errorf("a delayed free lock: %+v", delayed)
	}
	if d := leaseData(lock.Lease{ID: "x", DelayLeft: time.Nanosecond}, false, true); d.DelayLeftMs != 1 {
		t.Errorf("1ns of delay left shows as %d ms", d.DelayLeftMs)
	}
	if d := leaseData(lock.Lease{ID: "x", DelayLeft: 3 * time.Second}, false, true); d.DelayLeftMs != 3000 {
		t.Errorf("3s of delay left shows as %d ms", d.DelayLeftMs)
	}
}

// Which answers count: acquire's, inspect's (Counted); not release's,
// heartbeat's or revoke's (Result), which the store does not count.
func TestCountedAnswers(t *testing.T) {
	l := lock.Lease{ID: "x", Held: true, Owner: "o", Fence: 3, TTL: time.Second, Holders: 1, Waiters: 2}
	has := func(env Envelope) bool {
		var d LeaseData
		switch v := env.Data.(type) {
		case LeaseData:
			d = v
		case AcquireData:
			d = v.LeaseData
		default:
			t.Fatalf("data %#v", env.Data)
		}
		return d.Holders != nil && d.Waiters != nil && *d.Holders == 1 && *d.Waiters == 2
	}
	if !has((&Request{Op: Acquire}).Envelope("x", l, nil)) || !has((&Request{Op: Acquire}).Envelope("x", l, lock.ErrHeld)) {
		t.Error("an acquire's answer has no counts")
	}
	if !has(Counted("x", l, nil)) {
		t.Error("an inspect's answer has no counts")
	}
	for _, op := range []Op{Release, Heartbeat} {
		if has((&Request{Op: op}).Envelope("x", l, nil)) || has((&Request{Op: op}).Envelope("x", l, lock.ErrNotHeld)) {
			t.Errorf("a %s's answer has counts", op)
		}
	}
	if has(Result("x", l, nil)) {
		t.Error("Result has counts")
	}
}
