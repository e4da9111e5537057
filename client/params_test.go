package client_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/candado-dev/candado/client"
)

// canned is a server whose answers a test writes by hand, as the contract
// spells them, and that records every request.
type canned struct {
	*httptest.Server
	mu     sync.Mutex
	paths  []string
	bodies []string
}

// newCanned answers request n (from 0) with answer(n): status, extra headers
// (name, value pairs) and the JSON body.
func newCanned(t *testing.T, answer func(n int) (status int, header []string, body string)) *canned {
	t.Helper()
	c := &canned{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		n := len(c.paths)
		c.paths = append(c.paths, r.URL.RequestURI())
		c.bodies = append(c.bodies, string(b))
		c.mu.Unlock()
		status, header, body := answer(n)
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *canned) requests() (paths, bodies []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.paths...), append([]string(nil), c.bodies...)
}

func ok(data string) string { return `{"error":"","code":"","success":true,"data":` + data + `}` }

func refusal(code, msg, data string) string {
	return `{"error":"` + msg + `","code":"` + code + `","success":false,"data":` + data + `}`
}

// The new options travel in the acquire's JSON body under the contract's
// names, durations as whole milliseconds (rounded up), and on every try of
// a retried acquire; options left at zero are not sent at all.
func TestAcquireParametersOnTheWire(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f, nil)
	ctx := ctxT(t, 5*time.Second)

	f.set(func(f *fake) { f.unavailable = 1 })
	l, err := c.Acquire(ctx, "pool/gpu", &client.AcquireOptions{
		TTL: 30 * time.Second, Holder: "billing-worker-3 pid 4242", Limit: 3, LockDelay: 1500*time.Millisecond + time.Microsecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"owner":"` + l.Owner() + `","ttl":30000,"holder":"billing-worker-3 pid 4242","limit":3,"lock_delay":1501}`
	if f.count("acquire") != 2 || f.body(0) != want || f.body(1) != want {
		t.Fatalf("%d tries, bodies %q, %q; want %s", f.count("acquire"), f.body(0), f.body(1), want)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// A release sends nothing of the acquire's options.
	if b := f.body(-1); b != `{"owner":"`+l.Owner()+`"}` {
		t.Fatalf("release body %s", b)
	}

	s, err := c.Acquire(ctx, "docs/readme", &client.AcquireOptions{Shared: true, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if b := f.body(-1); b != `{"owner":"`+s.Owner()+`","limit":1,"mode":"shared"}` {
		t.Fatalf("shared acquire body %s", b)
	}
	// An exclusive acquire is the default: no mode is sent.
	e, err := c.Acquire(ctx, "docs/other", &client.AcquireOptions{Shared: false})
	if err != nil {
		t.Fatal(err)
	}
	if b := f.body(-1); b != `{"owner":"`+e.Owner()+`"}` {
		t.Fatalf("exclusive acquire body %s", b)
	}
}

// A wait the server cut short is asked for again with the same parameters.
func TestCutWaitKeepsParameters(t *testing.T) {
	srv := newCanned(t, func(n int) (int, []string, string) {
		if n == 0 {
			return 409, nil, refusal("held", "held", `{"id":"q","state":1,"fence":5,"ttl_ms":900,"holder":"other","mode":"exclusive","limit":2,"holders":2,"waiters":1,"wait_cut":true,"waited_ms":150}`)
		}
		return 200, nil, ok(`{"id":"q","state":1,"owner":"me","fence":6,"ttl_ms":1000,"holder":"me pid 1","mode":"exclusive","limit":2,"holders":2,"waiters":0,"waited_ms":20}`)
	})
	c, err := client.New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.Acquire(ctxT(t, 5*time.Second), "q", &client.AcquireOptions{Owner: "me", TTL: time.Second, Wait: 3 * time.Second, Holder: "me pid 1", Limit: 2, LockDelay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, bodies := srv.requests()
	if len(bodies) != 2 {
		t.Fatalf("%d tries: %q", len(bodies), bodies)
	}
	for i, b := range bodies {
		var p map[string]any
		if err := json.Unmarshal([]byte(b), &p); err != nil {
			t.Fatal(err)
		}
		w, _ := p["wait"].(float64)
		delete(p, "wait")
		want := map[string]any{"owner": "me", "ttl": 1000.0, "holder": "me pid 1", "limit": 2.0, "lock_delay": 1000.0}
		if !reflect.DeepEqual(p, want) || w <= 0 || w > 3000 {
			t.Fatalf("try %d sent %s", i, b)
		}
	}
	if l.Fence() != 6 || l.Holder() != "me pid 1" || l.Limit() != 2 || l.Mode() != client.ModeExclusive {
		t.Fatalf("lease fence %d holder %q limit %d mode %q", l.Fence(), l.Holder(), l.Limit(), l.Mode())
	}
}

// Options the contract refuses are refused before anything is sent.
func TestAcquireParametersCheckedBeforeSending(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f, nil)
	ctx := ctxT(t, 5*time.Second)
	for name, o := range map[string]client.AcquireOptions{
		"holder too long":        {Holder: strings.Repeat("h", client.MaxHolderLen+1)},
		"holder with a newline":  {Holder: "a\nb"},
		"holder with a tab":      {Holder: "a\tb"},
		"holder not ASCII":       {Holder: "año"},
		"holder with DEL":        {Holder: "a\x7f"},
		"negative limit":         {Limit: -1},
		"limit above the max":    {Limit: client.MaxLimit + 1},
		"shared with a limit":    {Shared: true, Limit: 2},
		"negative lock-delay":    {LockDelay: -time.Millisecond},
		"negative ttl (as ever)": {TTL: -time.Second},
	} {
		if _, err := c.Acquire(ctx, "x", &o); !errors.Is(err, client.ErrBadRequest) {
			t.Errorf("%s: %v, want ErrBadRequest", name, err)
		}
	}
	if n := f.count("acquire"); n != 0 {
		t.Fatalf("%d refused acquires reached the server", n)
	}
	// The bounds themselves are fine.
	if _, err := c.Acquire(ctx, "y", &client.AcquireOptions{Holder: strings.Repeat("~", client.MaxHolderLen), Limit: client.MaxLimit}); err != nil {
		t.Fatal(err)
	}
}

// The answer's new fields reach the Lease and Status; a server that says
// nothing of them (one before issue 15) yields an exclusive lease of a mutex.
func TestGrantDecodesHolderModeLimit(t *testing.T) {
	answers := []string{
		ok(`{"id":"r","state":1,"owner":"o1","fence":11,"ttl_ms":30000,"holder":"reader 7","mode":"shared","limit":1,"holders":4,"waiters":2,"waited_ms":0,"wait_cut":false}`),
		ok(`{"id":"m","state":1,"owner":"o2","fence":12,"ttl_ms":30000,"waited_ms":0,"wait_cut":false}`),
	}
	srv := newCanned(t, func(n int) (int, []string, string) { return 200, nil, answers[n] })
	c, err := client.New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 5*time.Second)
	r, err := c.Acquire(ctx, "r", &client.AcquireOptions{Owner: "o1", Shared: true, Holder: "reader 7"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Holder() != "reader 7" || r.Mode() != client.ModeShared || r.Limit() != 1 || r.Fence() != 11 {
		t.Fatalf("shared lease: holder %q mode %q limit %d fence %d", r.Holder(), r.Mode(), r.Limit(), r.Fence())
	}
	m, err := c.Acquire(ctx, "m", &client.AcquireOptions{Owner: "o2"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Holder() != "" || m.Mode() != client.ModeExclusive || m.Limit() != 1 {
		t.Fatalf("lease of an older server: holder %q mode %q limit %d", m.Holder(), m.Mode(), m.Limit())
	}
}

// Inspect of a semaphore shows its limit, holders, queue and every lease.
func TestInspectDecodesLeases(t *testing.T) {
	srv := newCanned(t, func(int) (int, []string, string) {
		return 200, nil, ok(`{"id":"pool","state":1,"fence":103,"ttl_ms":2500,"holder":"w1","mode":"exclusive","limit":3,"holders":2,"waiters":5,` +
			`"leases":[{"fence":101,"ttl_ms":2500,"holder":"w1","mode":"exclusive"},{"fence":103,"ttl_ms":9000,"mode":"exclusive"}]}`)
	})
	c, err := client.New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Inspect(ctxT(t, 5*time.Second), "pool")
	if err != nil {
		t.Fatal(err)
	}
	want := client.Status{ID: "pool", Held: true, Fence: 103, TTL: 2500 * time.Millisecond, Holder: "w1", Mode: client.ModeExclusive,
		Limit: 3, Holders: 2, Waiters: 5, Leases: []client.LeaseInfo{
			{Fence: 101, TTL: 2500 * time.Millisecond, Holder: "w1", Mode: client.ModeExclusive},
			{Fence: 103, TTL: 9 * time.Second, Mode: client.ModeExclusive},
		}}
	if !reflect.DeepEqual(st, want) {
		t.Fatalf("inspect\n got %+v\nwant %+v", st, want)
	}
	if paths, _ := srv.requests(); len(paths) != 1 || paths[0] != "/locks/pool" {
		t.Fatalf("requests %q", paths)
	}
}

// A refusal during a lock-delay is ErrHeld with the delay left; a free lock
// may be under one too (no holders, no lease).
func TestHeldDuringLockDelay(t *testing.T) {
	srv := newCanned(t, func(int) (int, []string, string) {
		return 409, nil, refusal("held", "lock is held by another owner", `{"id":"d","state":0,"fence":40,"ttl_ms":0,"holders":0,"waiters":0,"delay_left_ms":1750,"wait_cut":false,"waited_ms":0}`)
	})
	c, err := client.New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Acquire(ctxT(t, 5*time.Second), "d", nil)
	var ae *client.APIError
	if !errors.Is(err, client.ErrHeld) || !errors.As(err, &ae) || ae.Lock == nil {
		t.Fatalf("got %v", err)
	}
	if ae.Lock.DelayLeft != 1750*time.Millisecond || ae.Lock.Held || ae.Lock.Fence != 40 {
		t.Fatalf("lock %+v", *ae.Lock)
	}
}
