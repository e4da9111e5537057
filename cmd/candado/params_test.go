package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// stub is a Candado stand-in for the flags and output of issue 15 that the
// service of this checkout may not know yet: it records each request's path
// and JSON body and answers what the test scripted per route.
type stub struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []stubReq
	answers map[string]stubAnswer // by route: "acquire", "heartbeat", "release", "locks"
	// old makes it a server from before issue 15: a body field other than
	// id, owner, ttl and wait is a 400 bad_request.
	old bool
}

type stubReq struct {
	route, path string
	body        map[string]any
}

type stubAnswer struct {
	status     int
	header     []string // name, value pairs
	code, data string   // envelope code (empty: success) and data (raw JSON)
}

func newStub(t *testing.T, answers map[string]stubAnswer) *stub {
	t.Helper()
	s := &stub{answers: answers}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Errorf("%s: body %q is not a JSON object: %v", r.URL.Path, raw, err)
			}
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, stubReq{route: route, path: r.URL.RequestURI(), body: body})
		a, ok := s.answers[route]
		if s.old {
			for k := range body {
				if k != "id" && k != "owner" && k != "ttl" && k != "wait" {
					a, ok = stubAnswer{status: 400, code: "bad_request", data: `{"id":"x"}`}, true
				}
			}
		}
		s.mu.Unlock()
		if !ok {
			a = stubAnswer{status: 404, code: "not_found", data: "null"}
		}
		if a.status == 0 {
			a.status = 200
		}
		for i := 0; i+1 < len(a.header); i += 2 {
			w.Header().Set(a.header[i], a.header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		msg := ""
		if a.code != "" {
			msg = a.code + " (from the stub)"
		}
		env, _ := json.Marshal(map[string]any{"error": msg, "code": a.code, "success": a.code == "", "data": json.RawMessage(a.data)})
		_, _ = w.Write(env)
	}))
	t.Cleanup(s.Close)
	return s
}

// requests returns the requests of one route ("" for all).
func (s *stub) requests(route string) []stubReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []stubReq
	for _, r := range s.reqs {
		if route == "" || r.route == route {
			out = append(out, r)
		}
	}
	return out
}

// granted is an acquire's answer for a stub: a held lease with the given
// extra fields of the data.
func granted(extra string) stubAnswer {
	return stubAnswer{data: `{"id":"x","state":1,"owner":"o-1","fence":42,"ttl_ms":30000,"waited_ms":0,"wait_cut":false` + extra + `}`}
}

var lockRoutes = map[string]stubAnswer{
	"acquire":   granted(`,"mode":"exclusive","limit":1,"holders":1`),
	"heartbeat": {data: `{"id":"x","state":1,"owner":"o-1","fence":42,"ttl_ms":30000}`},
	"release":   {data: `{"id":"x","state":0,"owner":"o-1","fence":42,"ttl_ms":0}`},
}

// The acquire flags travel under the contract's names, durations in whole
// milliseconds; what is not given is not sent; the answer's new fields are
// printed.
func TestCLIAcquireFlagsOnTheWire(t *testing.T) {
	s := newStub(t, map[string]stubAnswer{"acquire": granted(`,"holder":"ci job 7","mode":"exclusive","limit":3,"holders":2`)})
	env := cliEnv(s.URL)
	a := runCLI(t, env, "acquire", "--holder", "ci job 7", "--limit", "3", "--lock-delay", "2s", "--ttl", "10s", "--owner", "me", "pool/gpu").
		wantCode(t, 0, "acquire with the new flags").json(t)
	if a.Holder != "ci job 7" || a.Mode != "exclusive" || a.Limit != 3 || a.Fence != 42 || a.Holders != 0 {
		// holders is the lock's, not the lease's: acquire prints the lease.
		t.Fatalf("acquire printed %+v", a)
	}
	want := map[string]any{"owner": "me", "ttl": 10000.0, "holder": "ci job 7", "limit": 3.0, "lock_delay": 2000.0}
	if got := s.requests("acquire"); len(got) != 1 || got[0].path != "/acquire/pool/gpu" || !reflect.DeepEqual(got[0].body, want) {
		t.Fatalf("requests %+v, want one with body %v", got, want)
	}

	runCLI(t, env, "acquire", "--shared", "--owner", "me", "docs").wantCode(t, 0, "acquire --shared")
	runCLI(t, env, "acquire", "--owner", "me", "plain").wantCode(t, 0, "acquire without the new flags")
	got := s.requests("acquire")
	if want := map[string]any{"owner": "me", "mode": "shared"}; !reflect.DeepEqual(got[1].body, want) {
		t.Fatalf("--shared sent %v, want %v", got[1].body, want)
	}
	// acquire has no default label: its process ends at once.
	if want := map[string]any{"owner": "me"}; !reflect.DeepEqual(got[2].body, want) {
		t.Fatalf("plain acquire sent %v, want %v", got[2].body, want)
	}
}

