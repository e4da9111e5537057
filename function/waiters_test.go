package function

import (
	"context"
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

// scrape returns the /metrics text of srv.
func scrape(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	return call(t, srv, "GET", "/metrics", "").Env.Error
}

// waitForMetric waits until srv's /metrics holds line.
func waitForMetric(t *testing.T, srv *httptest.Server, line string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(scrape(t, srv), line) {
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed %q:\n%s", line, scrape(t, srv))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Past CANDADO_MAX_WAITERS a waiting acquire answers 503 at once, with
// Retry-After and an error that says why; waits ended by the caller's
// cancellation or by shutdown are counted by outcome.
func TestMaxWaitersAndWaitOutcomes(t *testing.T) {
	m := miniredis.RunT(t)
	cfg := testConfig("redis://" + m.Addr())
	cfg.MaxWaiters = 1
	svc, err := NewService(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(func() { srv.Close(); svc.Close() })

	call(t, srv, "POST", "/acquire/job", `{"owner":"holder","ttl":"1m"}`).want(t, 200, "")
	ctx, cancel := context.WithCancel(context.Background())
	waited := make(chan struct{})
	go func() {
		defer close(waited)
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/acquire/job", strings.NewReader(`{"owner":"w1","wait":"2s"}`))
		if resp, err := srv.Client().Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitForMetric(t, srv, "candado_waiters 1\n")

	start := time.Now()
	a := call(t, srv, "POST", "/acquire/job", `{"owner":"w2","wait":"2s"}`).want(t, 503, "unavailable")
	if d := time.Since(start); d > time.Second {
		t.Errorf("the refusal took %v; it must come at once", d)
	}
	if a.Header.Get("Retry-After") == "" {
		t.Error("the refusal has no Retry-After")
	}
	if !strings.Contains(a.Env.Error, "too many acquires are waiting") {
		t.Errorf("the refusal says %q; it must say why", a.Env.Error)
	}
	if a.Data.ID != "job" {
		t.Errorf("the refusal's data %+v lacks the id", a.Data)
	}
	// A try without wait is not a waiter: it answers as usual.
	call(t, srv, "POST", "/acquire/job", `{"owner":"w3"}`).want(t, 409, "held")

	cancel() // the caller gives up
	<-waited
	waitForMetric(t, srv, `candado_waits_total{result="cancelled"} 1`)
	waitForMetric(t, srv, "candado_waiters 0\n")

	go func() {
		req, _ := http.NewRequest("POST", srv.URL+"/acquire/job", strings.NewReader(`{"owner":"w4","wait":"2s"}`))
		if resp, err := srv.Client().Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitForMetric(t, srv, "candado_waiters 1\n")
	svc.Shutdown()
	waitForMetric(t, srv, `candado_waits_total{result="shutdown"} 1`)
	text := scrape(t, srv)
	for _, want := range []string{"candado_waiters_refused_total 1\n", "candado_waiters 0\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestMaxWaitersConfig(t *testing.T) {
	t.Setenv("CANDADO_MAX_WAITERS", "5")
	if cfg, err := LoadConfig(); err != nil || cfg.MaxWaiters != 5 {
		t.Fatalf("LoadConfig = %d, %v; want 5", cfg.MaxWaiters, err)
	}
	t.Setenv("CANDADO_MAX_WAITERS", "-1")
	if _, err := LoadConfig(); err == nil || !strings.Contains(err.Error(), "CANDADO_MAX_WAITERS must not be negative") {
		t.Fatalf("LoadConfig with -1 = %v", err)
	}
	os.Unsetenv("CANDADO_MAX_WAITERS")
	if cfg, err := LoadConfig(); err != nil || cfg.MaxWaiters != 1000 {
		t.Fatalf("default = %d, %v; want 1000", cfg.MaxWaiters, err)
	}
}
