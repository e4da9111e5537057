package client_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fake is a minimal in-memory Candado following API.md: owner checks,
// strictly increasing fences, 409 held / not_held, and injected failures.
type fake struct {
	*httptest.Server

	mu          sync.Mutex
	locks       map[string]*fakeLock
	fences      map[string]int64
	token       string         // required bearer token, if set
	unavailable int            // answer the next n lock calls 503 before doing anything
	retryAfter  string         // Retry-After header on those 503s
	drop        int            // do the next n lock calls, then drop the connection unanswered
	refuseHB    bool           // answer heartbeats not_held
	calls       map[string]int // per route
	owners      []string       // owner of every acquire that reached the logic
	paths       []string       // raw request paths
	bodies      []string       // raw request bodies
}

type fakeLock struct {
	owner  string
	fence  int64
	expiry time.Time
}

func newFake(t testing.TB) *fake {
	f := startFake()
	t.Cleanup(f.Close)
	return f
}

// startFake starts a fake Candado; Close it when done.
func startFake() *fake {
	f := &fake{locks: map[string]*fakeLock{}, fences: map[string]int64{}, calls: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

func (f *fake) set(fn func(f *fake)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fake) count(route string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[route]
}

// path returns the raw path of request i; body its body.
func (f *fake) path(i int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.paths[i]
}

func (f *fake) body(i int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i < 0 {
		i += len(f.bodies)
	}
	return f.bodies[i]
}

type fakeData struct {
	ID    string `json:"id"`
	State int    `json:"state"`
	Owner string `json:"owner,omitempty"`
	Fence int64  `json:"fence"`
	TTLms int64  `json:"ttl_ms"`
}

func reply(w http.ResponseWriter, status int, code, msg string, d *fakeData) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": msg, "code": code, "success": status == 200, "data": d})
}

// live returns the unexpired lease of id. f.mu is held.
func (f *fake) live(id string) *fakeLock {
	l := f.locks[id]
	if l != nil && !time.Now().Before(l.expiry) {
		delete(f.locks, id)
		return nil
	}
	return l
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	route, rawID, _ := strings.Cut(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	id, _ := url.PathUnescape(rawID)
	var p struct {
		Owner string `json:"owner"`
		TTL   int64  `json:"ttl"`
		Wait  int64  `json:"wait"`
	}
	if len(body) > 0 && json.Unmarshal(body, &p) != nil {
		reply(w, 400, "bad_request", "bad body", &fakeData{ID: id})
		return
	}

	f.mu.Lock()
	f.calls[route]++
	f.paths = append(f.paths, r.URL.EscapedPath())
	f.bodies = append(f.bodies, string(body))
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		f.mu.Unlock()
		reply(w, 401, "unauthorized", "bad token", nil)
		return
	}
	if f.unavailable > 0 {
		f.unavailable--
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		f.mu.Unlock()
		reply(w, 503, "unavailable", "backend down", &fakeData{ID: id})
		return
	}
	drop := f.drop > 0
	if drop {
		f.drop--
	}
	ttl := time.Duration(p.TTL) * time.Millisecond
	if p.TTL == 0 {
		ttl = 30 * time.Second
	}
	if ttl > time.Hour {
		f.mu.Unlock()
		reply(w, 400, "bad_request", "ttl above max", &fakeData{ID: id})
		return
	}
	status, code, d := 200, "", &fakeData{ID: id}
	switch route {
	case "acquire":
		if p.Owner == "" {
			var b [16]byte
			_, _ = rand.Read(b[:])
			p.Owner = hex.EncodeToString(b[:])
		}
		f.owners = append(f.owners, p.Owner)
		deadline := time.Now().Add(time.Duration(p.Wait) * time.Millisecond)
		for {
			l := f.live(id)
			if l == nil {
				f.fences[id]++
				l = &fakeLock{owner: p.Owner, fence: f.fences[id]}
				f.locks[id] = l
			}
			if l.owner == p.Owner {
				l.expiry = time.Now().Add(ttl)
				*d = fakeData{ID: id, State: 1, Owner: p.Owner, Fence: l.fence, TTLms: ttl.Milliseconds()}
				break
			}
			if time.Now().After(deadline) {
				status, code = 409, "held"
				*d = fakeData{ID: id, State: 1, Fence: l.fence, TTLms: time.Until(l.expiry).Milliseconds()}
				break
			}
			f.mu.Unlock() // a real server is woken by the release; polling will do here
			time.Sleep(2 * time.Millisecond)
			f.mu.Lock()
		}
	case "release", "heartbeat":
		l := f.live(id)
		if p.Owner == "" {
			status, code = 400, "bad_request"
		} else if l == nil || l.owner != p.Owner || (route == "heartbeat" && f.refuseHB) {
			status, code = 409, "not_held"
		} else if route == "release" {
			delete(f.locks, id)
			*d = fakeData{ID: id, Owner: p.Owner, Fence: l.fence}
		} else {
			l.expiry = time.Now().Add(ttl)
			*d = fakeData{ID: id, State: 1, Owner: p.Owner, Fence: l.fence, TTLms: ttl.Milliseconds()}
		}
	case "locks":
		*d = fakeData{ID: id, Fence: f.fences[id]}
		if l := f.live(id); l != nil {
			d.State, d.TTLms = 1, time.Until(l.expiry).Milliseconds()
		}
	default:
		status, code = 404, "not_found"
	}
	f.mu.Unlock()
	if drop {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	reply(w, status, code, code, d)
}
