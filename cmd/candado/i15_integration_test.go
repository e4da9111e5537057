//go:build integration

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"handler/function/function/redistest"
)

// candado's flags of issue 15 against the real service on a real
// redis-server: semaphores, shared locks, holder labels, lock-delay.

// startI15 starts the server on a private redis-server and returns the
// client commands' environment.
func startI15(t *testing.T) []string {
	t.Helper()
	rs := redistest.Start(t)
	s := startServer(t, candadoBin(t), "CANDADO_REDIS_URL="+rs.URL())
	return cliEnv(s.base)
}

// heldCommand is a "candado lock" whose COMMAND signals readiness and then
// holds the lock until release() is called.
type heldCommand struct {
	p             *lockProc
	ready, finish string
}

// holdLock starts candado lock with args before NAME, and waits until its
// command runs, that is, until the lease is granted.
func holdLock(t *testing.T, env []string, name string, args ...string) *heldCommand {
	t.Helper()
	h := startHold(t, env, name, args...)
	h.waitGranted(t, 15*time.Second)
	return h
}

// waitGranted waits up to d for the command to run, failing at once if
// candado lock exits first.
func (h *heldCommand) waitGranted(t *testing.T, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); !h.granted(); time.Sleep(10 * time.Millisecond) {
		select {
		case <-h.p.done:
			t.Fatalf("candado lock exited %d before its command ran: %s", h.p.code, h.p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("candado lock's command did not run within %v: %s", d, h.p.stderr)
		}
	}
}

// startHold starts it without waiting for the grant.
func startHold(t *testing.T, env []string, name string, args ...string) *heldCommand {
	t.Helper()
	dir := t.TempDir()
	h := &heldCommand{ready: filepath.Join(dir, "ready"), finish: filepath.Join(dir, "finish")}
	const script = `echo "$CANDADO_FENCE" > "$1"; while [ ! -e "$2" ]; do sleep 0.02; done`
	h.p = startLock(t, env, append(append([]string{}, args...), name, "--", "sh", "-c", script, "sh", h.ready, h.finish)...)
	// Runs before startLock's cleanup: a command left looping would keep
	// candado's stderr open, and its Wait would never return.
	t.Cleanup(func() { _ = os.WriteFile(h.finish, []byte("x"), 0o644) })
	return h
}

// granted reports whether the command runs (the lease was granted).
func (h *heldCommand) granted() bool {
	b, err := os.ReadFile(h.ready)
	return err == nil && len(b) > 0
}

// release ends the command and waits for candado lock to exit 0.
func (h *heldCommand) release(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(h.finish, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := h.p.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("candado lock exited %d: %s", code, h.p.stderr)
	}
}

// candado lock --limit 3: three commands hold at once, each with its own
// fence; a fourth waits or is refused; another limit or --shared exits 65;
// status shows the holders and their labels.
func TestCLISemaphore(t *testing.T) {
	env := startI15(t)
	var held []*heldCommand
	for i := range 3 {
		held = append(held, holdLock(t, env, "encode/gpu", "--limit", "3", "--ttl", "10s", "--holder", "encoder-"+strconv.Itoa(i)))
	}
	fences := map[string]bool{}
	for _, h := range held {
		fences[waitFile(t, h.ready, time.Second)] = true
	}
	if len(fences) != 3 {
		t.Fatalf("three holders share fences: %v", fences)
	}
	st := runCLI(t, env, "status", "encode/gpu").wantCode(t, 0, "status of a full semaphore").json(t)
	if st.State != 1 || st.Limit != 3 || st.Holders != 3 || len(st.Leases) != 3 || st.Owner != nil {
		t.Fatalf("status %+v", st)
	}
	labels := map[string]bool{}
	for _, l := range st.Leases {
		labels[l.Holder] = true
		if !fences[strconv.FormatInt(l.Fence, 10)] {
			t.Fatalf("status lease %+v is none of the holders' %v", l, fences)
		}
	}
	if !labels["encoder-0"] || !labels["encoder-1"] || !labels["encoder-2"] {
		t.Fatalf("status labels %v", labels)
	}

	marker := filepath.Join(t.TempDir(), "ran")
	runCLI(t, env, "lock", "--limit", "3", "--wait", "300ms", "encode/gpu", "--", "touch", marker).wantCode(t, exitHeld, "a fourth holder")
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a fourth command ran")
	}
	r := runCLI(t, env, "acquire", "--limit", "2", "encode/gpu").wantCode(t, exitLimitMismatch, "another limit")
	if j := r.json(t); j.Limit != 3 || !strings.Contains(r.stderr, "limit_mismatch") {
		t.Fatalf("limit mismatch printed %+v, stderr %s", j, r.stderr)
	}
	runCLI(t, env, "acquire", "--shared", "encode/gpu").wantCode(t, exitLimitMismatch, "--shared on a semaphore")

	// A freed slot goes to the next waiter.
	next := startHold(t, env, "encode/gpu", "--limit", "3", "--wait", "15s")
	time.Sleep(200 * time.Millisecond)
	if next.granted() {
		t.Fatal("a fourth holder got in while three held")
	}
	held[0].release(t)
	next.waitGranted(t, 10*time.Second)
	for _, h := range append(held[1:], next) {
		h.release(t)
	}
	if st := runCLI(t, env, "status", "encode/gpu").json(t); st.State != 0 || st.Holders != 0 {
		t.Fatalf("status after every release %+v", st)
	}
}

