package main

import (
	"testing"
	"time"
)

// holdFor takes lock id for another owner and releases it after d.
func holdFor(t *testing.T, env []string, id string, d time.Duration) {
	t.Helper()
	a := runCLI(t, env, "acquire", "--ttl", "1m", id).wantCode(t, 0, "holder's acquire").json(t)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-time.After(d):
			runCLI(t, env, "release", "--owner", *a.Owner, id)
		case <-stop:
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// A lease granted at the end of a wait keeps its whole TTL: the command
// runs to completion (issue 11 item 1: it was killed 0.5s in, exit 75).
func TestCLILockWaitedLeaseKeepsItsTTL(t *testing.T) {
	s := startServer(t, candadoBin(t))
	env := cliEnv(s.base)
	holdFor(t, env, "job", 2500*time.Millisecond)
	r := runCLI(t, env, "lock", "--ttl", "3s", "--wait", "10s", "job", "--", "sh", "-c", "sleep 4").wantCode(t, 0, "lock after a 2.5s wait")
	if r.took < 6*time.Second {
		t.Fatalf("done after %s: the command did not wait for the lock or did not run to completion", r.took)
	}
	if st := runCLI(t, env, "status", "job").wantCode(t, 0, "status").json(t); st.State != 0 {
		t.Fatalf("lock not released: %+v", st)
	}
}

// --wait holds however short the server's CANDADO_MAX_WAIT is.
func TestCLILockWaitOutlastsServerMaxWait(t *testing.T) {
	s := startServer(t, candadoBin(t), "CANDADO_MAX_WAIT=1s")
	env := cliEnv(s.base)
	holdFor(t, env, "cut", 2500*time.Millisecond)
	r := runCLI(t, env, "lock", "--wait", "10s", "cut", "--", "true").wantCode(t, 0, "lock --wait 10s on a server with MaxWait 1s")
	if r.took < 2*time.Second {
		t.Fatalf("granted after %s, before the holder released", r.took)
	}
	holdFor(t, env, "cut2", time.Minute)
	r = runCLI(t, env, "lock", "--wait", "2500ms", "cut2", "--", "true").wantCode(t, exitHeld, "still held after --wait")
	if r.took < 2400*time.Millisecond {
		t.Fatalf("gave up after %s, before its own --wait", r.took)
	}
}
