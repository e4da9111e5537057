//go:build integration

package main

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"handler/function/function/redistest"
)

// When the server cannot confirm the lease (its Redis is stopped), candado
// lock stops the command by the lease's TTL and exits 75; a lock started
// during a short outage retries until Redis is back.
func TestCLILockOnRealRedis(t *testing.T) {
	rs := redistest.Start(t)
	s := startServer(t, candadoBin(t), "CANDADO_REDIS_URL="+rs.URL(), "CANDADO_BACKEND_TIMEOUT=200ms")
	env := cliEnv(s.base)
	// pause stops Redis until resume is called, at the latest at cleanup.
	pause := func(t *testing.T) (resume func()) {
		rs.Pause()
		var once sync.Once
		resume = func() { once.Do(rs.Resume) }
		t.Cleanup(resume)
		return resume
	}

	t.Run("outage shorter than --timeout", func(t *testing.T) {
		resume := pause(t)
		time.AfterFunc(time.Second, resume)
		r := runCLI(t, env, "lock", "--timeout", "10s", "outage", "--", "true").wantCode(t, 0, "lock during an outage")
		if r.took < time.Second {
			t.Fatalf("lock succeeded after %v, while Redis was paused", r.took)
		}
	})

	t.Run("lease expires while Redis is paused", func(t *testing.T) {
		dir := t.TempDir()
		marker, ready := filepath.Join(dir, "marker"), filepath.Join(dir, "ready")
		const ttl = time.Second
		p := startLock(t, env, "--ttl", ttl.String(), "--grace", "2s", "paused", "--",
			"sh", "-c", `trap 'echo term > "$1"; exit 0' TERM; echo ready > "$2"; while :; do sleep 0.05; done`, "sh", marker, ready)
		waitFile(t, ready, 10*time.Second)
		resume := pause(t)
		paused := time.Now()
		if code := p.wait(t, 10*time.Second); code != exitLeaseLost {
			t.Fatalf("exit %d, want %d; stderr: %s", code, exitLeaseLost, p.stderr)
		}
		// By the TTL (measured from the last confirmed heartbeat, before the
		// pause), plus the command's reaction to SIGTERM and the brief
		// best-effort release that Redis, paused, cannot answer.
		if d := time.Since(paused); d > ttl+800*time.Millisecond+lostLeaseRelease {
			t.Fatalf("exited %v after the pause, TTL %v", d, ttl)
		}
		if got := waitFile(t, marker, time.Second); got != "term" {
			t.Fatalf("marker %q", got)
		}
		if !strings.Contains(p.stderr.String(), "expired") {
			t.Fatalf("stderr does not say why: %s", p.stderr)
		}
		resume()
		if st := runCLI(t, env, "status", "paused").wantCode(t, 0, "status after resume").json(t); st.State != 0 {
			t.Fatalf("lease still held after its TTL: %+v", st)
		}
	})
}
