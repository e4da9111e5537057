package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	cliBuild    sync.Once
	cliBinDir   string
	cliBinPath  string
	cliBuildErr error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if cliBinDir != "" {
		os.RemoveAll(cliBinDir)
	}
	os.Exit(code)
}

// candadoBin builds the command once for all CLI tests.
func candadoBin(t *testing.T) string {
	t.Helper()
	cliBuild.Do(func() {
		cliBinDir, cliBuildErr = os.MkdirTemp("", "candado-cli-test-")
		if cliBuildErr != nil {
			return
		}
		cliBinPath = filepath.Join(cliBinDir, "candado")
		out, err := exec.Command("go", "build", "-o", cliBinPath, ".").CombinedOutput()
		if err != nil {
			cliBuildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if cliBuildErr != nil {
		t.Fatal(cliBuildErr)
	}
	return cliBinPath
}

// cliEnv is the environment of a client command talking to server base:
// nothing inherited from the test's own CANDADO_* variables.
func cliEnv(base string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CANDADO_") {
			env = append(env, kv)
		}
	}
	return append(append(env, "CANDADO_SERVER="+base), extra...)
}

type cliResult struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// runCLI runs the binary to completion (at most 30 s) and returns its output and exit code.
func runCLI(t *testing.T, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, candadoBin(t), args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := cliResult{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		r.code = ee.ExitCode()
	default:
		t.Fatalf("candado %q: %v\nstderr: %s", args, err, r.stderr)
	}
	return r
}

// wantCode fails the test unless r exited with code.
func (r cliResult) wantCode(t *testing.T, code int, what string) cliResult {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", what, r.code, code, r.stdout, r.stderr)
	}
	return r
}

type lockJSON struct {
	ID          string      `json:"id"`
	State       int         `json:"state"`
	Owner       *string     `json:"owner"`
	Fence       int64       `json:"fence"`
	TTLms       int64       `json:"ttl_ms"`
	Holder      string      `json:"holder"`
	Mode        string      `json:"mode"`
	Limit       int         `json:"limit"`
	Holders     int         `json:"holders"`
	Waiters     int         `json:"waiters"`
	DelayLeftMs int64       `json:"delay_left_ms"`
	Leases      []leaseJSON `json:"leases"`
}

type leaseJSON struct {
	Fence  int64  `json:"fence"`
	TTLms  int64  `json:"ttl_ms"`
	Holder string `json:"holder"`
	Mode   string `json:"mode"`
}

// json decodes stdout, which must be exactly one JSON object on one line.
func (r cliResult) json(t *testing.T) lockJSON {
	t.Helper()
	out := strings.TrimSuffix(r.stdout, "\n")
	if out == "" || strings.Contains(out, "\n") {
		t.Fatalf("stdout is not one line of JSON: %q", r.stdout)
	}
	var v lockJSON
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("stdout %q: %v", out, err)
	}
	return v
}

// startLock starts "candado lock" without waiting for it.
type lockProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan struct{}
	code   int
}

func startLock(t *testing.T, env []string, args ...string) *lockProc {
	t.Helper()
	cmd := exec.Command(candadoBin(t), append([]string{"lock"}, args...)...)
	cmd.Env = env
	p := &lockProc{cmd: cmd, stderr: new(bytes.Buffer), done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		err := cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			p.code = ee.ExitCode()
		default:
			p.code = -1
		}
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits up to d for the process to exit and returns its exit code.
func (p *lockProc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(d):
		t.Fatalf("candado lock still running after %v; stderr: %s", d, p.stderr)
		return 0
	}
}

// waitFile waits until path exists with some content and returns it.
func waitFile(t *testing.T, path string, d time.Duration) string {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %v", path, d)
		}
	}
}

