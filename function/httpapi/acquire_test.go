package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"handler/function/function/api"
	"handler/function/function/lock"
)

// echoLocks is a store that grants every acquire and answers with the
// request's own label, mode and limit, so that the tests see what reached
// the lock layer and what the answer shows of it. err, when set, is the
// answer instead, with lease.
type echoLocks struct {
	api.Locks
	got   []lock.AcquireRequest
	err   error
	lease lock.Lease
}

func (e *echoLocks) Acquire(_ context.Context, req lock.AcquireRequest) (lock.Lease, error) {
	e.got = append(e.got, req)
	if e.err != nil {
		return e.lease, e.err
	}
	mode := req.Mode
	if mode == "" {
		mode = lock.Exclusive
	}
	return lock.Lease{ID: req.ID, Held: true, Owner: req.Owner, Fence: 7, TTL: req.TTL,
		Holder: req.Holder, Mode: mode, Limit: max(1, req.Limit), Holders: 1}, nil
}

func (e *echoLocks) Release(_ context.Context, id, owner string) (lock.Lease, error) {
	return lock.Lease{ID: id, Owner: owner, Fence: 7}, nil
}

func (e *echoLocks) Heartbeat(_ context.Context, id, owner string, ttl time.Duration) (lock.Lease, error) {
	return lock.Lease{ID: id, Held: true, Owner: owner, Fence: 7, TTL: ttl, Holders: 1}, nil
}

func (e *echoLocks) Inspect(_ context.Context, id string) (lock.Lease, error) {
	return e.lease, nil
}

var testLimits = api.Limits{DefaultTTL: 30 * time.Second, MaxTTL: time.Hour, MaxWait: time.Minute}

// answer is a decoded answer; data stays raw so that each test sees which
// fields are there.
type answer struct {
	status int
	env    struct {
		Error   string                     `json:"error"`
		Code    string                     `json:"code"`
		Success bool                       `json:"success"`
		Data    map[string]json.RawMessage `json:"data"`
	}
}

func serve(t *testing.T, h http.Handler, method, target, body string) answer {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
	var a answer
	a.status = rec.Code
	if err := json.Unmarshal(rec.Body.Bytes(), &a.env); err != nil {
		t.Fatalf("%s %s: %v: %s", method, target, err, rec.Body)
	}
	if api.StatusOf(a.env.Code) != a.status {
		t.Fatalf("%s %s: status %d with code %q", method, target, a.status, a.env.Code)
	}
	return a
}

// field decodes one data field into v, failing when it is absent.
func (a answer) field(t *testing.T, name string, v any) {
	t.Helper()
	raw, ok := a.env.Data[name]
	if !ok {
		t.Fatalf("data has no %q: %v", name, a.env.Data)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("data.%s = %s: %v", name, raw, err)
	}
}

