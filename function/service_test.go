package function

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
)

func testConfig(redisURL string) Config {
	return Config{RedisURL: redisURL, Port: 8080, KeyPrefix: "candado:", DefaultTTL: 30 * time.Second,
		MaxTTL: time.Hour, MaxWait: 2 * time.Second, EventSource: "/candado", BackendTimeout: 300 * time.Millisecond}
}

// newTestService serves a Service on miniredis through a real HTTP server.
func newTestService(t *testing.T, edit func(*Config)) (*httptest.Server, *miniredis.Miniredis) {
	t.Helper()
	m := miniredis.RunT(t)
	cfg := testConfig("redis://" + m.Addr())
	if edit != nil {
		edit(&cfg)
	}
	svc, err := NewService(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(func() { srv.Close(); svc.Close() })
	return srv, m
}

type answer struct {
	Status int
	Header http.Header
	Env    struct {
		Error   string          `json:"error"`
		Code    string          `json:"code"`
		Success bool            `json:"success"`
		Data    json.RawMessage `json:"data"`
	}
	Data struct {
		ID    string  `json:"id"`
		State int     `json:"state"`
		Owner *string `json:"owner"`
		Fence int64   `json:"fence"`
		TTLms int64   `json:"ttl_ms"`
	}
}

func call(t *testing.T, srv *httptest.Server, method, path, body string, hdr ...string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{Status: resp.StatusCode, Header: resp.Header}
	raw, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); path != "/metrics" && ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, body %s", method, path, ct, raw)
	}
	if path == "/metrics" {
		a.Env.Error = string(raw)
		return a
	}
	if err := json.Unmarshal(raw, &a.Env); err != nil {
		t.Fatalf("%s %s: body is not the envelope: %v: %s", method, path, err, raw)
	}
	if len(a.Env.Data) > 0 && string(a.Env.Data) != "null" {
		if err := json.Unmarshal(a.Env.Data, &a.Data); err != nil {
			t.Fatalf("data: %v: %s", err, a.Env.Data)
		}
	}
	return a
}

func (a answer) want(t *testing.T, status int, code string) answer {
	t.Helper()
	if a.Status != status || a.Env.Code != code || a.Env.Success != (status == 200) {
		t.Fatalf("got %d %q (success %v, error %q), want %d %q", a.Status, a.Env.Code, a.Env.Success, a.Env.Error, status, code)
	}
	if status != 200 && a.Env.Error == "" {
		t.Fatalf("error answer without a message")
	}
	return a
}

func TestLockRoutes(t *testing.T) {
	srv, m := newTestService(t, nil)

	a := call(t, srv, "GET", "/acquire/orders/42?ttl=5s", "").want(t, 200, "")
	if a.Data.ID != "orders/42" || a.Data.State != 1 || a.Data.Owner == nil || len(*a.Data.Owner) != 32 || a.Data.TTLms != 5000 || a.Data.Fence <= 0 || a.Data.Fence >= 1<<53 {
		t.Fatalf("acquire data = %+v", a.Data)
	}
	owner, fence := *a.Data.Owner, a.Data.Fence

	held := call(t, srv, "POST", "/acquire/orders/42", `{"owner":"other"}`).want(t, 409, "held")
	if held.Data.Owner != nil || held.Data.Fence != fence || held.Data.State != 1 || held.Data.TTLms <= 0 || held.Data.ID != "orders/42" {
		t.Fatalf("409 data = %s: want id, state, fence and ttl, never the owner", held.Env.Data)
	}
	again := call(t, srv, "POST", "/acquire/orders/42", `{"owner":"`+owner+`","ttl":7000}`).want(t, 200, "")
	if again.Data.Fence != fence || again.Data.TTLms != 7000 {
		t.Fatalf("idempotent re-acquire = %+v", again.Data)
	}
	st := call(t, srv, "GET", "/locks/orders/42", "").want(t, 200, "")
	if st.Data.Owner != nil || st.Data.State != 1 || st.Data.Fence != fence {
		t.Fatalf("/locks = %s", st.Env.Data)
	}
	call(t, srv, "GET", "/heartbeat/orders/42?owner=other", "").want(t, 409, "not_held")
	hb := call(t, srv, "POST", "/heartbeat/orders/42?owner="+owner, `{"ttl":"1m"}`).want(t, 200, "")
	if hb.Data.TTLms != 60000 || hb.Data.Fence != fence || *hb.Data.Owner != owner {
		t.Fatalf("heartbeat = %+v", hb.Data)
	}
	if ttl := m.TTL("candado:{orders/42}"); ttl != time.Minute {
		t.Fatalf("Redis TTL = %v, want 1m", ttl)
	}
	call(t, srv, "GET", "/release/orders/42?owner=other", "").want(t, 409, "not_held")
	rel := call(t, srv, "GET", "/release/orders/42?owner="+owner, "").want(t, 200, "")
	if rel.Data.State != 0 || *rel.Data.Owner != owner {
		t.Fatalf("release = %+v", rel.Data)
	}
	free := call(t, srv, "GET", "/locks/orders/42", "").want(t, 200, "")
	if free.Data.State != 0 || free.Data.TTLms != 0 || free.Data.Fence != fence {
		t.Fatalf("/locks of a free lock = %s", free.Env.Data)
	}
	next := call(t, srv, "GET", "/acquire/orders/42", "").want(t, 200, "")
	if next.Data.Fence <= fence || next.Data.TTLms != 30000 {
		t.Fatalf("next acquire = %+v, want a higher fence and the default TTL", next.Data)
	}
	never := call(t, srv, "GET", "/locks/never", "").want(t, 200, "")
	if never.Data.State != 0 || never.Data.Fence != 0 {
		t.Fatalf("/locks of an unknown lock = %s", never.Env.Data)
	}
}

