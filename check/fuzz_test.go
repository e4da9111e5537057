package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"handler/function/function/api"
	"handler/function/function/httpapi"
	"handler/function/function/lock"
)

var fuzzLimits = api.Limits{DefaultTTL: 30 * time.Second, MaxTTL: time.Hour, MaxWait: time.Minute}

// checkResolved asserts the rules of Limits.Resolve: an error wraps
// lock.ErrInvalid; an accepted request has a valid id and owner, a TTL in
// [1ms, MaxTTL] (none for release), a wait in [0, MaxWait], and holder,
// limit, mode and lock_delay (acquire only) that the lock layer accepts.
func checkResolved(t *testing.T, op api.Op, req api.Request, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, lock.ErrInvalid) {
			t.Fatalf("%s: error does not wrap ErrInvalid: %v", op, err)
		}
		return
	}
	if lock.ValidateID(req.ID) != nil || lock.ValidateOwner(req.Owner) != nil {
		t.Fatalf("%s: accepted id %q owner %q", op, req.ID, req.Owner)
	}
	if op == api.Release {
		if req.TTL != 0 || req.Wait != 0 {
			t.Fatalf("release with ttl %s wait %s", req.TTL, req.Wait)
		}
	} else if req.TTL < time.Millisecond || req.TTL > fuzzLimits.MaxTTL {
		t.Fatalf("%s: accepted ttl %s", op, req.TTL)
	}
	if req.Wait < 0 || req.Wait > fuzzLimits.MaxWait || (op != api.Acquire && req.Wait != 0) {
		t.Fatalf("%s: accepted wait %s", op, req.Wait)
	}
	ar := lock.AcquireRequest{Holder: req.Holder, Limit: req.Limit, Mode: req.Mode, LockDelay: req.LockDelay}
	if op != api.Acquire && ar != (lock.AcquireRequest{}) {
		t.Fatalf("%s: accepted acquire parameters %+v", op, ar)
	}
	if err := lock.ValidateAcquire(ar); err != nil || req.LockDelay > fuzzLimits.MaxTTL {
		t.Fatalf("%s: accepted %+v: %v", op, ar, err)
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30s", "1500ms", "30000", "0", "-1s", "1h1m", "9223372036854775807", "1e3", " 5s", "0.5ms"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := api.ParseDuration(s)
		if err == nil {
			if d < 0 {
				t.Fatalf("%q gave negative %s", s, d)
			}
			if strings.Trim(s, "0123456789") == "" {
				n, _ := strconv.ParseInt(s, 10, 64)
				if d != time.Duration(n)*time.Millisecond {
					t.Fatalf("%q gave %s", s, d)
				}
			}
			// Whole milliseconds read back the same.
			if back, err := api.ParseDuration(strconv.FormatInt(d.Milliseconds(), 10)); err != nil || back != d.Truncate(time.Millisecond) {
				t.Fatalf("%q: %s read back as %s, %v", s, d, back, err)
			}
		}
		for _, op := range []api.Op{api.Acquire, api.Release, api.Heartbeat} {
			req, err := fuzzLimits.Resolve(op, api.Params{ID: "a", Owner: "o", TTL: s})
			checkResolved(t, op, req, err)
			req, err = fuzzLimits.Resolve(op, api.Params{ID: "a", Owner: "o", Wait: s})
			checkResolved(t, op, req, err)
			req, err = fuzzLimits.Resolve(op, api.Params{ID: "a", Owner: "o", LockDelay: s})
			checkResolved(t, op, req, err)
		}
	})
}

func FuzzParseParams(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"owner":"me","ttl":"30s"}`, `{"ttl":1500,"wait":2.5}`, `{"tll":"1s"}`,
		`{"id":"a/b"} {}`, `[1]`, `{"ttl":null}`, `{"wait":"-1s"}`, `{"ttl":1e400}`,
		`{"holder":"w-3 pid 42","limit":3,"mode":"exclusive","lock_delay":"2s"}`, `{"mode":"shared","limit":2}`,
		`{"limit":"3"}`, `{"limit":1.5,"lock_delay":1500}`, `{"holder":"\u00e9","mode":"Shared"}`, `{"lock_delay":"2h"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := api.ParseParams(data)
		if err != nil {
			if !errors.Is(err, lock.ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		dp, derr := api.DecodeParams(bytes.NewReader(data))
		if len(data) > api.MaxBody {
			if !errors.Is(derr, api.ErrTooLarge) {
				t.Fatalf("%d bytes decoded: %v", len(data), derr)
			}
		} else if derr != nil || dp != p {
			t.Fatalf("DecodeParams %+v %v, ParseParams %+v", dp, derr, p)
		}
		// The same parameters in query and body agree. (Merge calls an
		// unparsable duration given twice a conflict even when both are
		// equal; the answer is a 400 either way, so that is allowed here.)
		if m, err := api.Merge(p, p); err != nil {
			_, et := api.ParseDuration(p.TTL)
			_, ew := api.ParseDuration(p.Wait)
			if !errors.Is(err, lock.ErrInvalid) || (p.TTL == "" || et == nil) && (p.Wait == "" || ew == nil) {
				t.Fatalf("Merge(p, p) = %+v, %v", m, err)
			}
		} else if m != p {
			t.Fatalf("Merge(p, p) = %+v", m)
		}
		if m, err := api.Merge(api.Params{}, p); err != nil || m != p {
			t.Fatalf("Merge(none, p) = %+v, %v", m, err)
		}
		if m, err := api.Merge(p, api.Params{}); err != nil || m != p {
			t.Fatalf("Merge(p, none) = %+v, %v", m, err)
		}
		if p.ID == "" {
			p.ID = "x"
		}
		for _, op := range []api.Op{api.Acquire, api.Release, api.Heartbeat} {
			req, err := fuzzLimits.Resolve(op, p)
			checkResolved(t, op, req, err)
		}
	})
}