func TestCLIHelp(t *testing.T) {
	env := cliEnv("http://127.0.0.1:1", "CANDADO_AUTH_TOKEN=top-secret-token", "CANDADO_OWNER=secret-owner")
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"},
		{"serve", "--help"}, {"help", "serve"},
		{"lock", "--help"}, {"lock", "-h"}, {"help", "lock"},
		{"acquire", "--help"}, {"release", "--help"}, {"heartbeat", "--help"}, {"status", "--help"},
		{"acquire", "name", "--help"},
	} {
		r := runCLI(t, env, args...).wantCode(t, 0, strings.Join(args, " "))
		want := "usage: candado"
		for _, a := range args {
			if a != "help" && !strings.HasPrefix(a, "-") && a != "name" {
				want += " " + a
			}
		}
		if !strings.Contains(r.stdout, want) {
			t.Errorf("candado %s: stdout lacks %q:\n%s", strings.Join(args, " "), want, r.stdout)
		}
		if strings.Contains(r.stdout+r.stderr, "top-secret-token") || strings.Contains(r.stdout+r.stderr, "secret-owner") {
			t.Errorf("candado %s: help prints a secret from the environment", strings.Join(args, " "))
		}
	}
	// The lock help documents its environment and exit codes.
	r := runCLI(t, env, "lock", "--help")
	for _, s := range []string{"CANDADO_FENCE", "CANDADO_OWNER", "CANDADO_LOCK", "--grace", "75", "73", "69", "65", "78",
		"--holder", "--limit", "--shared", "--lock-delay", "HOSTNAME pid PID"} {
		if !strings.Contains(r.stdout, strings.TrimPrefix(s, "-")) {
			t.Errorf("lock --help does not mention %s", s)
		}
	}

	// The top help documents every exit code of the client commands.
	r = runCLI(t, env, "--help")
	for _, s := range []string{"\n  64 ", "\n  65 ", "\n  69 ", "\n  73 ", "\n  74 ", "\n  75 ", "\n  77 ", "\n  78 "} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("--help does not list exit code %s", strings.TrimSpace(s))
		}
	}
	for _, cmd := range []string{"acquire", "status"} {
		r := runCLI(t, env, cmd, "--help")
		for _, s := range []string{"holder", "limit"} {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("%s --help does not mention %s", cmd, s)
			}
		}
	}

	// Usage errors exit 64 with a hint on stderr.
	for _, args := range [][]string{
		{"frobnicate"}, {"acquire"}, {"status", "--bogus", "x"}, {"status", "x", "y"},
		{"lock", "x"}, {"lock", "x", "--"}, {"release", "x"}, {"lock", "--ttl", "soon", "x", "--", "true"},
		{"serve", "extra"},
		{"lock", "--limit", "-1", "x", "--", "true"}, {"lock", "--limit", "1001", "x", "--", "true"},
		{"lock", "--shared", "--limit", "2", "x", "--", "true"}, {"lock", "--lock-delay", "-1s", "x", "--", "true"},
		{"acquire", "--limit", "many", "x"}, {"acquire", "--shared", "--limit", "3", "x"}, {"status", "--limit", "3", "x"},
	} {
		r := runCLI(t, cliEnv("http://127.0.0.1:1"), args...).wantCode(t, exitUsage, strings.Join(args, " "))
		if r.stderr == "" || r.stdout != "" {
			t.Errorf("candado %s: stdout %q stderr %q", strings.Join(args, " "), r.stdout, r.stderr)
		}
	}
}