// --shared holders run together; an exclusive one waits for them, and while
// it waits no new reader gets in.
func TestCLISharedLock(t *testing.T) {
	env := startI15(t)
	r1 := holdLock(t, env, "reports/q3", "--shared")
	r2 := holdLock(t, env, "reports/q3", "--shared")
	st := runCLI(t, env, "status", "reports/q3").json(t)
	if st.Mode != "shared" || st.Holders != 2 || len(st.Leases) != 2 {
		t.Fatalf("status of two readers %+v", st)
	}
	runCLI(t, env, "lock", "--wait", "300ms", "reports/q3", "--", "true").wantCode(t, exitHeld, "a writer beside readers")
	runCLI(t, env, "acquire", "--limit", "2", "reports/q3").wantCode(t, exitLimitMismatch, "a semaphore on shared leases")

	writer := startHold(t, env, "reports/q3", "--wait", "20s")
	for deadline := time.Now().Add(10 * time.Second); runCLI(t, env, "status", "reports/q3").json(t).Waiters != 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the writer did not queue")
		}
	}
	runCLI(t, env, "lock", "--shared", "reports/q3", "--", "true").wantCode(t, exitHeld, "a new reader while a writer waits")
	r1.release(t)
	time.Sleep(200 * time.Millisecond)
	if writer.granted() {
		t.Fatal("the writer got in beside a reader")
	}
	r2.release(t)
	writer.waitGranted(t, 10*time.Second)
	if st := runCLI(t, env, "status", "reports/q3").json(t); st.Mode != "exclusive" || st.Holders != 1 {
		t.Fatalf("status of the writer %+v", st)
	}
	writer.release(t)
}

// Leader election: status names the leader by its label, by default
// "HOSTNAME pid PID" of its candado lock; a candidate refused sees it too.
func TestCLIHolderLabel(t *testing.T) {
	env := startI15(t)
	leader := holdLock(t, env, "leader/billing", "--holder", "billing eu-1")
	if st := runCLI(t, env, "status", "leader/billing").json(t); st.Holder != "billing eu-1" {
		t.Fatalf("status %+v", st)
	}
	r := runCLI(t, env, "acquire", "--wait", "200ms", "--holder", "billing eu-2", "leader/billing").wantCode(t, exitHeld, "a candidate")
	if j := r.json(t); j.Holder != "billing eu-1" {
		t.Fatalf("the candidate's refusal printed %+v", j)
	}
	rows := runCLI(t, env, "status", "--prefix", "leader/").wantCode(t, 0, "status --prefix").stdout
	if !strings.Contains(rows, `"holder":"billing eu-1"`) {
		t.Fatalf("status --prefix printed %s", rows)
	}
	leader.release(t)

	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	out := runCLI(t, env, "lock", "leader/default", "--", "sh", "-c", `echo "$PPID"; "$0" status "$CANDADO_LOCK"`, candadoBin(t)).wantCode(t, 0, "lock with the default label").stdout
	pidLine, statusLine, _ := strings.Cut(out, "\n")
	pid, err := strconv.Atoi(pidLine)
	if err != nil {
		t.Fatalf("command printed %q", out)
	}
	st := cliResult{stdout: statusLine}.json(t)
	if want := processHolder(func() (string, error) { return host, nil }, pid); st.Holder != want {
		t.Fatalf("default holder %q, want %q", st.Holder, want)
	}
}

// --lock-delay: a lease that expires keeps the lock from everyone for the
// delay (73, with delay_left_ms); a waiter gets it after; a release ends
// the delay at once.
func TestCLILockDelay(t *testing.T) {
	env := startI15(t)
	a := runCLI(t, env, "acquire", "--ttl", "300ms", "--lock-delay", "2s", "nfs/export").wantCode(t, 0, "acquire with a lock-delay").json(t)
	time.Sleep(500 * time.Millisecond) // the lease expires: nothing heartbeats it
	r := runCLI(t, env, "acquire", "nfs/export").wantCode(t, exitHeld, "acquire during the delay")
	if j := r.json(t); j.DelayLeftMs <= 0 || j.DelayLeftMs > 2000 || j.State != 0 {
		t.Fatalf("refusal during the delay printed %+v", j)
	}
	w := runCLI(t, env, "acquire", "--wait", "10s", "nfs/export").wantCode(t, 0, "acquire waiting out the delay")
	if w.took < time.Second {
		t.Fatalf("granted after %v, within the delay", w.took)
	}
	if j := w.json(t); j.Fence <= a.Fence {
		t.Fatalf("fence %d after %d", j.Fence, a.Fence)
	}

	b := runCLI(t, env, "acquire", "--ttl", "10s", "--lock-delay", "5s", "nfs/other").wantCode(t, 0, "acquire").json(t)
	runCLI(t, env, "release", "--owner", *b.Owner, "nfs/other").wantCode(t, 0, "release")
	runCLI(t, env, "acquire", "nfs/other").wantCode(t, 0, "acquire after a release: no delay")
}
