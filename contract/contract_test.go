//go:build integration

package contract

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/responses"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"handler/function/function"
	"handler/function/function/redistest"
)

// token is the bearer token the server under test requires.
const token = "contract-test-token"

// scopedToken is a token of the tokens file that may only acquire and read
// locks under c-scoped/, and wait for one at a time, so that 403s and 429s
// can be exercised.
const scopedToken = "contract-scoped-token"

// server is a real Service on a private redis-server, behind httptest.
type server struct {
	*httptest.Server
	redis *redistest.Server
}

// startServer runs the Service as the binary would, from its environment,
// with a bearer token configured so that 401s can be exercised.
func startServer(t *testing.T) *server {
	t.Helper()
	return startServerWith(t, token, 0)
}

// startServerWith is startServer with bearer token authToken ("" for none)
// and the entry's request deadline.
func startServerWith(t *testing.T, authToken string, deadline time.Duration) *server {
	t.Helper()
	r := redistest.Start(t)
	t.Setenv("CANDADO_REDIS_URL", r.URL())
	t.Setenv("CANDADO_AUTH_TOKEN", authToken)
	t.Setenv("CANDADO_MAX_TTL", "1h")
	t.Setenv("CANDADO_MAX_WAIT", "2s")
	digest := sha256.Sum256([]byte(scopedToken))
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(tokens, []byte(`{"tokens":[{"name":"scoped","sha256":"`+hex.EncodeToString(digest[:])+
		`","prefixes":["c-scoped/"],"verbs":["acquire","read"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CANDADO_TOKENS_FILE", tokens)
	t.Setenv("CANDADO_MAX_WAITERS_PER_IDENTITY", "1")
	t.Setenv("CANDADO_MAX_WATCHERS_PER_IDENTITY", "1")
	cfg, err := function.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Deadline = deadline
	svc, err := function.NewService(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(func() {
		svc.Shutdown()
		srv.Close()
		_ = svc.Close()
	})
	return &server{Server: srv, redis: r}
}

// exchange is one request to the server and what the contract says of its
// answer.
type exchange struct {
	method string
	target string // path and query, as sent
	header map[string]string
	body   string
	noAuth bool // send no Authorization header

	// route is the path template of the description that answers the
	// request; empty when a component response (for undeclared paths and
	// methods) describes the answer instead.
	route     string
	component string // NotFound, MethodNotAllowed, Unauthorized
	// validRequest: the request itself must satisfy the description (the
	// requests meant to be refused need not).
	validRequest bool

	status int
	code   string // the envelope's code; "-" when the answer is no envelope
}

// envelope is the JSON answer of every route but /metrics and /openapi.yaml.
type envelope struct {
	Error   string          `json:"error"`
	Code    string          `json:"code"`
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
}

// leaseData is the lease shape of an envelope's data.
type leaseData struct {
	ID          string      `json:"id"`
	State       int         `json:"state"`
	Owner       *string     `json:"owner"`
	Fence       int64       `json:"fence"`
	TTLms       int64       `json:"ttl_ms"`
	WaitCut     *bool       `json:"wait_cut"`
	Holder      string      `json:"holder"`
	Mode        string      `json:"mode"`
	Limit       int         `json:"limit"`
	Holders     int         `json:"holders"`
	Waiters     int         `json:"waiters"`
	DelayLeftMs int64       `json:"delay_left_ms"`
	Leases      []leaseInfo `json:"leases"`
}

// leaseInfo is one entry of leaseData.Leases.
type leaseInfo struct {
	Fence  int64   `json:"fence"`
	TTLms  int64   `json:"ttl_ms"`
	Holder string  `json:"holder"`
	Mode   string  `json:"mode"`
	Owner  *string `json:"owner"`
}

// answer is what the server sent back.
type answer struct {
	resp *http.Response
	body []byte
	env  envelope
}

func (a answer) lease(t *testing.T) leaseData {
	t.Helper()
	var d leaseData
	if err := json.Unmarshal(a.env.Data, &d); err != nil {
		t.Fatalf("data is not a lease: %v: %s", err, a.body)
	}
	return d
}

// checker sends exchanges, validates them against the description and
// records which (method, route, status) each one covered.
type checker struct {
	srv     *server
	raw     []byte
	model   *v3.Document
	v       validator.Validator
	covered map[string]bool
}

func (c *checker) request(t *testing.T, ex exchange) *http.Request {
	t.Helper()
	req, err := http.NewRequest(ex.method, c.srv.URL+ex.target, strings.NewReader(ex.body))
	if err != nil {
		t.Fatalf("%s %s: %v", ex.method, ex.target, err)
	}
	if ex.body == "" {
		req.Body = http.NoBody
	}
	for k, v := range ex.header {
		req.Header.Set(k, v)
	}
	if ex.body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if !ex.noAuth && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// do sends ex, checks its status and code, and validates the request (when
// it is meant to be valid) and the answer against the description.
func (c *checker) do(t *testing.T, ex exchange) answer {
	t.Helper()
	name := ex.method + " " + ex.target
	resp, err := c.srv.Client().Do(c.request(t, ex))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s: reading the answer: %v", name, err)
	}
	a := answer{resp: resp, body: body}
	if resp.StatusCode != ex.status {
		t.Errorf("%s: status %d, want %d: %s", name, resp.StatusCode, ex.status, body)
	}
	if ex.code != "-" {
		if err := json.Unmarshal(body, &a.env); err != nil {
			t.Errorf("%s: the answer is not a JSON envelope: %v: %q", name, err, body)
		} else if a.env.Code != ex.code {
			t.Errorf("%s: code %q, want %q: %s", name, a.env.Code, ex.code, body)
		}
	}
	switch resp.StatusCode {
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		if got := resp.Header.Get("Retry-After"); got == "" {
			t.Errorf("%s: a %d without Retry-After", name, resp.StatusCode)
		}
	case http.StatusUnauthorized:
		if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="candado"` {
			t.Errorf("%s: WWW-Authenticate %q", name, got)
		}
	}

	// The validator reads the bodies again, and sees the id as a generated
	// client sends it (see specTarget).
	vex := ex
	vex.target = specTarget(ex.route, ex.target)
	vreq := c.request(t, vex)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if ex.validRequest {
		if ok, errs := c.v.ValidateHttpRequestSync(vreq); !ok {
			t.Errorf("%s: the request does not satisfy %s:%s", name, specFile, describe(errs))
		}
		vreq = c.request(t, vex)
	}
	if ex.component != "" {
		c.validateComponent(t, name, ex.component, vreq, resp)
		if ex.component != "Unauthorized" {
			c.covered[statusKey("*", ex.component, resp.StatusCode)] = true
		}
		return a
	}
	if ok, errs := c.v.ValidateHttpResponse(vreq, resp); !ok {
		t.Errorf("%s: the answer (%d %s) does not satisfy %s:%s", name, resp.StatusCode, body, specFile, describe(errs))
	}
	c.covered[statusKey(ex.method, ex.route, resp.StatusCode)] = true
	return a
}

// validateComponent validates an answer against components.responses.name:
// the description of answers to paths and methods it does not declare.
func (c *checker) validateComponent(t *testing.T, name, component string, req *http.Request, resp *http.Response) {
	t.Helper()
	r, ok := c.model.Components.Responses.Get(component)
	if !ok {
		t.Fatalf("%s has no components.responses.%s", specFile, component)
	}
	if ok, errs := responses.ValidateResponseHeaders(req, resp, r.Headers, "", "", config.WithExistingOpts(nil)); !ok {
		t.Errorf("%s: the answer's headers do not satisfy components.responses.%s:%s", name, component, describe(errs))
	}
	mt, ok := r.Content.Get("application/json")
	if !ok {
		t.Fatalf("components.responses.%s has no application/json content", component)
	}
	if ok, errs := responses.ValidateResponseSchema(&responses.ValidateResponseSchemaInput{
		Request: req, Response: resp, Schema: mt.Schema.Schema(), Version: 3.1,
	}); !ok {
		t.Errorf("%s: the answer does not satisfy components.responses.%s:%s", name, component, describe(errs))
	}
}

// TestContract drives a real server through every route and every status
// the description declares, validating each request and answer against
// docs/openapi.yaml, and then checks that nothing declared went unexercised.
func TestContract(t *testing.T) {
	raw, model, v := loadSpec(t)
	c := &checker{srv: startServer(t), raw: raw, model: model, v: v, covered: map[string]bool{}}

	t.Run("acquire", func(t *testing.T) {
		got := c.do(t, exchange{method: "GET", target: "/acquire/c-acq?ttl=30s", route: "/acquire/{id}", validRequest: true, status: 200})
		first := got.lease(t)
		if first.State != 1 || first.Owner == nil || *first.Owner == "" || first.Fence <= 0 || first.TTLms != 30000 {
			t.Errorf("a granted acquire answered %+v", first)
		}
		got = c.do(t, exchange{method: "POST", target: "/acquire/c-acq-post", body: `{"owner":"worker-7","ttl":"30s"}`, route: "/acquire/{id}", validRequest: true, status: 200})
		again := c.do(t, exchange{method: "POST", target: "/acquire/c-acq-post?owner=worker-7", body: `{"ttl":30000,"wait":null}`, route: "/acquire/{id}", validRequest: true, status: 200})
		if a, b := got.lease(t), again.lease(t); a.Fence != b.Fence || *b.Owner != "worker-7" {
			t.Errorf("the holder's re-acquire answered %+v after %+v; want the same fence and owner", b, a)
		}

		held := c.do(t, exchange{method: "GET", target: "/acquire/c-acq?wait=50ms", route: "/acquire/{id}", validRequest: true, status: 409, code: "held"})
		if d := held.lease(t); d.Owner != nil || d.Fence != first.Fence || d.State != 1 {
			t.Errorf("a 409 held answered %+v; want the holder's fence %d and no owner", d, first.Fence)
		}
		c.do(t, exchange{method: "POST", target: "/acquire/c-acq", body: `{"ttl":"1s"}`, route: "/acquire/{id}", validRequest: true, status: 409, code: "held"})

		// A generated client percent-encodes a / in the id: the same lock.
		c.do(t, exchange{method: "GET", target: "/acquire/orders%2F42", route: "/acquire/{id}", validRequest: true, status: 200})
		c.do(t, exchange{method: "GET", target: "/acquire/orders/42", route: "/acquire/{id}", status: 409, code: "held"})

		for _, target := range []string{
			"/acquire/c-bad?tll=30s",       // unknown parameter
			"/acquire/c-bad?ttl=abc",       // not a duration
			"/acquire/c-bad?ttl=2h",        // over CANDADO_MAX_TTL
			"/acquire/c-bad?ttl=0",         // under 1ms
			"/acquire/c-bad?wait=-1s",      // negative
			"/acquire/c-bad?ttl=1s&ttl=2s", // twice, different values
			"/acquire/a//b",                // empty segment
			"/acquire/bad%20id",            // a space
		} {
			c.do(t, exchange{method: "GET", target: target, route: "/acquire/{id}", status: 400, code: "bad_request"})
		}
		for _, body := range []string{`[1]`, `{"tll":"1s"}`, `{"ttl":1.5}`, `{"ttl":"1s"}{}`, `{"id":"other"}`} {
			c.do(t, exchange{method: "POST", target: "/acquire/c-bad", body: body, route: "/acquire/{id}", status: 400, code: "bad_request"})
		}
		c.do(t, exchange{method: "POST", target: "/acquire/c-bad?ttl=2s", body: `{"ttl":"1s"}`, route: "/acquire/{id}", status: 400, code: "bad_request"})

		// Issue 15's parameters, as a client generated from the description
		// sends them. (What the store makes of them, semaphores and shared
		// leases, needs its own exchanges; these check the parameters' rules.)
		c.do(t, exchange{method: "GET", target: "/acquire/c-acq15?holder=worker-3%20pid%2042&limit=1&mode=exclusive&lock_delay=0",
			route: "/acquire/{id}", validRequest: true, status: 200})
		c.do(t, exchange{method: "POST", target: "/acquire/c-acq15-post?limit=1", body: `{"holder":"w","limit":1,"mode":"exclusive","lock_delay":"0s"}`,
			route: "/acquire/{id}", validRequest: true, status: 200})
		c.do(t, exchange{method: "POST", target: "/acquire/c-acq15-null", body: `{"holder":null,"limit":null,"mode":null,"lock_delay":null}`,
			route: "/acquire/{id}", validRequest: true, status: 200})
		for _, target := range []string{
			"/acquire/c-bad?limit=0",                 // under 1
			"/acquire/c-bad?limit=1001",              // over 1000
			"/acquire/c-bad?limit=two",               // not a number
			"/acquire/c-bad?mode=writer",             // no such mode
			"/acquire/c-bad?mode=shared&limit=2",     // a shared acquire takes no limit
			"/acquire/c-bad?lock_delay=2h",           // over CANDADO_MAX_TTL
			"/acquire/c-bad?lock_delay=-1s",          // negative
			"/acquire/c-bad?holder=a%0Ab",            // not printable
			"/acquire/c-bad?limit=2&limit=3",         // twice, different values
			"/release/c-bad?owner=x&holder=w",        // acquire only
			"/heartbeat/c-bad?owner=x&lock_delay=1s", // acquire only
		} {
			route := "/" + strings.SplitN(target, "/", 3)[1] + "/{id}"
			c.do(t, exchange{method: "GET", target: target, route: route, status: 400, code: "bad_request"})
		}
		for _, body := range []string{`{"limit":"3"}`, `{"limit":2.5}`, `{"holder":7}`, `{"lock-delay":"1s"}`} {
			c.do(t, exchange{method: "POST", target: "/acquire/c-bad", body: body, route: "/acquire/{id}", status: 400, code: "bad_request"})
		}
		c.do(t, exchange{method: "POST", target: "/acquire/c-bad?limit=2", body: `{"limit":3}`, route: "/acquire/{id}", status: 400, code: "bad_request"})
		c.do(t, exchange{method: "POST", target: "/acquire/c-big", body: tooLarge(), route: "/acquire/{id}", status: 413, code: "too_large"})
		c.do(t, exchange{method: "GET", target: "/acquire/c-acq", noAuth: true, route: "/acquire/{id}", status: 401, code: "unauthorized"})
		c.do(t, exchange{method: "POST", target: "/acquire/c-acq", noAuth: true, route: "/acquire/{id}", status: 401, code: "unauthorized"})
	})

	t.Run("release", func(t *testing.T) {
		a := c.do(t, exchange{method: "GET", target: "/acquire/c-rel?owner=rel-1", route: "/acquire/{id}", validRequest: true, status: 200}).lease(t)
		c.do(t, exchange{method: "GET", target: "/release/c-rel?owner=someone-else", route: "/release/{id}", validRequest: true, status: 409, code: "not_held"})
		c.do(t, exchange{method: "POST", target: "/release/c-rel", body: `{"owner":"someone-else"}`, route: "/release/{id}", validRequest: true, status: 409, code: "not_held"})
		r := c.do(t, exchange{method: "GET", target: "/release/c-rel?owner=rel-1", route: "/release/{id}", validRequest: true, status: 200}).lease(t)
		if r.State != 0 || r.Fence != a.Fence || r.TTLms != 0 {
			t.Errorf("a release answered %+v; want state 0, ttl_ms 0 and the fence %d", r, a.Fence)
		}
		c.do(t, exchange{method: "GET", target: "/acquire/c-rel2?owner=rel-2", route: "/acquire/{id}", validRequest: true, status: 200})
		c.do(t, exchange{method: "POST", target: "/release/c-rel2", body: `{"owner":"rel-2"}`, route: "/release/{id}", validRequest: true, status: 200})
		c.do(t, exchange{method: "GET", target: "/release/c-never?owner=rel-3", route: "/release/{id}", validRequest: true, status: 409, code: "not_held"})

		c.do(t, exchange{method: "GET", target: "/release/c-rel", route: "/release/{id}", status: 400, code: "bad_request"})
		c.do(t, exchange{method: "GET", target: "/release/c-rel?owner=rel-1&ttl=1s", route: "/release/{id}", status: 400, code: "bad_request"})
		c.do(t, exchange{method: "POST", target: "/release/c-rel", body: `{"owner":"rel-1","wait":"1s"}`, route: "/release/{id}", status: 400, code: "bad_request"})
		c.do(t, exchange{method: "POST", target: "/release/c-rel", body: tooLarge(), route: "/release/{id}", status: 413, code: "too_large"})
		c.do(t, exchange{method: "GET", target: "/release/c-rel?owner=rel-1", noAuth: true, route: "/release/{id}", status: 401, code: "unauthorized"})
		c.do(t, exchange{method: "POST", target: "/release/c-rel", noAuth: true, route: "/release/{id}", status: 401, code: "unauthorized"})
	})

	t.Run("heartbeat", func(t *testing.T) {
		a := c.do(t, exchange{method: "GET", target: "/acquire/c-hb?owner=hb-1&ttl=5s", route: "/acquire/{id}", validRequest: true, status: 200}).lease(t)
		h := c.do(t, exchange{method: "GET", target: "/heartbeat/c-hb?owner=hb-1&ttl=20s", route: "/heartbeat/{id}", validRequest: true, status: 200}).lease(t)
		if h.Fence != a.Fence || h.TTLms != 20000 || h.State != 1 {
			t.Errorf("a heartbeat answered %+v; want the fence %d and ttl_ms 20000", h, a.Fence)
		}
		c.do(t, exchange{method: "POST", target: "/heartbeat/c-hb", body: `{"owner":"hb-1","ttl":10000}`, route: "/heartbeat/{id}", validRequest: true, status: 200})
		c.do(t, exchange{method: "GET", target: "/heartbeat/c-hb?owner=hb-2", route: "/heartbeat/{id}", validRequest: true, status: 409, code: "not_held"})
		c.do(t, exchange{method: "POST", target: "/heartbeat/c-never", body: `{"owner":"hb-1"}`, route: "/heartbeat/{id}", validRequest: true, status: 409, code: "not_held"})

		c.do(t, exchange{method: "GET", target: "/heartbeat/c-hb?owner=hb-1&wait=1s", route: "/heartbeat/{id}", status: 400, code: "bad_request"})
		c.do(t, exchange{method: "POST", target: "/heartbeat/c-hb", body: `{"owner":`, route: "/heartbeat/{id}", status: 400, code: "bad_request"})
		c.do(t, exchange{method: "POST", target: "/heartbeat/c-hb", body: tooLarge(), route: "/heartbeat/{id}", status: 413, code: "too_large"})
		c.do(t, exchange{method: "GET", target: "/heartbeat/c-hb?owner=hb-1", noAuth: true, route: "/heartbeat/{id}", status: 401, code: "unauthorized"})
		c.do(t, exchange{method: "POST", target: "/heartbeat/c-hb", noAuth: true, route: "/heartbeat/{id}", status: 401, code: "unauthorized"})
	})

	t.Run("locks", func(t *testing.T) {
		a := c.do(t, exchange{method: "GET", target: "/acquire/c-look?ttl=30s", route: "/acquire/{id}", validRequest: true, status: 200}).lease(t)
		l := c.do(t, exchange{method: "GET", target: "/locks/c-look", route: "/locks/{id}", validRequest: true, status: 200}).lease(t)
		if l.Owner != nil || l.State != 1 || l.Fence != a.Fence {
			t.Errorf("/locks answered %+v; want state 1, the fence %d and no owner", l, a.Fence)
		}
		free := c.do(t, exchange{method: "GET", target: "/locks/c-free", route: "/locks/{id}", validRequest: true, status: 200}).lease(t)
		if free.State != 0 || free.TTLms != 0 || free.Fence != 0 {
			t.Errorf("/locks of a lock never taken answered %+v", free)
		}
		c.do(t, exchange{method: "GET", target: "/locks/a/../b", route: "/locks/{id}", status: 400, code: "bad_request"})
		c.do(t, exchange{method: "GET", target: "/locks/c-look", noAuth: true, route: "/locks/{id}", status: 401, code: "unauthorized"})
	})

	t.Run("listing", func(t *testing.T) {
		for _, id := range []string{"c-list/a", "c-list/b", "c-list/c"} {
			c.do(t, exchange{method: "GET", target: "/acquire/" + id + "?ttl=30s", route: "/acquire/{id}", validRequest: true, status: 200})
		}
		var ids []string
		for cursor, pages := "", 0; pages < 10; pages++ {
			got := c.do(t, exchange{method: "GET", target: "/locks?prefix=c-list/&limit=2&cursor=" + cursor, route: "/locks", validRequest: true, status: 200})
			var d struct {
				Locks  []leaseData `json:"locks"`
				Cursor string      `json:"cursor"`
			}
			if err := json.Unmarshal(got.env.Data, &d); err != nil {
				t.Fatalf("listing data: %v: %s", err, got.body)
			}
			for _, l := range d.Locks {
				ids = append(ids, l.ID)
			}
			if cursor = d.Cursor; cursor == "" {
				break
			}
		}
		slices.Sort(ids)
		if strings.Join(ids, " ") != "c-list/a c-list/b c-list/c" {
			t.Errorf("the listing of c-list/ gave %v", ids)
		}
		c.do(t, exchange{method: "GET", target: "/locks", route: "/locks", validRequest: true, status: 200})
		c.do(t, exchange{method: "GET", target: "/locks?limit=5000", route: "/locks", status: 400, code: "bad_request"})
		c.do(t, exchange{method: "GET", target: "/locks?cursor=bogus", route: "/locks", validRequest: true, status: 400, code: "bad_request"})
		c.do(t, exchange{method: "GET", target: "/locks?owner=x", route: "/locks", status: 400, code: "bad_request"})
		c.do(t, exchange{method: "GET", target: "/locks", noAuth: true, route: "/locks", status: 401, code: "unauthorized"})
		// Listing needs read on the prefix.
		scoped := map[string]string{"Authorization": "Bearer " + scopedToken}
		c.do(t, exchange{method: "GET", target: "/locks?prefix=c-scoped/", header: scoped, route: "/locks", validRequest: true, status: 200})
		c.do(t, exchange{method: "GET", target: "/locks?prefix=c-list/", header: scoped, route: "/locks", validRequest: true, status: 403, code: "forbidden"})
	})

	t.Run("revoke", func(t *testing.T) {
		a := c.do(t, exchange{method: "GET", target: "/acquire/c-rev/1?owner=rev-1&ttl=30s", route: "/acquire/{id}", validRequest: true, status: 200}).lease(t)
		r := c.do(t, exchange{method: "POST", target: "/locks/c-rev/1/revoke", route: "/locks/{id}/revoke", validRequest: true, status: 200}).lease(t)
		if r.State != 0 || r.Fence != a.Fence || r.Owner != nil {
			t.Errorf("a revoke answered %+v; want state 0, the fence %d and no owner", r, a.Fence)
		}
		c.do(t, exchange{method: "GET", target: "/heartbeat/c-rev/1?owner=rev-1", route: "/heartbeat/{id}", validRequest: true, status: 409, code: "not_held"})
		c.do(t, exchange{method: "POST", target: "/locks/c-rev/1/revoke", route: "/locks/{id}/revoke", validRequest: true, status: 409, code: "not_held"})
		c.do(t, exchange{method: "POST", target: "/locks/a/../b/revoke", route: "/locks/{id}/revoke", status: 400, code: "bad_request"})
		c.do(t, exchange{method: "POST", target: "/locks/c-rev/1/revoke", noAuth: true, route: "/locks/{id}/revoke", status: 401, code: "unauthorized"})
		// Revoke needs admin: the scoped token has only acquire and read.
		scoped := map[string]string{"Authorization": "Bearer " + scopedToken}
		c.do(t, exchange{method: "GET", target: "/acquire/c-scoped/rev?ttl=30s", header: scoped, route: "/acquire/{id}", validRequest: true, status: 200})
		c.do(t, exchange{method: "POST", target: "/locks/c-scoped/rev/revoke", header: scoped, route: "/locks/{id}/revoke", validRequest: true, status: 403, code: "forbidden"})
	})

	t.Run("watch", func(t *testing.T) {
		// A 2 s request deadline ends each stream after 1 s, so that the
		// whole answer can be read and validated.
		w := &checker{srv: startServerWith(t, token, 2*time.Second), raw: c.raw, model: c.model, v: c.v, covered: c.covered}
		got := w.do(t, exchange{method: "GET", target: "/watch/c-w/1", route: "/watch/{id}", validRequest: true, status: 200, code: "-"})
		if ct := got.resp.Header.Get("Content-Type"); ct != "text/event-stream" || !bytes.Contains(got.body, []byte("event: state\n")) {
			t.Errorf("GET /watch/c-w/1: %s %q; want an event stream starting with a state event", ct, got.body)
		}
		last := ""
		for _, line := range strings.Split(string(got.body), "\n") {
			if id, ok := strings.CutPrefix(line, "id: "); ok {
				last = id
			}
		}
		w.do(t, exchange{method: "GET", target: "/watch/c-w/1", header: map[string]string{"Last-Event-ID": last}, route: "/watch/{id}", validRequest: true, status: 200, code: "-"})
		snap := w.do(t, exchange{method: "GET", target: "/watch?prefix=c-w/", route: "/watch", validRequest: true, status: 200, code: "-"})
		if !bytes.Contains(snap.body, []byte("event: snapshot\n")) {
			t.Errorf("GET /watch?prefix=c-w/ answered %q; want a snapshot", snap.body)
		}
		w.do(t, exchange{method: "GET", target: "/watch/a//b", route: "/watch/{id}", status: 400, code: "bad_request"})
		w.do(t, exchange{method: "GET", target: "/watch?prefix=a*", route: "/watch", status: 400, code: "bad_request"})
		w.do(t, exchange{method: "GET", target: "/watch/c-w/1", noAuth: true, route: "/watch/{id}", status: 401, code: "unauthorized"})
		w.do(t, exchange{method: "GET", target: "/watch", noAuth: true, route: "/watch", status: 401, code: "unauthorized"})
		// Watching needs read on the id or the prefix.
		scoped := map[string]string{"Authorization": "Bearer " + scopedToken}
		w.do(t, exchange{method: "GET", target: "/watch/c-w/1", header: scoped, route: "/watch/{id}", validRequest: true, status: 403, code: "forbidden"})
		w.do(t, exchange{method: "GET", target: "/watch?prefix=c-w/", header: scoped, route: "/watch", validRequest: true, status: 403, code: "forbidden"})
		// One open stream per identity (CANDADO_MAX_WATCHERS_PER_IDENTITY=1):
		// a second is a 429 while the first is open.
		// (On the main server, whose streams last long enough.)
		req, _ := http.NewRequest("GET", c.srv.URL+"/watch/c-scoped/1", nil)
		req.Header.Set("Authorization", "Bearer "+scopedToken)
		first, err := c.srv.Client().Do(req)
		if err != nil || first.StatusCode != 200 {
			t.Fatalf("first scoped watch: %v %v", first, err)
		}
		c.do(t, exchange{method: "GET", target: "/watch/c-scoped/1", header: scoped, route: "/watch/{id}", validRequest: true, status: 429, code: "too_many_watchers"})
		c.do(t, exchange{method: "GET", target: "/watch?prefix=c-scoped/", header: scoped, route: "/watch", validRequest: true, status: 429, code: "too_many_watchers"})
		first.Body.Close()
		w.srv.redis.Kill()
		w.do(t, exchange{method: "GET", target: "/watch/c-w/1", route: "/watch/{id}", validRequest: true, status: 503, code: "unavailable"})
		w.do(t, exchange{method: "GET", target: "/watch?prefix=c-w/", route: "/watch", validRequest: true, status: 503, code: "unavailable"})
	})

	t.Run("operations", func(t *testing.T) {
		c.do(t, exchange{method: "GET", target: "/healthz", noAuth: true, route: "/healthz", validRequest: true, status: 200})
		page := c.do(t, exchange{method: "GET", target: "/ui", noAuth: true, route: "/ui", validRequest: true, status: 200, code: "-"})
		if !bytes.Contains(page.body, []byte("<title>Candado")) {
			t.Errorf("GET /ui answered %.200q; want the operations page", page.body)
		}
		c.do(t, exchange{method: "GET", target: "/readyz", noAuth: true, route: "/readyz", validRequest: true, status: 200})
		m := c.do(t, exchange{method: "GET", target: "/metrics", noAuth: true, route: "/metrics", validRequest: true, status: 200, code: "-"})
		if !bytes.Contains(m.body, []byte("candado_http_requests_total")) {
			t.Errorf("/metrics has no candado_http_requests_total: %.300s", m.body)
		}
		spec := c.do(t, exchange{method: "GET", target: "/openapi.yaml", noAuth: true, route: "/openapi.yaml", validRequest: true, status: 200, code: "-"})
		if !bytes.Equal(spec.body, c.raw) {
			t.Errorf("GET /openapi.yaml serves %d bytes that are not %s (%d bytes)", len(spec.body), specFile, len(c.raw))
		}
		if ct := spec.resp.Header.Get("Content-Type"); ct != "application/yaml" && ct != "application/openapi+yaml" {
			t.Errorf("GET /openapi.yaml has Content-Type %q", ct)
		}
	})

	t.Run("cloudevents", func(t *testing.T) {
		binary := map[string]string{
			"Ce-Specversion": "1.0", "Ce-Type": "dev.candado.lock.acquire", "Ce-Source": "/contract",
			"Ce-Id": "ce-1", "Ce-Subject": "c-ce", "Content-Type": "application/json",
		}
		got := c.do(t, exchange{method: "POST", target: "/", header: binary, body: `{"ttl":"30s"}`, route: "/", validRequest: true, status: 200})
		if typ := got.resp.Header.Get("Ce-Type"); typ != "dev.candado.lock.acquired" {
			t.Errorf("a binary acquire was answered with Ce-Type %q", typ)
		}
		structured := map[string]string{"Content-Type": "application/cloudevents+json"}
		ev := `{"specversion":"1.0","type":"dev.candado.lock.acquire","source":"/contract","id":"ce-2",` +
			`"subject":"c-ce","datacontenttype":"application/json","data":{"ttl":"30s"}}`
		rejected := c.do(t, exchange{method: "POST", target: "/", header: structured, body: ev, route: "/", validRequest: true, status: 200, code: "-"})
		if !bytes.Contains(rejected.body, []byte(`"dev.candado.lock.rejected"`)) {
			t.Errorf("a structured acquire of a held lock was answered %s; want a rejected event", rejected.body)
		}
		params15 := map[string]string{}
		for k, v := range binary {
			params15[k] = v
		}
		params15["Ce-Id"], params15["Ce-Subject"] = "ce-15", "c-ce15"
		c.do(t, exchange{method: "POST", target: "/", header: params15, body: `{"holder":"ce-worker","limit":1,"mode":"exclusive","lock_delay":0}`,
			route: "/", validRequest: true, status: 200})
		params15["Ce-Id"] = "ce-15-bad"
		c.do(t, exchange{method: "POST", target: "/", header: params15, body: `{"limit":0}`, route: "/", status: 400, code: "bad_request"})
		batch := map[string]string{"Content-Type": "application/cloudevents-batch+json"}
		c.do(t, exchange{method: "POST", target: "/", header: batch, body: "[" + ev + "," + strings.Replace(ev, "c-ce", "c-ce2", 1) + "]",
			route: "/", validRequest: true, status: 200, code: "-"})

		bad := map[string]string{}
		for k, v := range binary {
			bad[k] = v
		}
		bad["Ce-Type"] = "dev.candado.lock.steal"
		c.do(t, exchange{method: "POST", target: "/", header: bad, body: `{}`, route: "/", status: 400, code: "bad_request"})
		c.do(t, exchange{method: "POST", target: "/", header: batch, body: `{"not":"a batch"}`, route: "/", status: 400, code: "bad_request"})
		c.do(t, exchange{method: "POST", target: "/", header: structured, body: tooLarge(), route: "/", status: 413, code: "too_large"})
		c.do(t, exchange{method: "POST", target: "/", header: binary, body: `{}`, noAuth: true, route: "/", status: 401, code: "unauthorized"})
	})

	t.Run("undeclared", func(t *testing.T) {
		c.do(t, exchange{method: "GET", target: "/nope", component: "NotFound", status: 404, code: "not_found"})
		c.do(t, exchange{method: "GET", target: "/acquire", component: "NotFound", status: 404, code: "not_found"})
		c.do(t, exchange{method: "POST", target: "/", body: `{}`, component: "NotFound", status: 404, code: "not_found"})
		// The token is checked before routing.
		c.do(t, exchange{method: "GET", target: "/nope", noAuth: true, component: "Unauthorized", status: 401, code: "unauthorized"})

		for _, m := range []struct{ method, target, allow string }{
			{"DELETE", "/acquire/c-m", "GET, POST"},
			{"PUT", "/release/c-m", "GET, POST"},
			{"PATCH", "/heartbeat/c-m", "GET, POST"},
			{"POST", "/locks/c-m", "GET"},
			{"DELETE", "/locks", "GET"},
			{"POST", "/watch/c-m", "GET"},
			{"DELETE", "/healthz", "GET"},
			{"POST", "/readyz", "GET"},
			{"PUT", "/openapi.yaml", "GET"},
		} {
			got := c.do(t, exchange{method: m.method, target: m.target, component: "MethodNotAllowed", status: 405, code: "method_not_allowed"})
			if allow := got.resp.Header.Get("Allow"); allow != m.allow {
				t.Errorf("%s %s: Allow %q, want %q", m.method, m.target, allow, m.allow)
			}
		}
		got := c.do(t, exchange{method: "GET", target: "/", header: map[string]string{"Ce-Specversion": "1.0"},
			component: "MethodNotAllowed", status: 405, code: "method_not_allowed"})
		if allow := got.resp.Header.Get("Allow"); allow != "POST" {
			t.Errorf("GET / as a CloudEvent: Allow %q, want POST", allow)
		}
	})

	t.Run("access", func(t *testing.T) {
		scoped := map[string]string{"Authorization": "Bearer " + scopedToken}
		with := func(h map[string]string) map[string]string {
			m := map[string]string{"Authorization": "Bearer " + scopedToken}
			for k, v := range h {
				m[k] = v
			}
			return m
		}
		// Outside its prefixes, or without the verb: 403.
		for _, ex := range []exchange{
			{method: "GET", target: "/acquire/c-other", route: "/acquire/{id}"},
			{method: "POST", target: "/acquire/c-other", body: `{"ttl":"1s"}`, route: "/acquire/{id}"},
			{method: "GET", target: "/release/c-scoped/x?owner=x", route: "/release/{id}"},
			{method: "POST", target: "/release/c-scoped/x", body: `{"owner":"x"}`, route: "/release/{id}"},
			{method: "GET", target: "/heartbeat/c-scoped/x?owner=x", route: "/heartbeat/{id}"},
			{method: "POST", target: "/heartbeat/c-scoped/x", body: `{"owner":"x"}`, route: "/heartbeat/{id}"},
			{method: "GET", target: "/locks/c-other", route: "/locks/{id}"},
			{method: "POST", target: "/", body: `{}`, route: "/", header: with(map[string]string{
				"Ce-Specversion": "1.0", "Ce-Type": "dev.candado.lock.acquire", "Ce-Source": "/contract",
				"Ce-Id": "ce-403", "Ce-Subject": "c-other", "Content-Type": "application/json"})},
		} {
			if ex.header == nil {
				ex.header = scoped
			}
			ex.validRequest, ex.status, ex.code = true, 403, "forbidden"
			c.do(t, ex)
		}
		c.do(t, exchange{method: "GET", target: "/locks/c-scoped/x", header: scoped, route: "/locks/{id}", validRequest: true, status: 200})

		// One waiter per identity: while one waits, the next is a 429.
		c.do(t, exchange{method: "GET", target: "/acquire/c-scoped/w", header: scoped, route: "/acquire/{id}", validRequest: true, status: 200})
		raw := func(target string) int {
			req, _ := http.NewRequest("GET", c.srv.URL+target, nil)
			req.Header.Set("Authorization", "Bearer "+scopedToken)
			resp, err := c.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode
		}
		waiter := make(chan int, 1)
		wait := func() { waiter <- raw("/acquire/c-scoped/w?wait=2s") }
		go wait()
		// A probe that takes the one slot first refuses the waiter: start it again.
		for in, deadline := false, time.Now().Add(10*time.Second); !in; {
			if time.Now().After(deadline) {
				t.Fatal("the scoped identity's waiter never got in")
			}
			select {
			case <-waiter:
				go wait()
			default:
				in = raw("/acquire/c-scoped/w?wait=1ms") == http.StatusTooManyRequests
			}
		}
		c.do(t, exchange{method: "GET", target: "/acquire/c-scoped/w?wait=1s", header: scoped, route: "/acquire/{id}", validRequest: true, status: 429, code: "too_many_waiters"})
		c.do(t, exchange{method: "POST", target: "/acquire/c-scoped/w", body: `{"wait":"1s"}`, header: scoped, route: "/acquire/{id}", validRequest: true, status: 429, code: "too_many_waiters"})
		c.do(t, exchange{method: "POST", target: "/", body: `{"wait":"1s"}`, route: "/", validRequest: true, status: 429, code: "too_many_waiters",
			header: with(map[string]string{"Ce-Specversion": "1.0", "Ce-Type": "dev.candado.lock.acquire", "Ce-Source": "/contract",
				"Ce-Id": "ce-429", "Ce-Subject": "c-scoped/w", "Content-Type": "application/json"})})
		<-waiter
	})

	t.Run("coordination", func(t *testing.T) { coordination(t, c) })

	// Last: with Redis gone, every call that needs it is a 503.
	t.Run("unavailable", func(t *testing.T) {
		c.srv.redis.Kill()
		for _, ex := range []exchange{
			{method: "GET", target: "/acquire/c-down", route: "/acquire/{id}"},
			{method: "POST", target: "/acquire/c-down", body: `{"ttl":"1s"}`, route: "/acquire/{id}"},
			{method: "GET", target: "/release/c-down?owner=x", route: "/release/{id}"},
			{method: "POST", target: "/release/c-down", body: `{"owner":"x"}`, route: "/release/{id}"},
			{method: "GET", target: "/heartbeat/c-down?owner=x", route: "/heartbeat/{id}"},
			{method: "POST", target: "/heartbeat/c-down", body: `{"owner":"x"}`, route: "/heartbeat/{id}"},
			{method: "GET", target: "/locks/c-down", route: "/locks/{id}"},
			{method: "GET", target: "/locks?prefix=c-down", route: "/locks"},
			{method: "POST", target: "/locks/c-down/revoke", route: "/locks/{id}/revoke"},
			{method: "GET", target: "/readyz", noAuth: true, route: "/readyz"},
			{method: "POST", target: "/", route: "/", body: `{}`, header: map[string]string{
				"Ce-Specversion": "1.0", "Ce-Type": "dev.candado.lock.acquire", "Ce-Source": "/contract",
				"Ce-Id": "ce-down", "Ce-Subject": "c-down", "Content-Type": "application/json"}},
		} {
			ex.validRequest, ex.status, ex.code = true, 503, "unavailable"
			c.do(t, ex)
		}
		// Liveness touches no backend.
		c.do(t, exchange{method: "GET", target: "/healthz", noAuth: true, route: "/healthz", validRequest: true, status: 200})
	})

	var missing []string
	for key := range declaredStatuses(model) {
		if !c.covered[key] {
			missing = append(missing, key)
		}
	}
	slices.Sort(missing)
	for _, m := range missing {
		t.Errorf("%s declares %s, which no exchange exercised", specFile, m)
	}
}

// specTarget is target as a client generated from the description sends
// it: OpenAPI path parameters cannot span segments, so such a client
// percent-encodes a / in the id, and the server decodes it back (the two
// forms name one lock; the exchanges send the literal form to prove it).
func specTarget(route, target string) string {
	prefix, suffix, ok := strings.Cut(route, "{id}")
	if !ok || !strings.HasPrefix(target, prefix) {
		return target
	}
	id, query, _ := strings.Cut(strings.TrimPrefix(target, prefix), "?")
	id = strings.TrimSuffix(id, suffix)
	escaped := prefix + strings.ReplaceAll(id, "/", "%2F") + suffix
	if query != "" {
		escaped += "?" + query
	}
	return escaped
}

// tooLarge is a JSON body just over the 64 KiB limit.
func tooLarge() string {
	return `{"owner":"` + strings.Repeat("x", 64<<10) + `"}`
}