func TestCLIScriptCommands(t *testing.T) {
	s := startServer(t, candadoBin(t))
	env := cliEnv(s.base)

	a := runCLI(t, env, "acquire", "--ttl", "10s", "orders/42").wantCode(t, 0, "acquire").json(t)
	if a.ID != "orders/42" || a.State != 1 || a.Owner == nil || len(*a.Owner) != 32 || a.Fence <= 0 || a.TTLms != 10000 {
		t.Fatalf("acquire printed %+v", a)
	}
	owner := *a.Owner

	// Held by someone else: 73, and the current lease (without owner) on stdout.
	h := runCLI(t, env, "acquire", "orders/42", "--wait", "100ms").wantCode(t, exitHeld, "second acquire")
	if j := h.json(t); j.State != 1 || j.Fence != a.Fence || j.Owner != nil {
		t.Fatalf("held printed %+v", j)
	}
	if !strings.Contains(h.stderr, "held") {
		t.Fatalf("held stderr: %s", h.stderr)
	}
	if h.took < 100*time.Millisecond {
		t.Fatalf("second acquire did not wait: %v", h.took)
	}

	st := runCLI(t, env, "status", "orders/42").wantCode(t, 0, "status").json(t)
	if st.State != 1 || st.Fence != a.Fence || st.Owner != nil || st.TTLms <= 0 || st.TTLms > 10000 {
		t.Fatalf("status printed %+v", st)
	}

	hb := runCLI(t, env, "heartbeat", "orders/42", "--owner", owner, "--ttl", "20s").wantCode(t, 0, "heartbeat").json(t)
	if hb.State != 1 || hb.Fence != a.Fence || hb.TTLms != 20000 {
		t.Fatalf("heartbeat printed %+v", hb)
	}
	runCLI(t, env, "heartbeat", "orders/42", "--owner", "someone-else").wantCode(t, exitNotHeld, "heartbeat by another owner")
	runCLI(t, env, "release", "orders/42", "--owner", "someone-else").wantCode(t, exitNotHeld, "release by another owner")

	// CANDADO_OWNER is the default owner.
	rel := runCLI(t, append(env, "CANDADO_OWNER="+owner), "release", "orders/42").wantCode(t, 0, "release").json(t)
	if rel.State != 0 || rel.Fence != a.Fence {
		t.Fatalf("release printed %+v", rel)
	}
	if st := runCLI(t, env, "status", "orders/42").wantCode(t, 0, "status after release").json(t); st.State != 0 || st.TTLms != 0 {
		t.Fatalf("status after release %+v", st)
	}
	runCLI(t, env, "heartbeat", "orders/42", "--owner", owner).wantCode(t, exitNotHeld, "heartbeat after release")

	// A chosen owner makes acquire idempotent; --wait outlasts a short lease.
	b := runCLI(t, env, "acquire", "--owner", "script-1", "--ttl", "700ms", "jobs/x").wantCode(t, 0, "acquire with owner").json(t)
	if b.Owner == nil || *b.Owner != "script-1" {
		t.Fatalf("acquire --owner printed %+v", b)
	}
	if again := runCLI(t, env, "acquire", "--owner", "script-1", "--ttl", "700ms", "jobs/x").wantCode(t, 0, "repeated acquire").json(t); again.Fence != b.Fence {
		t.Fatalf("repeated acquire changed the fence: %d then %d", b.Fence, again.Fence)
	}
	w := runCLI(t, env, "acquire", "--wait", "5s", "jobs/x")
	if j := w.wantCode(t, 0, "acquire --wait").json(t); j.Fence <= b.Fence {
		t.Fatalf("fence %d after %d", j.Fence, b.Fence)
	}

	// Bad requests are usage errors.
	runCLI(t, env, "status", "a//b").wantCode(t, exitUsage, "bad lock name")
	runCLI(t, env, "acquire", "--ttl", "1000h", "x").wantCode(t, exitUsage, "ttl above the server's maximum")
}

func TestCLIUnavailableAndUnauthorized(t *testing.T) {
	bin := candadoBin(t)
	dead := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	r := runCLI(t, cliEnv(dead), "status", "--timeout", "300ms", "x").wantCode(t, exitUnavailable, "status, no server")
	if r.took > 5*time.Second {
		t.Fatalf("gave up after %v with --timeout 300ms", r.took)
	}
	runCLI(t, cliEnv("http://127.0.0.1:1"), "acquire", "--server", dead, "--timeout", "300ms", "x").wantCode(t, exitUnavailable, "acquire, no server")
	runCLI(t, cliEnv(dead), "lock", "--timeout", "300ms", "x", "--", "true").wantCode(t, exitUnavailable, "lock, no server")

	s := startServer(t, bin, "CANDADO_AUTH_TOKEN=s3cret")
	runCLI(t, cliEnv(s.base), "status", "x").wantCode(t, exitNoPerm, "no token")
	runCLI(t, cliEnv(s.base, "CANDADO_AUTH_TOKEN=wrong"), "status", "x").wantCode(t, exitNoPerm, "wrong token")
	runCLI(t, cliEnv(s.base, "CANDADO_AUTH_TOKEN=s3cret"), "status", "x").wantCode(t, 0, "token from the environment")
	runCLI(t, cliEnv(s.base), "status", "--token", "s3cret", "x").wantCode(t, 0, "--token")
	runCLI(t, cliEnv(s.base, "CANDADO_AUTH_TOKEN=s3cret"), "lock", "x", "--", "true").wantCode(t, 0, "lock with a token")
}

