package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildCandado builds this command once per test binary run.
func buildCandado(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "candado")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type server struct {
	cmd    *exec.Cmd
	base   string
	stderr *syncBuffer
	exited chan error
}

func startServer(t *testing.T, bin string, env ...string) *server {
	t.Helper()
	port := freePort(t)
	return startServerEnv(t, bin, port, append([]string{"PORT=", "CANDADO_PORT=" + fmt.Sprint(port)}, env...)...)
}

// startServerEnv starts the server listening on port, with env on top of
// the test's environment without its CANDADO_* and KUBERNETES_* variables.
func startServerEnv(t *testing.T, bin string, port int, env ...string) *server {
	t.Helper()
	cmd := exec.Command(bin)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CANDADO_") && !strings.HasPrefix(kv, "KUBERNETES_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, base: fmt.Sprintf("http://127.0.0.1:%d", port), stderr: stderr, exited: make(chan error, 1)}
	go func() { s.exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-s.exited })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if resp, err := http.Get(s.base + "/healthz"); err == nil {
			resp.Body.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %s", stderr.String())
		}
	}
}

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var env map[string]any
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
	return resp.StatusCode, env
}

func TestSIGTERMAnswersWaitersAndExitsZero(t *testing.T) {
	s := startServer(t, buildCandado(t))
	if code, _ := getJSON(t, s.base+"/acquire/busy?ttl=1m"); code != 200 {
		t.Fatalf("acquire = %d", code)
	}
	type res struct {
		code int
		env  map[string]any
	}
	waiters := make(chan res, 3)
	for i := 0; i < 3; i++ {
		go func() {
			code, env := getJSON(t, s.base+"/acquire/busy?wait=30s")
			waiters <- res{code, env}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		r := <-waiters
		if r.code != 503 || r.env["code"] != "unavailable" {
			t.Fatalf("waiter answered %d %v, want 503 unavailable", r.code, r.env)
		}
	}
	select {
	case err := <-s.exited:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, s.stderr)
		}
		s.exited <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after SIGTERM")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
}

func TestBadConfigStopsStartUp(t *testing.T) {
	bin := buildCandado(t)
	for _, env := range []string{"CANDADO_DEFAULT_TTL=forever", "CANDADO_REDIS_URL_FILE=/nonexistent/secret", "CANDADO_MAX_TTL=0s"} {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), env)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Fatalf("%s: exit %v, want non-zero", env, err)
		}
		name, _, _ := strings.Cut(env, "=")
		if !strings.Contains(string(out), name) {
			t.Fatalf("%s: message does not name %s: %s", env, name, out)
		}
	}
}

func TestUnreachableRedisAtStartIsNotFatal(t *testing.T) {
	s := startServer(t, buildCandado(t), fmt.Sprintf("CANDADO_REDIS_URL=redis://127.0.0.1:%d", freePort(t)))
	if code, _ := getJSON(t, s.base+"/readyz"); code != 503 {
		t.Fatalf("/readyz = %d with Redis down", code)
	}
	start := time.Now()
	if code, env := getJSON(t, s.base+"/acquire/x"); code != 503 || env["success"] != false {
		t.Fatalf("acquire = %d %v", code, env)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("503 took %v", d)
	}
	if code, _ := getJSON(t, s.base+"/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
}

// syncBuffer is a strings.Builder that the process's output goroutine and
// the test may use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