// fakeLocks is an in-memory api.Locks that fails the test if the handler
// passes it a request the rules forbid. It keeps one lease per id but
// remembers the limit it was taken with, so that a later acquire with
// another limit gets limit_mismatch; ids under q/ play a quorum store,
// which cannot honour a lock_delay.
type fakeLocks struct {
	t     *testing.T
	mu    sync.Mutex
	owner map[string]string
	limit map[string]int
	fence int64
}

func (f *fakeLocks) valid(id, owner string, ttl time.Duration, needTTL bool) {
	if lock.ValidateID(id) != nil || lock.ValidateOwner(owner) != nil || needTTL && (ttl < time.Millisecond || ttl > fuzzLimits.MaxTTL) {
		f.t.Fatalf("handler passed on id %q owner %q ttl %s", id, owner, ttl)
	}
}

func (f *fakeLocks) Acquire(_ context.Context, req lock.AcquireRequest) (lock.Lease, error) {
	f.valid(req.ID, req.Owner, req.TTL, true)
	if req.Wait < 0 || req.Wait > fuzzLimits.MaxWait {
		f.t.Fatalf("handler passed on wait %s", req.Wait)
	}
	if err := lock.ValidateAcquire(req); err != nil || req.LockDelay > fuzzLimits.MaxTTL {
		f.t.Fatalf("handler passed on %+v: %v", req, err)
	}
	if strings.HasPrefix(req.ID, "q/") && req.LockDelay > 0 {
		return lock.Lease{ID: req.ID}, fmt.Errorf("%w: lock_delay", lock.ErrModeCannot)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	limit := max(1, req.Limit)
	held := lock.Lease{ID: req.ID, Held: true, Fence: f.fence, TTL: req.TTL, Mode: lock.Exclusive, Limit: f.limit[req.ID], Holders: 1,
		Leases: []lock.LeaseInfo{{Fence: f.fence, TTL: req.TTL, Mode: lock.Exclusive}}}
	if o, ok := f.owner[req.ID]; ok && o != req.Owner {
		if f.limit[req.ID] != limit {
			return held, lock.ErrLimitMismatch
		}
		return held, lock.ErrHeld
	}
	f.fence++
	f.owner[req.ID], f.limit[req.ID] = req.Owner, limit
	return lock.Lease{ID: req.ID, Held: true, Owner: req.Owner, Fence: f.fence, TTL: req.TTL,
		Holder: req.Holder, Mode: lock.Exclusive, Limit: limit, Holders: 1}, nil
}

func (f *fakeLocks) Release(_ context.Context, id, owner string) (lock.Lease, error) {
	f.valid(id, owner, 0, false)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.owner[id] != owner {
		return lock.Lease{ID: id}, lock.ErrNotHeld
	}
	delete(f.owner, id)
	return lock.Lease{ID: id, Owner: owner, Fence: f.fence}, nil
}

func (f *fakeLocks) Heartbeat(_ context.Context, id, owner string, ttl time.Duration) (lock.Lease, error) {
	f.valid(id, owner, ttl, true)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.owner[id] != owner {
		return lock.Lease{ID: id}, lock.ErrNotHeld
	}
	return lock.Lease{ID: id, Held: true, Owner: owner, Fence: f.fence, TTL: ttl}, nil
}

func (f *fakeLocks) Inspect(_ context.Context, id string) (lock.Lease, error) {
	if lock.ValidateID(id) != nil {
		f.t.Fatalf("inspect of %q", id)
	}
	return lock.Lease{ID: id}, nil
}

func (f *fakeLocks) List(_ context.Context, req lock.ListRequest) (lock.ListPage, error) {
	if _, err := lock.ValidateList(req); err != nil {
		f.t.Fatalf("handler passed on list %+v: %v", req, err)
	}
	return lock.ListPage{}, nil
}

func (f *fakeLocks) Revoke(_ context.Context, id string) (lock.Lease, error) {
	if lock.ValidateID(id) != nil {
		f.t.Fatalf("revoke of %q", id)
	}
	return lock.Lease{ID: id}, lock.ErrNotHeld
}

var fuzzMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead, "PATCH"}