// Commands run under one lock never overlap, and see increasing fences.
func TestCLILockRunsCommandsOneAtATime(t *testing.T) {
	s := startServer(t, candadoBin(t))
	env := cliEnv(s.base)
	log := filepath.Join(t.TempDir(), "log")
	const script = `echo "$1 start $(date +%s%N) $CANDADO_FENCE" >> "$2"; sleep 0.3; echo "$1 end $(date +%s%N)" >> "$2"`
	const n = 3
	procs := make([]*lockProc, n)
	for i := range procs {
		procs[i] = startLock(t, env, "--ttl", "5s", "--wait", "20s", "shared", "--", "sh", "-c", script, "sh", strconv.Itoa(i), log)
	}
	for i, p := range procs {
		if code := p.wait(t, 30*time.Second); code != 0 {
			t.Fatalf("lock %d exited %d: %s", i, code, p.stderr)
		}
	}

	type interval struct {
		start, end, fence int64
	}
	runs := map[string]*interval{}
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 {
			t.Fatalf("bad line %q", sc.Text())
		}
		ts, err := strconv.ParseInt(fs[2], 10, 64)
		if err != nil {
			t.Fatalf("line %q: %v (does date support %%N?)", sc.Text(), err)
		}
		iv := runs[fs[0]]
		if iv == nil {
			iv = &interval{}
			runs[fs[0]] = iv
		}
		switch {
		case fs[1] == "start" && len(fs) == 4:
			iv.start = ts
			if iv.fence, err = strconv.ParseInt(fs[3], 10, 64); err != nil {
				t.Fatalf("line %q: fence: %v", sc.Text(), err)
			}
		case fs[1] == "end":
			iv.end = ts
		default:
			t.Fatalf("bad line %q", sc.Text())
		}
	}
	if len(runs) != n {
		t.Fatalf("%d commands ran, want %d", len(runs), n)
	}
	ivs := make([]*interval, 0, n)
	for id, iv := range runs {
		if iv.start == 0 || iv.end < iv.start {
			t.Fatalf("command %s: start %d end %d", id, iv.start, iv.end)
		}
		ivs = append(ivs, iv)
	}
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].start < ivs[j].start })
	for i := 1; i < n; i++ {
		if ivs[i].start <= ivs[i-1].end {
			t.Fatalf("commands overlap: [%d, %d] and [%d, %d]", ivs[i-1].start, ivs[i-1].end, ivs[i].start, ivs[i].end)
		}
		if ivs[i].fence <= ivs[i-1].fence {
			t.Fatalf("fence %d after %d", ivs[i].fence, ivs[i-1].fence)
		}
	}
}

func TestCLILockExitCodes(t *testing.T) {
	s := startServer(t, candadoBin(t))
	env := cliEnv(s.base)
	runCLI(t, env, "lock", "x", "--", "sh", "-c", "exit 7").wantCode(t, 7, "exit 7")
	runCLI(t, env, "lock", "x", "--", "true").wantCode(t, 0, "true")
	runCLI(t, env, "lock", "x", "--", "sh", "-c", "kill -KILL $$").wantCode(t, 128+9, "killed by SIGKILL")
	runCLI(t, env, "lock", "x", "--", "/nonexistent/command").wantCode(t, exitNotFound, "command not found")
	noexec := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runCLI(t, env, "lock", "x", "--", noexec).wantCode(t, exitCannotExec, "command not executable")
	// Every one of them released the lock.
	if st := runCLI(t, env, "status", "x").wantCode(t, 0, "status").json(t); st.State != 0 {
		t.Fatalf("lock still held after the commands: %+v", st)
	}

	// Held by another owner after --wait: 73, and the command does not run.
	a := runCLI(t, env, "acquire", "--ttl", "10s", "x").wantCode(t, 0, "acquire").json(t)
	marker := filepath.Join(t.TempDir(), "ran")
	r := runCLI(t, env, "lock", "--wait", "200ms", "x", "--", "touch", marker).wantCode(t, exitHeld, "lock on a held lock")
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the command ran without the lock")
	}
	if r.took < 200*time.Millisecond {
		t.Fatalf("lock did not wait: %v", r.took)
	}
	runCLI(t, env, "release", "--owner", *a.Owner, "x").wantCode(t, 0, "release")
}

