//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"handler/function/function"
	"handler/function/function/redistest"
)

const token = "e2e-operator-token"

// chromium returns Debian's chromium, installing it (as scripts/
// ensure-redis.sh installs redis) when it is missing.
func chromium(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	out, err := exec.Command("bash", "../scripts/ensure-chromium.sh").CombinedOutput()
	if err != nil {
		t.Fatalf("installing chromium: %v\n%s", err, out)
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// service is a Candado on a private redis-server, with a bearer token.
func service(t *testing.T) *httptest.Server {
	t.Helper()
	return serviceUnder(t, "")
}

// serviceUnder is service mounted under a gateway's path prefix (OpenFaaS
// routes /function/NAME/... to the function with the prefix stripped).
func serviceUnder(t *testing.T, prefix string) *httptest.Server {
	t.Helper()
	r := redistest.Start(t)
	cfg := function.Config{RedisURL: r.URL(), Port: 8080, KeyPrefix: "candado:", DefaultTTL: 30 * time.Second,
		MaxTTL: time.Hour, MaxWait: time.Minute, MaxWatchers: 100, EventSource: "/candado",
		BackendTimeout: 2 * time.Second, AuthToken: token, Deadline: 30 * time.Second}
	svc, err := function.NewService(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = svc
	if prefix != "" {
		h = http.StripPrefix(prefix, svc)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { svc.Shutdown(); srv.Close(); _ = svc.Close() })
	return srv
}

// api calls the service and returns the envelope's data.
func api(t *testing.T, srv *httptest.Server, method, path, body string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Success bool           `json:"success"`
		Error   string         `json:"error"`
		Data    map[string]any `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || !env.Success {
		t.Fatalf("%s %s: %d %v %s", method, path, resp.StatusCode, err, env.Error)
	}
	return env.Data
}

// browser starts a headless chromium with a fresh profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 760),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return bctx
}

// waitFor polls the page until the JavaScript expression cond is true and
// returns how long that took; it fails the test after limit.
func waitFor(t *testing.T, ctx context.Context, what, cond string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if _, err := chromedp.Run(pctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(5*time.Millisecond))); err != nil {
		page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main').innerText`))
		t.Fatalf("%s: not within %v (%v); the page shows:\n%s", what, limit, err, page)
	}
	return time.Since(start)
}

func row(id string) string { return fmt.Sprintf(`document.querySelector('tr[data-id=%q]')`, id) }