// candado lock labels its lease "HOSTNAME pid PID" of the candado process
// (the command's parent) unless --holder says otherwise; --holder= sends none.
func TestCLILockHolder(t *testing.T) {
	s := newStub(t, lockRoutes)
	env := cliEnv(s.URL)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, env, "lock", "x", "--", "sh", "-c", `echo "$PPID"`).wantCode(t, 0, "lock with the default holder")
	pid, err := strconv.Atoi(strings.TrimSpace(r.stdout))
	if err != nil {
		t.Fatalf("command printed %q", r.stdout)
	}
	got := s.requests("acquire")
	want := host + " pid " + strconv.Itoa(pid)
	if !printable(host) || len(want) > 256 {
		want = processHolder(func() (string, error) { return host, nil }, pid)
	}
	if len(got) != 1 || got[0].body["holder"] != want {
		t.Fatalf("acquires %+v, want one with holder %q", got, want)
	}

	for _, tc := range []struct {
		args []string
		want map[string]any // the body without its owner
	}{
		{[]string{"--holder", "leader-candidate eu-1"}, map[string]any{"holder": "leader-candidate eu-1"}},
		{[]string{"--holder="}, map[string]any{}},
		{[]string{"--holder", "", "--limit", "4", "--lock-delay", "1500ms", "--shared=false", "--ttl", "9s"},
			map[string]any{"limit": 4.0, "lock_delay": 1500.0, "ttl": 9000.0}},
		{[]string{"--shared", "--holder", "reader"}, map[string]any{"holder": "reader", "mode": "shared"}},
	} {
		args := append(append([]string{"lock"}, tc.args...), "x", "--", "true")
		runCLI(t, env, args...).wantCode(t, 0, strings.Join(args, " "))
		got := s.requests("acquire")
		body := got[len(got)-1].body
		if _, ok := body["owner"].(string); !ok {
			t.Fatalf("%q: no owner in %v", tc.args, body)
		}
		delete(body, "owner")
		if !reflect.DeepEqual(body, tc.want) {
			t.Fatalf("%q sent %v, want %v (and an owner)", tc.args, body, tc.want)
		}
	}
}