func TestBadRequests(t *testing.T) {
	srv, _ := newTestService(t, nil)
	cases := []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", "/acquire/", "", 400, "bad_request"},
		{"GET", "/acquire/a//b", "", 400, "bad_request"},
		{"GET", "/acquire/a/../b", "", 400, "bad_request"},
		{"GET", "/acquire/a/./b", "", 400, "bad_request"},
		{"GET", "/acquire/a%20b", "", 400, "bad_request"},
		{"GET", "/acquire/" + strings.Repeat("x", 256), "", 400, "bad_request"},
		{"GET", "/acquire/x?ttl=0", "", 400, "bad_request"},
		{"GET", "/acquire/x?ttl=500us", "", 400, "bad_request"},
		{"GET", "/acquire/x?ttl=-1s", "", 400, "bad_request"},
		{"GET", "/acquire/x?ttl=2h", "", 400, "bad_request"},
		{"GET", "/acquire/x?ttl=soon", "", 400, "bad_request"},
		{"GET", "/acquire/x?wait=-5ms", "", 400, "bad_request"},
		{"GET", "/acquire/x?owner=" + strings.Repeat("o", 129), "", 400, "bad_request"},
		{"GET", "/acquire/x?colour=blue", "", 400, "bad_request"},
		{"GET", "/acquire/x?ttl=1s&ttl=2s", "", 400, "bad_request"},
		{"GET", "/acquire/x?ttl=%zz", "", 400, "bad_request"},
		{"POST", "/acquire/x", `{"ttl":`, 400, "bad_request"},
		{"POST", "/acquire/x", `[1,2]`, 400, "bad_request"},
		{"POST", "/acquire/x", `{"tll":"1s"}`, 400, "bad_request"},
		{"POST", "/acquire/x", `{"ttl":1.5}`, 400, "bad_request"},
		{"POST", "/acquire/x", `{"ttl":true}`, 400, "bad_request"},
		{"POST", "/acquire/x", `{} {}`, 400, "bad_request"},
		{"POST", "/acquire/x?ttl=1s", `{"ttl":"2s"}`, 400, "bad_request"},
		{"POST", "/acquire/x", `{"id":"y"}`, 400, "bad_request"},
		{"POST", "/acquire/x?owner=a", `{"owner":"b"}`, 400, "bad_request"},
		{"GET", "/release/x", "", 400, "bad_request"},
		{"GET", "/heartbeat/x", "", 400, "bad_request"},
		{"GET", "/release/x?owner=o&ttl=1s", "", 400, "bad_request"},
		{"GET", "/heartbeat/x?owner=o&wait=1s", "", 400, "bad_request"},
		{"POST", "/acquire/x", `{"owner":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "too_large"},
		{"GET", "/nope", "", 404, "not_found"},
		{"GET", "/acquire", "", 404, "not_found"},
		{"GET", "/", "", 404, "not_found"},
		{"PUT", "/acquire/x", "", 405, "method_not_allowed"},
		{"DELETE", "/release/x", "", 405, "method_not_allowed"},
		{"POST", "/locks/x", "", 405, "method_not_allowed"},
		{"POST", "/healthz", "", 405, "method_not_allowed"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path[:min(len(c.path), 40)], func(t *testing.T) {
			a := call(t, srv, c.method, c.path, c.body).want(t, c.status, c.code)
			if c.status == 405 && a.Header.Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
			if a.Status == 301 || a.Status == 307 || a.Status == 308 {
				t.Fatal("redirect")
			}
		})
	}
	// Equal values in two places are fine, in either syntax.
	call(t, srv, "POST", "/acquire/same?ttl=1500ms&owner=me", `{"ttl":1500,"owner":"me","id":"same"}`).want(t, 200, "")
	// A bad id is echoed nowhere; a bad ttl answers with the parsed id.
	if a := call(t, srv, "GET", "/acquire/x?ttl=0", ""); a.Data.ID != "x" {
		t.Fatalf("400 data = %s, want the id", a.Env.Data)
	}
	// A wait above the maximum is cut down, not refused.
	call(t, srv, "GET", "/acquire/w?wait=1h", "").want(t, 200, "")
}

func TestRawPathsAreNotRedirected(t *testing.T) {
	srv, _ := newTestService(t, nil)
	for _, p := range []string{"/acquire/a/../b", "/acquire/./a", "//acquire/a", "/acquire/a/"} {
		conn := rawGet(t, srv, p)
		if !strings.HasPrefix(conn, "HTTP/1.1 400") && !strings.HasPrefix(conn, "HTTP/1.1 404") {
			t.Fatalf("GET %s answered %q, want 400 or 404", p, conn[:min(len(conn), 40)])
		}
	}
}

// rawGet sends path exactly as written, bypassing any client-side cleaning.
func rawGet(t *testing.T, srv *httptest.Server, path string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.URL.Opaque = path
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.Proto + " " + resp.Status
}

func TestWaitOverHTTP(t *testing.T) {
	srv, _ := newTestService(t, nil)
	first := call(t, srv, "GET", "/acquire/q?ttl=10s", "").want(t, 200, "")
	done := make(chan answer, 1)
	go func() { done <- call(t, srv, "GET", "/acquire/q?wait=2s&owner=next", "") }()
	time.Sleep(50 * time.Millisecond)
	call(t, srv, "GET", "/release/q?owner="+*first.Data.Owner, "").want(t, 200, "")
	got := (<-done).want(t, 200, "")
	if *got.Data.Owner != "next" || got.Data.Fence <= first.Data.Fence {
		t.Fatalf("waiter = %+v", got.Data)
	}
	timeout := call(t, srv, "GET", "/acquire/q?wait=50ms", "").want(t, 409, "held")
	if timeout.Data.Fence != got.Data.Fence {
		t.Fatalf("wait ran out: %+v", timeout.Data)
	}
}

func TestAuth(t *testing.T) {
	srv, _ := newTestService(t, func(c *Config) { c.AuthToken = "s3cret" })
	for _, p := range []string{"/acquire/x", "/nope", "/locks/x"} {
		a := call(t, srv, "PUT", p, "").want(t, 401, "unauthorized")
		if a.Header.Get("WWW-Authenticate") == "" {
			t.Fatal("401 without WWW-Authenticate")
		}
		call(t, srv, "GET", p, "", "Authorization", "Bearer wrong").want(t, 401, "unauthorized")
		call(t, srv, "GET", p, "", "Authorization", "s3cret").want(t, 401, "unauthorized")
	}
	call(t, srv, "GET", "/acquire/x", "", "Authorization", "Bearer s3cret").want(t, 200, "")
	call(t, srv, "GET", "/healthz", "").want(t, 200, "")
	call(t, srv, "GET", "/readyz", "").want(t, 200, "")
	if a := call(t, srv, "GET", "/metrics", ""); a.Status != 200 {
		t.Fatalf("/metrics = %d", a.Status)
	}
}

func TestBackendDown(t *testing.T) {
	srv, m := newTestService(t, nil)
	call(t, srv, "GET", "/readyz", "").want(t, 200, "")
	addr := m.Addr()
	m.Close()
	for _, p := range []string{"/acquire/x", "/release/x?owner=o", "/heartbeat/x?owner=o", "/locks/x", "/readyz"} {
		start := time.Now()
		a := call(t, srv, "GET", p, "").want(t, 503, "unavailable")
		if a.Header.Get("Retry-After") != "1" {
			t.Fatalf("%s: 503 without Retry-After", p)
		}
		if strings.Contains(a.Env.Error, "127.0.0.1") {
			t.Fatalf("%s: error leaks backend details: %q", p, a.Env.Error)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("%s took %v with Redis down", p, d)
		}
	}
	call(t, srv, "GET", "/healthz", "").want(t, 200, "")
	if err := m.StartAddr(addr); err != nil {
		t.Fatal(err)
	}
	call(t, srv, "GET", "/acquire/x", "").want(t, 200, "")
}

func TestMetrics(t *testing.T) {
	srv, _ := newTestService(t, nil)
	call(t, srv, "GET", "/acquire/m", "").want(t, 200, "")
	call(t, srv, "GET", "/acquire/m", "").want(t, 409, "held")
	text := call(t, srv, "GET", "/metrics", "").Env.Error
	for _, want := range []string{
		`candado_http_requests_total{route="acquire",code="200"} 1`,
		`candado_http_requests_total{route="acquire",code="409"} 1`,
		`candado_acquires_total{result="granted"} 1`,
		`candado_acquires_total{result="held"} 1`,
		`candado_http_request_duration_seconds_bucket{route="acquire"`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	t.Setenv("CANDADO_DEFAULT_TTL", "10s")
	t.Setenv("CANDADO_PORT", "9000")
	t.Setenv("PORT", "9100")
	cfg, err := LoadConfig()
	if err != nil || cfg.Port != 9100 || cfg.DefaultTTL != 10*time.Second || cfg.KeyPrefix != "candado:" || cfg.MaxTTL != time.Hour {
		t.Fatalf("LoadConfig = %+v, %v", cfg, err)
	}
	bad := map[string]string{
		"CANDADO_DEFAULT_TTL": "soon", "CANDADO_MAX_TTL": "0s", "CANDADO_PORT": "70000",
		"CANDADO_REDIS_URL": "http://x", "CANDADO_KEY_PREFIX": "{x}", "CANDADO_MAX_WAIT": "-1s",
	}
	for name, val := range bad {
		t.Run(name, func(t *testing.T) {
			t.Setenv("PORT", "")
			t.Setenv(name, val)
			_, err := LoadConfig()
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("%s=%s: error %v does not name the variable", name, val, err)
			}
		})
	}
}

func TestEnvelopeIsJSONEverywhere(t *testing.T) {
	srv, _ := newTestService(t, nil)
	for _, p := range []string{"/healthz", "/readyz", "/x", "/acquire/%"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			continue // the client refuses some raw paths; rawGet covers those
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !json.Valid(body) || !bytes.Contains(body, []byte(`"success"`)) {
			t.Fatalf("%s: %s", p, body)
		}
	}
}

func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	OpenFaaSSecrets = dir
	t.Cleanup(func() { OpenFaaSSecrets = "/var/openfaas/secrets" })

	t.Setenv("CANDADO_REDIS_URL_FILE", write("url", "redis://10.0.0.1:6379/0\n"))
	write("candado-auth-token", "from-openfaas\n")
	cfg, err := LoadConfig()
	if err != nil || cfg.RedisURL != "redis://10.0.0.1:6379/0" || cfg.AuthToken != "from-openfaas" {
		t.Fatalf("LoadConfig = %+v, %v", cfg, err)
	}

	t.Setenv("CANDADO_AUTH_TOKEN", "from-env")
	if cfg, err := LoadConfig(); err != nil || cfg.AuthToken != "from-env" {
		t.Fatalf("an explicit variable must win over the OpenFaaS file: %+v, %v", cfg, err)
	}
	t.Setenv("CANDADO_REDIS_URL", "redis://x")
	if _, err := LoadConfig(); err == nil || !strings.Contains(err.Error(), "CANDADO_REDIS_URL_FILE") {
		t.Fatalf("both set: %v", err)
	}
	os.Unsetenv("CANDADO_REDIS_URL")
	t.Setenv("CANDADO_REDIS_URL_FILE", dir+"/missing")
	if _, err := LoadConfig(); err == nil || !strings.Contains(err.Error(), "CANDADO_REDIS_URL_FILE") {
		t.Fatalf("missing file: %v", err)
	}
	t.Setenv("CANDADO_REDIS_URL_FILE", dir) // a directory: unreadable as a file
	if _, err := LoadConfig(); err == nil || !strings.Contains(err.Error(), "CANDADO_REDIS_URL_FILE") {
		t.Fatalf("unreadable file: %v", err)
	}
	os.Unsetenv("CANDADO_REDIS_URL_FILE")
	os.Unsetenv("CANDADO_AUTH_TOKEN")
	if err := os.Remove(dir + "/candado-auth-token"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir+"/candado-auth-token", 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(); err == nil || !strings.Contains(err.Error(), "AUTH_TOKEN") {
		t.Fatalf("unreadable OpenFaaS secret: %v", err)
	}
}