func (a answer) keys() []string {
	keys := make([]string, 0, len(a.env.Data))
	for k := range a.env.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestAcquireTakesTheNewParameters(t *testing.T) {
	for _, tc := range []struct {
		method, target, body string
		want                 lock.AcquireRequest
	}{
		{"GET", "/acquire/pool?owner=me&holder=worker-3%20pid%2042&limit=3&lock_delay=2s", "",
			lock.AcquireRequest{Holder: "worker-3 pid 42", Limit: 3, LockDelay: 2 * time.Second}},
		{"GET", "/acquire/pool?owner=me&mode=shared", "", lock.AcquireRequest{Mode: lock.Shared}},
		{"POST", "/acquire/pool?owner=me", `{"holder":"w","limit":5,"mode":"exclusive","lock_delay":1500}`,
			lock.AcquireRequest{Holder: "w", Limit: 5, Mode: lock.Exclusive, LockDelay: 1500 * time.Millisecond}},
		// Both places, agreeing by value.
		{"POST", "/acquire/pool?owner=me&limit=04&lock_delay=1s&holder=w", `{"limit":4,"lock_delay":"1000ms","holder":"w"}`,
			lock.AcquireRequest{Holder: "w", Limit: 4, LockDelay: time.Second}},
		{"GET", "/acquire/pool?owner=me&limit=2&limit=2", "", lock.AcquireRequest{Limit: 2}},
	} {
		locks := &echoLocks{}
		h := &Handler{Locks: locks, Limits: testLimits}
		a := serve(t, h, tc.method, tc.target, tc.body)
		if a.status != 200 || len(locks.got) != 1 {
			t.Fatalf("%s %s: %d %+v, store called %d times", tc.method, tc.target, a.status, a.env, len(locks.got))
		}
		got := locks.got[0]
		tc.want.ID, tc.want.Owner, tc.want.TTL = "pool", "me", testLimits.DefaultTTL
		if got != tc.want {
			t.Errorf("%s %s: the store got %+v, want %+v", tc.method, tc.target, got, tc.want)
		}
		var holder, mode string
		var limit, holders int
		waiters := -1
		a.field(t, "mode", &mode)
		a.field(t, "limit", &limit)
		a.field(t, "holders", &holders)
		a.field(t, "waiters", &waiters) // an acquire's answer counts them, 0 included
		if tc.want.Holder != "" {
			a.field(t, "holder", &holder)
		}
		wantMode := tc.want.Mode
		if wantMode == "" {
			wantMode = lock.Exclusive
		}
		if holder != tc.want.Holder || mode != wantMode || limit != max(1, tc.want.Limit) || holders != 1 || waiters != 0 {
			t.Errorf("%s %s: data %v", tc.method, tc.target, a.env.Data)
		}
	}
}

// Bad values, conflicts and parameters where they do not apply are a 400
// that says why, and never reach the store.
func TestAcquireParametersRefused(t *testing.T) {
	for _, tc := range []struct {
		method, target, body, want string
	}{
		{"GET", "/acquire/pool?limit=0", "", "limit must be a whole number 1-1000"},
		{"GET", "/acquire/pool?limit=1001", "", "limit must be a whole number 1-1000"},
		{"GET", "/acquire/pool?limit=2.0", "", "limit must be a whole number"},
		{"GET", "/acquire/pool?limit=2&limit=3", "", "limit is given twice"},
		{"GET", "/acquire/pool?lock_delay=2h", "", "lock_delay 2h0m0s is over the maximum 1h0m0s"},
		{"GET", "/acquire/pool?lock_delay=-5s", "", "lock_delay"},
		{"GET", "/acquire/pool?mode=writer", "", `mode must be "exclusive" or "shared"`},
		{"GET", "/acquire/pool?mode=shared&limit=3", "", "a shared acquire takes no limit"},
		{"GET", "/acquire/pool?holder=" + strings.Repeat("h", 257), "", "holder must be at most 256 bytes"},
		{"GET", "/acquire/pool?holder=a%0Ab", "", "printable ASCII"},
		{"GET", "/acquire/pool?lockdelay=1s", "", `unknown parameter "lockdelay"`},
		{"POST", "/acquire/pool", `{"limit":"3"}`, "limit must be a whole number"},
		{"POST", "/acquire/pool?limit=3", `{"limit":4}`, "limit is given twice"},
		{"POST", "/acquire/pool?mode=shared", `{"mode":"exclusive"}`, "mode is given twice"},
		{"POST", "/acquire/pool?holder=a", `{"holder":"b"}`, "holder is given twice"},
		{"POST", "/acquire/pool?lock_delay=1s", `{"lock_delay":2000}`, "lock_delay is given twice"},
		{"GET", "/release/pool?owner=me&holder=w", "", "holder applies only to acquire"},
		{"POST", "/release/pool", `{"owner":"me","limit":2}`, "limit applies only to acquire"},
		{"GET", "/heartbeat/pool?owner=me&mode=shared", "", "mode applies only to acquire"},
		{"POST", "/heartbeat/pool", `{"owner":"me","lock_delay":"1s"}`, "lock_delay applies only to acquire"},
	} {
		locks := &echoLocks{}
		a := serve(t, &Handler{Locks: locks, Limits: testLimits}, tc.method, tc.target, tc.body)
		if a.status != 400 || a.env.Code != api.CodeBadRequest || !strings.Contains(a.env.Error, tc.want) {
			t.Errorf("%s %s %s: %d %q %q; want 400 bad_request saying %q", tc.method, tc.target, tc.body, a.status, a.env.Code, a.env.Error, tc.want)
		}
		if len(locks.got) != 0 {
			t.Errorf("%s %s: reached the store with %+v", tc.method, tc.target, locks.got)
		}
		var id string
		if a.field(t, "id", &id); id != "pool" {
			t.Errorf("%s %s: data id %q", tc.method, tc.target, id)
		}
	}
}

// A semaphore held with another limit: 409 limit_mismatch, the text, the
// lease as anyone may see it and every live lease, owners never.
func TestLimitMismatchAnswer(t *testing.T) {
	locks := &echoLocks{
		err: fmt.Errorf("%w: held with limit 3", lock.ErrLimitMismatch),
		lease: lock.Lease{ID: "pool", Held: true, Owner: "the-owner", Fence: 9, TTL: 5 * time.Second,
			Holder: "w-2", Mode: lock.Exclusive, Limit: 3, Holders: 2, Waiters: 4,
			Leases: []lock.LeaseInfo{{Fence: 8, TTL: 2 * time.Second, Holder: "w-1", Mode: lock.Exclusive}, {Fence: 9, TTL: 5 * time.Second, Holder: "w-2", Mode: lock.Exclusive}}},
	}
	a := serve(t, &Handler{Locks: locks, Limits: testLimits}, "GET", "/acquire/pool?limit=5", "")
	if a.status != 409 || a.env.Code != api.CodeLimitMismatch || a.env.Error != "lock is held with another limit: held with limit 3" {
		t.Fatalf("%d %q %q", a.status, a.env.Code, a.env.Error)
	}
	if w := []string{"fence", "holder", "holders", "id", "leases", "limit", "mode", "state", "ttl_ms", "wait_cut", "waited_ms", "waiters"}; !slices.Equal(a.keys(), w) {
		t.Errorf("keys %v, want %v", a.keys(), w)
	}
	var leases []map[string]any
	a.field(t, "leases", &leases)
	if len(leases) != 2 || leases[0]["holder"] != "w-1" || leases[0]["fence"] != float64(8) || leases[0]["ttl_ms"] != float64(2000) || leases[1]["mode"] != "exclusive" {
		t.Errorf("leases %v", leases)
	}
	for _, l := range leases {
		if _, ok := l["owner"]; ok {
			t.Errorf("a lease shows its owner: %v", l)
		}
	}
}

// What the backend mode cannot do is a 400 unsupported with its reason.
func TestUnsupportedAnswer(t *testing.T) {
	locks := &echoLocks{err: fmt.Errorf("%w: lock_delay", lock.ErrModeCannot)}
	a := serve(t, &Handler{Locks: locks, Limits: testLimits}, "POST", "/acquire/pool", `{"lock_delay":"1s"}`)
	if a.status != 400 || a.env.Code != api.CodeUnsupported || a.env.Error != "invalid request: not supported in this CANDADO_REDIS_MODE: lock_delay" {
		t.Fatalf("%d %q %q", a.status, a.env.Code, a.env.Error)
	}
	if w := []string{"id"}; !slices.Equal(a.keys(), w) {
		t.Errorf("keys %v, want %v", a.keys(), w)
	}
}

// GET /locks/{id} shows the label, limit, counts and every live lease, and
// no owner.
func TestInspectShowsTheNewFields(t *testing.T) {
	locks := &echoLocks{lease: lock.Lease{ID: "rw", Held: true, Owner: "o", Fence: 12, TTL: time.Second,
		Holder: "reader-1", Mode: lock.Shared, Limit: 1, Holders: 2, Waiters: 1,
		Leases: []lock.LeaseInfo{{Fence: 11, TTL: 900 * time.Millisecond, Holder: "reader-0", Mode: lock.Shared}, {Fence: 12, TTL: time.Second, Holder: "reader-1", Mode: lock.Shared}}}}
	a := serve(t, &Handler{Locks: locks, Limits: testLimits}, "GET", "/locks/rw", "")
	if a.status != 200 {
		t.Fatalf("%d %+v", a.status, a.env)
	}
	if w := []string{"fence", "holder", "holders", "id", "leases", "limit", "mode", "state", "ttl_ms", "waiters"}; !slices.Equal(a.keys(), w) {
		t.Errorf("keys %v, want %v", a.keys(), w)
	}
	var holders, waiters int
	var mode string
	a.field(t, "holders", &holders)
	a.field(t, "waiters", &waiters)
	a.field(t, "mode", &mode)
	if holders != 2 || waiters != 1 || mode != "shared" {
		t.Errorf("data %v", a.env.Data)
	}
	// A free lock: its counts (0 included), no label, mode or limit.
	locks.lease = lock.Lease{ID: "rw", Fence: 12, Waiters: 3}
	a = serve(t, &Handler{Locks: locks, Limits: testLimits}, "GET", "/locks/rw", "")
	if w := []string{"fence", "holders", "id", "state", "ttl_ms", "waiters"}; !slices.Equal(a.keys(), w) {
		t.Errorf("a free lock: keys %v, want %v", a.keys(), w)
	}
}

// Listing rows carry the holder label, mode, limit, lease count and queue
// length, and neither owners nor each lease.
func TestListingRowsCarryHolderAndLimit(t *testing.T) {
	list := func(context.Context, lock.ListRequest) (lock.ListPage, error) {
		return lock.ListPage{Locks: []lock.Lease{
			{ID: "pool", Held: true, Owner: "o1", Fence: 3, TTL: time.Second, Holder: "w-1", Mode: lock.Exclusive, Limit: 3, Holders: 2, Waiters: 5,
				Leases: []lock.LeaseInfo{{Fence: 3, TTL: time.Second, Holder: "w-1", Mode: lock.Exclusive}}},
			{ID: "plain", Held: true, Fence: 4, TTL: 2 * time.Second, Mode: lock.Exclusive, Limit: 1, Holders: 1},
		}}, nil
	}
	rec := httptest.NewRecorder()
	(&Handler{List: list}).ServeHTTP(rec, httptest.NewRequest("GET", "/locks", nil))
	var env struct {
		Data struct {
			Locks []map[string]any `json:"locks"`
		} `json:"data"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || rec.Code != 200 || len(env.Data.Locks) != 2 {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
	}
	want := []map[string]any{
		{"id": "pool", "state": float64(1), "fence": float64(3), "ttl_ms": float64(1000), "holder": "w-1", "mode": "exclusive", "limit": float64(3), "holders": float64(2), "waiters": float64(5)},
		{"id": "plain", "state": float64(1), "fence": float64(4), "ttl_ms": float64(2000), "mode": "exclusive", "limit": float64(1), "holders": float64(1), "waiters": float64(0)},
	}
	for i, row := range env.Data.Locks {
		if fmt.Sprint(row) != fmt.Sprint(want[i]) {
			t.Errorf("row %d: %v, want %v", i, row, want[i])
		}
	}
}

// Release and heartbeat answers carry no counts: the store does not count
// there, and a 0 would say "nobody holds it, nobody waits".
func TestReleaseAndHeartbeatAnswersCountNothing(t *testing.T) {
	h := &Handler{Locks: &echoLocks{}, Limits: testLimits}
	for _, target := range []string{"/release/pool?owner=me", "/heartbeat/pool?owner=me"} {
		a := serve(t, h, "GET", target, "")
		if a.status != 200 {
			t.Fatalf("%s: %d %+v", target, a.status, a.env)
		}
		for _, k := range []string{"holders", "waiters"} {
			if _, ok := a.env.Data[k]; ok {
				t.Errorf("%s: data has %s: %v", target, k, a.keys())
			}
		}
	}
}