func ttlSeconds(t *testing.T, ctx context.Context, id string) float64 {
	t.Helper()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](row(id)+`.querySelector('.ttl').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(text, " s"), 64)
	if err != nil {
		t.Fatalf("TTL cell of %s reads %q", id, text)
	}
	return v
}

func TestOperationsPageInChromium(t *testing.T) {
	srv := service(t)
	ctx := browser(t)

	// Load the page; without a token it says why it is not connected.
	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/ui"), chromedp.WaitVisible(chromedp.ID("status"))); err != nil {
		t.Fatal(err)
	}
	loadMs, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.getEntriesByType('navigation')[0].loadEventEnd`))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the page asks for the token", `document.getElementById('status').textContent.includes('401')`, 5*time.Second)

	// The token, typed once from the keyboard, Enter submits.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("token"), token+"\r")); err != nil {
		t.Fatal(err)
	}
	live := waitFor(t, ctx, "the stream goes live", `document.getElementById('status').textContent.startsWith('Live')`, 5*time.Second)
	t.Logf("page load (navigation to load event) %.0f ms; navigation to the page saying it needs a token %v; token typed to live stream %v",
		loadMs, time.Since(start)-live, live)
	stored, err := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem('candado.token')`))
	if err != nil || stored != token {
		t.Fatalf("token kept in sessionStorage: %q %v", stored, err)
	}

	// A lock the test acquires shows within 1 s, with its fence.
	sent := time.Now()
	acq := api(t, srv, "POST", "/acquire/jobs/nightly-backup", `{"ttl":"20s","holder":"backup-runner pid 4242"}`)
	shown := waitFor(t, ctx, "the acquired lock is listed", row("jobs/nightly-backup")+" !== null", time.Second)
	acquireLatency := time.Since(sent)
	_ = shown
	fence, err := chromedp.Run(ctx, chromedp.Evaluate[string](row("jobs/nightly-backup")+`.querySelector('.fence').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.FormatInt(int64(acq["fence"].(float64)), 10); fence != want {
		t.Fatalf("fence shown %s, want %s", fence, want)
	}
	// Its holder label, as the service keeps it.
	waitFor(t, ctx, "the holder label is shown", row("jobs/nightly-backup")+`.querySelector('.holder').textContent === 'backup-runner pid 4242'`, 2*time.Second)
	// Its TTL counts down.
	first := ttlSeconds(t, ctx, "jobs/nightly-backup")
	time.Sleep(600 * time.Millisecond)
	second := ttlSeconds(t, ctx, "jobs/nightly-backup")
	if !(second < first && first <= 20 && first-second >= 0.3) {
		t.Fatalf("TTL read %.1f s, then %.1f s 600 ms later: not counting down", first, second)
	}

	// A few more locks for the picture, then the screenshot.
	api(t, srv, "POST", "/acquire/deploy/prod", `{"ttl":"45s","holder":"deployer ci-run 881"}`)
	held := api(t, srv, "POST", "/acquire/jobs/report", `{"ttl":"4s"}`)
	// A semaphore of 3 with two of its slots taken: one row, two leases.
	api(t, srv, "POST", "/acquire/pool/gpu", `{"ttl":"40s","limit":3,"holder":"trainer-1"}`)
	api(t, srv, "POST", "/acquire/pool/gpu", `{"ttl":"30s","limit":3,"holder":"trainer-2"}`)
	waitFor(t, ctx, "four locks listed", `document.querySelectorAll('#locks tbody tr').length === 4`, 2*time.Second)
	waitFor(t, ctx, "the semaphore shows 2 of 3", row("pool/gpu")+`.querySelector('.holders').textContent === '2 of 3'`, 7*time.Second)
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.ArtifactDir(), "ui.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("CANDADO_UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile("../docs/ui.png", png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))

	// A release drops the row.
	sent = time.Now()
	api(t, srv, "POST", "/release/jobs/report", `{"owner":"`+held["owner"].(string)+`"}`)
	waitFor(t, ctx, "the released lock is dropped", row("jobs/report")+" === null", time.Second)
	releaseLatency := time.Since(sent)

	// An expiry drops the row within 100 ms of the lease's end (plus slack).
	sent = time.Now()
	api(t, srv, "POST", "/acquire/jobs/short", `{"ttl":"700ms"}`)
	waitFor(t, ctx, "the short lease is listed", row("jobs/short")+" !== null", time.Second)
	waitFor(t, ctx, "the expired lock is dropped", row("jobs/short")+" === null", 3*time.Second)
	expiryLatency := time.Since(sent) - 700*time.Millisecond
	if expiryLatency > 600*time.Millisecond {
		t.Fatalf("the expired lease left the page %v after its end", expiryLatency)
	}

	// The prefix filter, from the keyboard: only jobs/ shows, then all again.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("prefix"), "jobs/\r")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the filter hides deploy/prod", row("deploy/prod")+" === null && "+row("jobs/nightly-backup")+" !== null", 2*time.Second)
	// Empty the field (Backspace over what was typed), then press the
	// Watch button with the space bar.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("prefix"), strings.Repeat("\b", len("jobs/"))),
		chromedp.Focus(chromedp.ID("apply")), chromedp.KeyEvent(" ")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "without a filter deploy/prod is back", row("deploy/prod")+" !== null", 2*time.Second)

	// Revoke from the keyboard: focus the row's button, Enter arms, Enter
	// again revokes.
	if err := chromedp.Do(ctx,
		chromedp.Focus(chromedp.CSS(`tr[data-id="deploy/prod"] button.revoke`)),
		chromedp.KeyEvent("\r"), chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the revoked lock is dropped", row("deploy/prod")+" === null", 2*time.Second)
	if st := api(t, srv, "GET", "/locks/deploy/prod", ""); st["state"].(float64) != 0 {
		t.Fatalf("deploy/prod still held after the page revoked it: %v", st)
	}
	label, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`tr[data-id="jobs/nightly-backup"] button.revoke`), "aria-label"))
	if err != nil || label.Value != "Revoke lock jobs/nightly-backup" {
		t.Fatalf("revoke button's label %q %v", label.Value, err)
	}
	t.Logf("browser latencies, request sent to the page updated: acquire %v, release %v; expiry %v after the lease's end",
		acquireLatency, releaseLatency, expiryLatency)
}

// Under a gateway's path prefix the page finds its files and the API
// under the same prefix.
func TestOperationsPageUnderAPathPrefix(t *testing.T) {
	const prefix = "/function/candado"
	srv := serviceUnder(t, prefix)
	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+prefix+"/ui"), chromedp.WaitVisible(chromedp.ID("status")),
		chromedp.SendKeys(chromedp.ID("token"), token+"\r")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the stream goes live", `document.getElementById('status').textContent.startsWith('Live')`, 5*time.Second)
	api(t, srv, "POST", prefix+"/acquire/p/1", `{"ttl":"20s"}`)
	waitFor(t, ctx, "the acquired lock is listed", row("p/1")+" !== null", time.Second)
}