// FuzzQueryString drives httpapi.Handler with arbitrary methods, paths,
// query strings and bodies: every answer is a JSON envelope with a 2xx or
// 4xx status that agrees with its code.
func FuzzQueryString(f *testing.F) {
	f.Add(uint8(1), "/acquire/orders/42", "owner=me&ttl=30s", []byte(``))
	f.Add(uint8(0), "/acquire/a", "ttl=1500&wait=10", []byte(``))
	f.Add(uint8(1), "/release/a", "owner=me", []byte(`{"owner":"me"}`))
	f.Add(uint8(1), "/heartbeat/a", "owner=me", []byte(`{"owner":"other","ttl":5}`))
	f.Add(uint8(0), "/acquire/a/../b", "", []byte(``))
	f.Add(uint8(2), "/acquire/a", "", []byte(``))
	f.Add(uint8(0), "/locks/a", "", []byte(``))
	f.Add(uint8(0), "/healthz", "", []byte(``))
	f.Add(uint8(0), "/locks", "", []byte(``))
	f.Add(uint8(0), "/locks", "prefix=a/&limit=5&cursor=", []byte(``))
	f.Add(uint8(1), "/locks/a/revoke", "", []byte(``))
	f.Add(uint8(0), "/acquire/a", "owner=a&owner=b", []byte(``))
	f.Add(uint8(0), "/acquire/a", "%zz", []byte(``))
	f.Add(uint8(1), "/acquire/a", "ttl=2h", []byte(`{"ttl":"2h"`))
	f.Add(uint8(0), "/acquire/pool", "holder=w-3&limit=3&lock_delay=2s", []byte(``))
	f.Add(uint8(1), "/acquire/pool", "limit=3", []byte(`{"holder":"w","limit":3,"mode":"exclusive","lock_delay":1500}`))
	f.Add(uint8(1), "/acquire/pool", "limit=2", []byte(`{"limit":3}`))
	f.Add(uint8(0), "/acquire/rw", "mode=shared&limit=2", []byte(``))
	f.Add(uint8(0), "/acquire/q/a", "lock_delay=1s", []byte(``))
	f.Add(uint8(0), "/acquire/a", "limit=0&lock_delay=2h&holder=%0A", []byte(``))
	f.Add(uint8(1), "/heartbeat/a", "owner=me&limit=2", []byte(`{"holder":"w"}`))
	f.Fuzz(func(t *testing.T, m uint8, path, query string, body []byte) {
		// pool is held by another owner as a semaphore of 2, so that
		// acquires of it answer held or limit_mismatch.
		locks := &fakeLocks{t: t, owner: map[string]string{"pool": "other"}, limit: map[string]int{"pool": 2}, fence: 1}
		h := &httpapi.Handler{Locks: locks, Limits: fuzzLimits, List: locks.List, Revoke: locks.Revoke,
			Ready: func(context.Context) error { return nil }}
		method := fuzzMethods[int(m)%len(fuzzMethods)]
		r := &http.Request{Method: method, URL: &url.URL{Path: path, RawQuery: query}, Header: http.Header{},
			Body: io.NopCloser(bytes.NewReader(body)), Host: "candado", RequestURI: "/"}
		r = r.WithContext(context.Background())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		res := w.Result()
		if res.StatusCode < 200 || res.StatusCode >= 500 || (res.StatusCode >= 300 && res.StatusCode < 400) {
			t.Fatalf("%s %s?%s: status %d", method, path, query, res.StatusCode)
		}
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s?%s: content type %q", method, path, query, ct)
		}
		var env api.Envelope
		dec := json.NewDecoder(w.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&env); err != nil {
			t.Fatalf("%s %s?%s: not an envelope: %v", method, path, query, err)
		}
		if env.Success != (res.StatusCode == http.StatusOK) || api.StatusOf(env.Code) != res.StatusCode {
			t.Fatalf("%s %s?%s: status %d with success %v code %q", method, path, query, res.StatusCode, env.Success, env.Code)
		}
		if res.StatusCode == http.StatusMethodNotAllowed && res.Header.Get("Allow") == "" {
			t.Fatalf("405 without Allow")
		}
	})
}
