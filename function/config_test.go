package function

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestUnprefixedNamesAreIgnored: variables meant for other software (or
// another service's envconfig) never configure Candado.
func TestUnprefixedNamesAreIgnored(t *testing.T) {
	for name, val := range map[string]string{
		"REDIS_URL": "redis://127.0.0.1:1/0", "MAX_TTL": "1s", "AUTH_TOKEN": "x", "DEFAULT_TTL": "1ms",
		"KEY_PREFIX": "other:", "MAX_WAIT": "1s", "REDIS_MODE": "cluster", "REDIS_URLS": "redis://127.0.0.1:1",
		"BACKEND_TIMEOUT": "1ms", "EVENT_SOURCE": "/other", "EVENT_SINK": "http://127.0.0.1:1", "REDIS_MASTER_NAME": "m",
	} {
		t.Setenv(name, val)
	}
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RedisURL != "" || !cfg.RedisUnset() || cfg.MaxTTL != time.Hour || cfg.AuthToken != "" || cfg.DefaultTTL != 30*time.Second ||
		cfg.KeyPrefix != "candado:" || cfg.MaxWait != 60*time.Second || cfg.RedisMode != "single" || len(cfg.RedisURLs) != 0 ||
		cfg.BackendTimeout != 500*time.Millisecond || cfg.EventSource != "/candado" || cfg.EventSink != "" || cfg.RedisMasterName != "" {
		t.Fatalf("unprefixed variables leaked into the configuration: %+v", cfg)
	}
}

// TestServiceLinkPort: the kubelet's CANDADO_PORT=tcp://ip:port (from a
// Service named candado) is skipped with one notice; PORT wins; a plain bad
// value still fails naming its variable.
func TestServiceLinkPort(t *testing.T) {
	t.Setenv("PORT", "")
	t.Setenv("CANDADO_PORT", "tcp://10.96.11.11:80")
	cfg, err := LoadConfig()
	if err != nil || cfg.Port != 8080 || len(cfg.Notices) != 1 || !strings.Contains(cfg.Notices[0], "CANDADO_PORT") {
		t.Fatalf("service link: %+v, %v", cfg, err)
	}
	var logs bytes.Buffer
	svc, err := NewService(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	svc.Close()
	if n := strings.Count(logs.String(), "CANDADO_PORT"); n != 1 {
		t.Fatalf("the service link is logged %d times, want once:\n%s", n, logs.String())
	}

	t.Setenv("PORT", "9100")
	if cfg, err := LoadConfig(); err != nil || cfg.Port != 9100 || len(cfg.Notices) != 0 {
		t.Fatalf("PORT must win over a service link: %+v, %v", cfg, err)
	}
	t.Setenv("PORT", "")
	t.Setenv("CANDADO_PORT", "abc")
	if _, err := LoadConfig(); err == nil || !strings.Contains(err.Error(), "CANDADO_PORT") {
		t.Fatalf("CANDADO_PORT=abc: %v", err)
	}
	t.Setenv("CANDADO_PORT", "9200")
	if cfg, err := LoadConfig(); err != nil || cfg.Port != 9200 {
		t.Fatalf("CANDADO_PORT=9200: %+v, %v", cfg, err)
	}
}

// TestUnusableConfigurationFailsClosed: an empty or unset Redis URL, from
// whatever source, never serves locks: not ready, every lock call a
// 503 naming the variable, logged once.
func TestUnusableConfigurationFailsClosed(t *testing.T) {
	dir := t.TempDir()
	empty := dir + "/empty"
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	OpenFaaSSecrets = t.TempDir()
	t.Cleanup(func() { OpenFaaSSecrets = "/var/openfaas/secrets" })
	cases := []struct {
		name string
		env  map[string]string
		file string // written empty under OpenFaaSSecrets
		want string
	}{
		{"unset", nil, "", "CANDADO_REDIS_URL is not set"},
		{"set empty", map[string]string{"CANDADO_REDIS_URL": ""}, "", "CANDADO_REDIS_URL is empty"},
		{"file empty", map[string]string{"CANDADO_REDIS_URL_FILE": empty}, "", "CANDADO_REDIS_URL_FILE names " + empty + ", which is empty"},
		{"file variable empty", map[string]string{"CANDADO_REDIS_URL_FILE": ""}, "", "CANDADO_REDIS_URL_FILE is empty"},
		{"openfaas secret empty", nil, "candado-redis-url", "the OpenFaaS secret " + OpenFaaSSecrets + "/candado-redis-url (for CANDADO_REDIS_URL) is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []string{"CANDADO_REDIS_URL", "CANDADO_REDIS_URL_FILE", "CANDADO_AUTH_TOKEN", "CANDADO_AUTH_TOKEN_FILE"} {
				t.Setenv(v, "")
				os.Unsetenv(v)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			if tc.file != "" {
				p := OpenFaaSSecrets + "/" + tc.file
				if err := os.WriteFile(p, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Remove(p) })
			}
			cfg, err := LoadConfig()
			if err != nil {
				t.Fatalf("LoadConfig must accept it (the service starts and is not ready): %v", err)
			}
			var logs bytes.Buffer
			svc, err := NewService(cfg, slog.New(slog.NewJSONHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(svc)
			defer func() { srv.Close(); svc.Close() }()
			if err := svc.Ready(t.Context()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Ready = %v, want an error containing %q", err, tc.want)
			}
			for _, p := range []string{"/readyz", "/acquire/x", "/acquire/x?wait=5s", "/release/x?owner=o", "/heartbeat/x?owner=o", "/locks/x"} {
				a := call(t, srv, "GET", p, "").want(t, 503, "unavailable")
				if !strings.Contains(a.Env.Error, tc.want) {
					t.Fatalf("GET %s: error %q does not say %q", p, a.Env.Error, tc.want)
				}
			}
			ce := call(t, srv, "POST", "/", `{"id":"x"}`, "Ce-Specversion", "1.0", "Ce-Type", "dev.candado.lock.acquire",
				"Ce-Source", "/t", "Ce-Id", "1", "Content-Type", "application/json").want(t, 503, "unavailable")
			if !strings.Contains(ce.Env.Error, tc.want) {
				t.Fatalf("CloudEvent: error %q does not say %q", ce.Env.Error, tc.want)
			}
			call(t, srv, "GET", "/healthz", "").want(t, 200, "")
			if n := strings.Count(logs.String(), tc.want); n != 1 {
				t.Fatalf("the cause is logged %d times, want once at start:\n%s", n, logs.String())
			}
		})
	}
}

// TestEmptyAuthTokenMeansNone: an auth token set but empty serves without
// one (deploy/README's Knative Eventing setup relies on it).
func TestEmptyAuthTokenMeansNone(t *testing.T) {
	_, m := newTestService(t, nil)
	t.Setenv("CANDADO_REDIS_URL", "redis://"+m.Addr())
	t.Setenv("CANDADO_AUTH_TOKEN", "")
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	defer func() { srv.Close(); svc.Close() }()
	call(t, srv, "GET", "/acquire/open", "").want(t, 200, "")
}

// TestPlatformBuildsLinkNoInProcessRedis: the packages the OpenFaaS and
// Knative builds compile cannot fall back to an in-process Redis.
func TestPlatformBuildsLinkNoInProcessRedis(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "handler/function/function", "handler/function").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "miniredis") {
		t.Fatal("the platform entries link miniredis")
	}
}