// Against a server from before holder labels, candado lock drops its own
// default label rather than fail; a label the user gave, or another flag the
// server does not know, is a usage error as any bad request.
func TestCLILockOnServerWithoutLabels(t *testing.T) {
	s := newStub(t, lockRoutes)
	s.mu.Lock()
	s.old = true
	s.mu.Unlock()
	env := cliEnv(s.URL)
	runCLI(t, env, "lock", "x", "--", "true").wantCode(t, 0, "lock with the default label on an old server")
	got := s.requests("acquire")
	if len(got) != 2 || got[0].body["holder"] == nil || got[1].body["holder"] != nil || got[0].body["owner"] == got[1].body["owner"] {
		t.Fatalf("acquires %+v: want one with the label, then one without", got)
	}
	if n := len(s.requests("release")); n != 1 {
		t.Fatalf("%d releases", n)
	}
	for _, args := range [][]string{{"--holder", "mine"}, {"--limit", "3"}, {"--ttl", "5s", "--lock-delay", "1s"}} {
		before := len(s.requests("acquire"))
		r := runCLI(t, env, append(append([]string{"lock"}, args...), "x", "--", "true")...).wantCode(t, exitUsage, strings.Join(args, " "))
		if !strings.Contains(r.stderr, "bad_request") {
			t.Fatalf("%q: stderr %s", args, r.stderr)
		}
		// --limit and --lock-delay: the label is dropped, the flag is not.
		if n := len(s.requests("acquire")) - before; n > 2 || (args[0] == "--holder" && n != 1) {
			t.Fatalf("%q: %d acquires", args, n)
		}
	}
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// The default label fits the contract whatever the host's name.
func TestProcessHolder(t *testing.T) {
	for _, tc := range []struct {
		host string
		err  error
		want string
	}{
		{"billing-worker-3", nil, "billing-worker-3 pid 4242"},
		{"", nil, "pid 4242"},
		{"x", errors.New("no hostname"), "pid 4242"},
		{"caf\xc3\xa9\tbar", nil, "caf???bar pid 4242"},
		{strings.Repeat("h", 300), nil, strings.Repeat("h", 256-len(" pid 4242")) + " pid 4242"},
	} {
		got := processHolder(func() (string, error) { return tc.host, tc.err }, 4242)
		if got != tc.want {
			t.Errorf("host %q: %q, want %q", tc.host, got, tc.want)
		}
		if len(got) > 256 || !printable(got) {
			t.Errorf("host %q: %q breaks the contract", tc.host, got)
		}
	}
}

// Flags the contract refuses are usage errors before any request.
func TestCLIAcquireFlagsChecked(t *testing.T) {
	s := newStub(t, lockRoutes)
	env := cliEnv(s.URL)
	for _, args := range [][]string{
		{"acquire", "--limit", "-1", "x"},
		{"acquire", "--limit", "1001", "x"},
		{"acquire", "--shared", "--limit", "2", "x"},
		{"acquire", "--lock-delay", "-5ms", "x"},
		{"acquire", "--holder", "tab\there", "x"},
		{"acquire", "--holder", strings.Repeat("h", 257), "x"},
		{"lock", "--holder", "caf\xc3\xa9", "x", "--", "true"},
		{"lock", "--limit", "2", "--shared", "x", "--", "true"},
	} {
		r := runCLI(t, env, args...).wantCode(t, exitUsage, strings.Join(args, " "))
		if r.stderr == "" {
			t.Errorf("%q: no reason on stderr", args)
		}
	}
	if n := len(s.requests("")); n != 0 {
		t.Fatalf("%d requests reached the server", n)
	}
}

// status prints the holder, the limit, the holders, the queue and every
// lease; status --prefix each row's holder, limit and holders.
func TestCLIStatusShowsHoldersAndLeases(t *testing.T) {
	const inspect = `{"id":"pool","state":1,"fence":103,"ttl_ms":2500,"holder":"w1","mode":"exclusive","limit":3,"holders":2,"waiters":1,` +
		`"leases":[{"fence":101,"ttl_ms":2500,"holder":"w1","mode":"exclusive"},{"fence":103,"ttl_ms":9000,"holder":"","mode":"exclusive"}]}`
	s := newStub(t, map[string]stubAnswer{"locks": {data: inspect}})
	env := cliEnv(s.URL)
	r := runCLI(t, env, "status", "pool").wantCode(t, 0, "status of a semaphore")
	const want = `{"id":"pool","state":1,"fence":103,"ttl_ms":2500,"holder":"w1","mode":"exclusive","limit":3,"holders":2,"waiters":1,` +
		`"leases":[{"fence":101,"ttl_ms":2500,"holder":"w1","mode":"exclusive"},{"fence":103,"ttl_ms":9000,"mode":"exclusive"}]}` + "\n"
	if r.stdout != want {
		t.Fatalf("status printed\n%s\nwant\n%s", r.stdout, want)
	}
	st := r.json(t)
	if len(st.Leases) != 2 || st.Leases[1].Fence != 103 {
		t.Fatalf("leases %+v", st.Leases)
	}

	// A free lock under a lock-delay prints the delay; a plain one prints as before.
	s2 := newStub(t, map[string]stubAnswer{"locks": {data: `{"id":"d","state":0,"fence":7,"ttl_ms":0,"holders":0,"waiters":0,"delay_left_ms":1200}`}})
	if r := runCLI(t, cliEnv(s2.URL), "status", "d").wantCode(t, 0, "status during a lock-delay"); r.stdout != `{"id":"d","state":0,"fence":7,"ttl_ms":0,"delay_left_ms":1200}`+"\n" {
		t.Fatalf("status printed %s", r.stdout)
	}

	s3 := newStub(t, map[string]stubAnswer{"locks": {data: `{"locks":[` +
		`{"id":"jobs/a","state":1,"fence":5,"ttl_ms":1000,"holder":"leader eu-1","mode":"exclusive","limit":1,"holders":1},` +
		`{"id":"jobs/b","state":1,"fence":6,"ttl_ms":2000,"mode":"shared","limit":1,"holders":7}],"cursor":""}`}})
	r = runCLI(t, cliEnv(s3.URL), "status", "--prefix", "jobs/").wantCode(t, 0, "status --prefix")
	const wantRows = `{"id":"jobs/a","state":1,"fence":5,"ttl_ms":1000,"holder":"leader eu-1","mode":"exclusive","limit":1,"holders":1}` + "\n" +
		`{"id":"jobs/b","state":1,"fence":6,"ttl_ms":2000,"mode":"shared","limit":1,"holders":7}` + "\n"
	if r.stdout != wantRows {
		t.Fatalf("status --prefix printed\n%s\nwant\n%s", r.stdout, wantRows)
	}
}

// The refusals of issue 15 and of access control have exit codes of their own.
func TestCLINewRefusalExitCodes(t *testing.T) {
	mismatch := stubAnswer{status: 409, code: "limit_mismatch",
		data: `{"id":"pool","state":1,"fence":9,"ttl_ms":4000,"mode":"exclusive","limit":5,"holders":1,"waiters":0,"leases":[{"fence":9,"ttl_ms":4000,"holder":"w9","mode":"exclusive"}]}`}
	for _, tc := range []struct {
		name   string
		answer stubAnswer
		code   int
		stdout string // the lock the refusal showed, if any
	}{
		{"limit_mismatch", mismatch, exitLimitMismatch, `"limit":5`},
		{"unsupported", stubAnswer{status: 400, code: "unsupported", data: `{"id":"pool"}`}, exitUsage, ""},
		{"forbidden", stubAnswer{status: 403, code: "forbidden", data: `{"id":"pool"}`}, exitForbidden, ""},
		{"too_many_waiters", stubAnswer{status: 429, code: "too_many_waiters", header: []string{"Retry-After", "1"}, data: `{"id":"pool"}`}, exitUnavailable, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStub(t, map[string]stubAnswer{"acquire": tc.answer})
			env := cliEnv(s.URL)
			r := runCLI(t, env, "acquire", "--limit", "3", "--wait", "1s", "--timeout", "500ms", "pool").wantCode(t, tc.code, "acquire")
			if !strings.Contains(r.stderr, tc.name) {
				t.Errorf("stderr does not say %s: %s", tc.name, r.stderr)
			}
			if tc.stdout != "" && !strings.Contains(r.stdout, tc.stdout) {
				t.Errorf("stdout lacks the lock: %q", r.stdout)
			}
			start := time.Now()
			marker := t.TempDir() + "/ran"
			runCLI(t, env, "lock", "--limit", "3", "--wait", "1s", "--timeout", "500ms", "pool", "--", "touch", marker).wantCode(t, tc.code, "lock")
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the command ran without the lock")
			}
			if tc.code == exitUnavailable && time.Since(start) < time.Second {
				t.Fatalf("gave up on a 429 after %v, before --wait and its Retry-After", time.Since(start))
			}
		})
	}
}