// Flags go before or after NAME; the command sees the lease in its environment.
func TestCLILockFlagsAndEnvironment(t *testing.T) {
	bin := candadoBin(t)
	s := startServer(t, bin)
	const script = `echo "$CANDADO_LOCK $CANDADO_FENCE $CANDADO_OWNER $CANDADO_SERVER $1"; "$0" status "$CANDADO_LOCK"`
	for _, tc := range []struct {
		server string
		args   []string
	}{
		{s.base, []string{"--ttl", "7s", "jobs/a", "--", "sh", "-c", script, bin, "x y"}},
		{s.base, []string{"jobs/a", "--ttl", "7s", "--", "sh", "-c", script, bin, "x y"}},
		// --server wins over CANDADO_SERVER, and "--" is optional.
		{"http://127.0.0.1:1", []string{"--server", s.base, "jobs/a", "--ttl=7s", "sh", "-c", script, bin, "x y"}},
	} {
		args := tc.args
		r := runCLI(t, cliEnv(tc.server), append([]string{"lock"}, args...)...).wantCode(t, 0, strings.Join(args, " "))
		first, second, _ := strings.Cut(r.stdout, "\n")
		f := strings.Fields(first)
		if len(f) != 6 || f[0] != "jobs/a" || len(f[2]) != 32 || f[3] != s.base || f[4] != "x" || f[5] != "y" {
			t.Fatalf("%q: command saw %q", args, first)
		}
		st := cliResult{stdout: second}.json(t)
		if strconv.FormatInt(st.Fence, 10) != f[1] || st.State != 1 || st.TTLms <= 5000 || st.TTLms > 7000 {
			t.Fatalf("%q: fence %s, status %+v", args, f[1], st)
		}
	}
}

// SIGTERM, SIGINT and SIGHUP sent to candado lock reach the command.
func TestCLILockForwardsSignals(t *testing.T) {
	s := startServer(t, candadoBin(t))
	env := cliEnv(s.base)
	const script = `trap 'echo "$3" > "$1"; exit 3' $3; echo ready > "$2"; while :; do sleep 0.05; done`
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		dir := t.TempDir()
		marker, ready := filepath.Join(dir, "marker"), filepath.Join(dir, "ready")
		name := sigName[sig]
		p := startLock(t, env, "sig", "--", "sh", "-c", script, "sh", marker, ready, name)
		waitFile(t, ready, 10*time.Second)
		if err := p.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		if code := p.wait(t, 10*time.Second); code != 3 {
			t.Fatalf("%v: exit %d, want the command's 3; stderr: %s", sig, code, p.stderr)
		}
		if got := waitFile(t, marker, time.Second); got != name {
			t.Fatalf("%v: the command trapped %q", sig, got)
		}
		if st := runCLI(t, env, "status", "sig").json(t); st.State != 0 {
			t.Fatalf("%v: lock not released: %+v", sig, st)
		}
	}
}

var sigName = map[syscall.Signal]string{syscall.SIGTERM: "TERM", syscall.SIGINT: "INT", syscall.SIGHUP: "HUP"}

// A lost lease stops the command (SIGTERM, then SIGKILL after --grace) and exits 75.
func TestCLILockLostLeaseStopsCommand(t *testing.T) {
	s := startServer(t, candadoBin(t))
	env := cliEnv(s.base)
	for _, tc := range []struct {
		name, trap string
		code       int // of the command
	}{
		{"stops on SIGTERM", `echo term > "$1"; exit 0`, 0},
		{"ignores SIGTERM", `echo term > "$1"`, 128 + 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			marker, ownerFile := filepath.Join(dir, "marker"), filepath.Join(dir, "owner")
			script := `trap '` + tc.trap + `' TERM; echo "$CANDADO_OWNER" > "$2"; while :; do sleep 0.05; done`
			const grace = 700 * time.Millisecond
			p := startLock(t, env, "--ttl", "1s", "--grace", grace.String(), "lost", "--", "sh", "-c", script, "sh", marker, ownerFile)
			owner := waitFile(t, ownerFile, 10*time.Second)

			// Someone with the owner token takes the lease away; the next heartbeat is refused.
			if code, env := getJSON(t, s.base+"/release/lost?owner="+url.QueryEscape(owner)); code != 200 {
				t.Fatalf("release: %d %v", code, env)
			}
			released := time.Now()
			code := p.wait(t, 10*time.Second)
			took := time.Since(released)
			if code != exitLeaseLost {
				t.Fatalf("exit %d, want %d; stderr: %s", code, exitLeaseLost, p.stderr)
			}
			if got := waitFile(t, marker, time.Second); got != "term" {
				t.Fatalf("marker %q", got)
			}
			if !strings.Contains(p.stderr.String(), "lease lost") {
				t.Fatalf("stderr does not say why: %s", p.stderr)
			}
			// Seen at the next heartbeat (every TTL/3), plus the grace if the command ignores SIGTERM.
			limit := time.Second
			if tc.code != 0 {
				limit += grace
				if took < grace {
					t.Fatalf("killed %v after the loss, before the %v grace", took, grace)
				}
			}
			if took > limit {
				t.Fatalf("exited %v after the loss, want within %v", took, limit)
			}
		})
	}
}