// TestOpenFaaSDeadline reads write_timeout and exec_timeout as the template
// and of-watchdog do.
func TestOpenFaaSDeadline(t *testing.T) {
	for _, tc := range []struct {
		write, exec string
		want        time.Duration
	}{
		{"", "", 10 * time.Second},
		{"75s", "75s", 75 * time.Second},
		{"75", "60", 60 * time.Second},
		{"30s", "", 10 * time.Second},
		{"1m", "0", time.Minute},
		{"0", "0", 0},
		{"soon", "45s", 10 * time.Second},
		{"-1s", "20s", 20 * time.Second},
	} {
		env := map[string]string{"write_timeout": tc.write, "exec_timeout": tc.exec}
		if got := OpenFaaSDeadline(func(k string) string { return env[k] }); got != tc.want {
			t.Errorf("write_timeout=%q exec_timeout=%q: deadline %s, want %s", tc.write, tc.exec, got, tc.want)
		}
	}
}

// TestWaitEndsBeforeTheDeadline: behind a server that cuts answers at its
// write timeout, a wait longer than that still gets a whole 409 answer,
// saying the wait was cut and how long the server waited, also when the
// body took a while to arrive.
func TestWaitEndsBeforeTheDeadline(t *testing.T) {
	const deadline = 3 * time.Second // margin 1s: waits end 2s after arrival
	_, m := newTestService(t, nil)
	cfg := testConfig("redis://" + m.Addr())
	cfg.MaxWait = time.Minute
	cfg.Deadline = deadline
	svc, err := NewService(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(svc)
	srv.Config.WriteTimeout = deadline
	srv.Start()
	t.Cleanup(func() { srv.Close(); svc.Close() })
	call(t, srv, "GET", "/acquire/cut?owner=holder", "").want(t, 200, "")

	for _, slowBody := range []time.Duration{0, 800 * time.Millisecond} {
		pr, pw := io.Pipe()
		go func() {
			time.Sleep(slowBody)
			io.WriteString(pw, `{"owner":"waiter","wait":"45s"}`)
			pw.Close()
		}()
		start := time.Now()
		resp, err := http.Post(srv.URL+"/acquire/cut", "application/json", pr)
		if err != nil {
			t.Fatalf("body after %s: no answer: %v", slowBody, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		var env struct {
			Code string
			Data struct {
				State    int
				WaitCut  *bool  `json:"wait_cut"`
				WaitedMs *int64 `json:"waited_ms"`
			}
		}
		if err := json.Unmarshal(raw, &env); err != nil || resp.StatusCode != 409 || env.Code != "held" {
			t.Fatalf("body after %s: %d %s (%v), want a whole 409 held", slowBody, resp.StatusCode, raw, err)
		}
		if env.Data.WaitCut == nil || !*env.Data.WaitCut || env.Data.WaitedMs == nil || *env.Data.WaitedMs < 500 || env.Data.State != 1 {
			t.Fatalf("body after %s: data %s, want wait_cut true, waited_ms and the holder's state", slowBody, raw)
		}
		if took >= deadline {
			t.Fatalf("body after %s: answered after %s, at or past the %s deadline", slowBody, took, deadline)
		}
	}

	// Not cut: a wait within the cap says so.
	a := call(t, srv, "GET", "/acquire/cut?owner=w2&wait=100ms", "").want(t, 409, "held")
	if !bytes.Contains(a.Env.Data, []byte(`"wait_cut":false`)) || !bytes.Contains(a.Env.Data, []byte(`"waited_ms":`)) {
		t.Fatalf("uncut wait: data %s", a.Env.Data)
	}
	g := call(t, srv, "GET", "/acquire/free?wait=45s", "").want(t, 200, "")
	if !bytes.Contains(g.Env.Data, []byte(`"wait_cut":true`)) || !bytes.Contains(g.Env.Data, []byte(`"waited_ms":0`)) {
		t.Fatalf("granted at once, wait asked over the cap: data %s", g.Env.Data)
	}
	// Other operations carry no wait fields.
	r := call(t, srv, "GET", "/release/cut?owner=holder", "").want(t, 200, "")
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(r.Env.Data, &fields); err != nil {
		t.Fatalf("release data %s: %v", r.Env.Data, err)
	}
	if _, cut := fields["wait_cut"]; cut {
		t.Fatalf("release data %s carries wait_cut", r.Env.Data)
	}
	if _, waited := fields["waited_ms"]; waited {
		t.Fatalf("release data %s carries waited_ms", r.Env.Data)
	}
}
