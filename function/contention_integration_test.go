//go:build integration

package function

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"handler/function/function/redistest"
)

// metricValue is the value of the series line that starts with series in
// the /metrics text, or -1 when there is none.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %v", series, err)
	}
	return v
}

func TestContentionMetrics(t *testing.T) {
	r := redistest.Start(t)
	a := startOn(t, r.URL(), nil)
	authed(t, a, "POST", "/acquire/m/1", `{"owner":"o1","ttl":"10s"}`).want(t, 200, "")
	waited := make(chan answer, 1)
	go func() {
		waited <- authed(t, a, "POST", "/acquire/m/1", `{"owner":"o2","ttl":"10s","wait":"5s"}`)
	}()
	time.Sleep(300 * time.Millisecond)
	w := openWatch(t, a, "/watch/m/1", "")
	w.expect(t, "state", "m/1")
	text := call(t, a, "GET", "/metrics", "").Env.Error
	if v := metricValue(t, text, "candado_waiters"); v != 1 {
		t.Fatalf("candado_waiters %v while one acquire waits", v)
	}
	if v := metricValue(t, text, "candado_watchers"); v != 1 {
		t.Fatalf("candado_watchers %v while one watch is open", v)
	}
	authed(t, a, "POST", "/release/m/1", `{"owner":"o1"}`).want(t, 200, "")
	(<-waited).want(t, 200, "")
	time.Sleep(200 * time.Millisecond)
	authed(t, a, "POST", "/locks/m/1/revoke", "").want(t, 200, "")

	text = call(t, a, "GET", "/metrics", "").Env.Error
	if n := metricValue(t, text, `candado_hold_duration_seconds_count{result="released"}`); n != 1 {
		t.Fatalf("released holds counted %v, want 1:\n%s", n, text)
	}
	// o1 held the lock for at least the 300 ms before the release.
	if s := metricValue(t, text, `candado_hold_duration_seconds_sum{result="released"}`); s < 0.25 || s > 10 {
		t.Fatalf("released hold time %vs, want about 0.3s", s)
	}
	if s := metricValue(t, text, `candado_hold_duration_seconds_sum{result="revoked"}`); s < 0.15 || s > 10 {
		t.Fatalf("revoked hold time %vs, want about 0.2s", s)
	}
	if n := metricValue(t, text, `candado_wait_duration_seconds_count{result="granted"}`); n != 1 {
		t.Fatalf("granted waits counted %v, want 1", n)
	}
	if s := metricValue(t, text, `candado_wait_duration_seconds_sum{result="granted"}`); s < 0.25 {
		t.Fatalf("the granted wait took %vs, want at least the 0.3s before the release", s)
	}
}
