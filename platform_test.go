//go:build platform

// Platform build checks: these tests redo, with nothing but Go and the module
// cache, what the OpenFaaS golang-middleware image build and the Knative
// Functions (func-go) build do with this repository, then send one request to
// the binary each produces. See PLATFORMS.md, "Checking the builds without
// the platforms". Run them with `make platform` (or `make test`):
//
//	go test -tags platform -run '^TestPlatform' -count=1 -v .
package function

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// openfaasMain is the golang-middleware template's main.go
// (openfaas/golang-http-template, template/golang-middleware/main.go) with one
// change: it listens on 127.0.0.1:$PLATFORM_CHECK_PORT instead of :8082, so
// that parallel runs and other services do not collide.
const openfaasMain = `package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"handler/function"
)

var (
	acceptingConnections int32
)

const defaultTimeout = 10 * time.Second

func main() {
	readTimeout := parseIntOrDurationValue(os.Getenv("read_timeout"), defaultTimeout)
	writeTimeout := parseIntOrDurationValue(os.Getenv("write_timeout"), defaultTimeout)

	s := &http.Server{
		Addr:           fmt.Sprintf("127.0.0.1:%s", os.Getenv("PLATFORM_CHECK_PORT")),
		ReadTimeout:    readTimeout,
		WriteTimeout:   writeTimeout,
		MaxHeaderBytes: 1 << 20, // Max header of 1MB
	}

	http.HandleFunc("/", function.Handle)

	listenUntilShutdown(s, writeTimeout)
}

func listenUntilShutdown(s *http.Server, shutdownTimeout time.Duration) {
	idleConnsClosed := make(chan struct{})
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)

		<-sig

		log.Printf("[entrypoint] SIGTERM received.. shutting down server in %s\n", shutdownTimeout.String())

		<-time.Tick(shutdownTimeout)

		if err := s.Shutdown(context.Background()); err != nil {
			log.Printf("[entrypoint] Error in Shutdown: %v", err)
		}

		log.Printf("[entrypoint] No new connections allowed. Exiting in: %s\n", shutdownTimeout.String())

		<-time.Tick(shutdownTimeout)

		close(idleConnsClosed)
	}()

	// Run the HTTP server in a separate go-routine.
	go func() {
		if err := s.ListenAndServe(); err != http.ErrServerClosed {
			log.Printf("[entrypoint] Error ListenAndServe: %v", err)
			close(idleConnsClosed)
		}
	}()

	atomic.StoreInt32(&acceptingConnections, 1)

	<-idleConnsClosed
}

func parseIntOrDurationValue(val string, fallback time.Duration) time.Duration {
	if len(val) > 0 {
		parsedVal, parseErr := strconv.Atoi(val)
		if parseErr == nil && parsedVal >= 0 {
			return time.Duration(parsedVal) * time.Second
		}
	}

	duration, durationErr := time.ParseDuration(val)
	if durationErr != nil {
		return fallback
	}
	return duration
}
`

// The template's own main module and workspace.
const (
	openfaasGoMod  = "module handler\n\ngo 1.24.0\n"
	openfaasGoWork = "go 1.24.0\n\nuse (\n\t.\n\t./function\n)\n"
)

// knativeGoMod is the scaffolding module func generates in .func/build
// (knative/func templates/go/scaffolding/instanced-http/go.mod), which
// requires the function's module through a replace to its source.
const knativeGoMod = `module s

go 1.24.0

require handler/function v0.0.0-00010101000000-000000000000

replace handler/function => ./f
`

// knativeMain stands in for the func-go runtime's http.Start(f.New()): it
// listens on LISTEN_ADDRESS first, serves /health/readiness and
// /health/liveness from Ready and Alive, sends everything else to Handle,
// calls Start in a goroutine while already serving (readiness answers 503
// until Start has returned), and calls Stop on SIGTERM with a 30 s budget.
const knativeMain = `package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	f "handler/function"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		os.Exit(1)
	}
}

func run() error {
	fn := f.New()
	addr := os.Getenv("LISTEN_ADDRESS")
	if addr == "" {
		addr = "[::]:8080"
	}
	var started atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/health/readiness", func(w http.ResponseWriter, r *http.Request) {
		if !started.Load() {
			http.Error(w, "function not yet started", http.StatusServiceUnavailable)
			return
		}
		ok, err := fn.Ready(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if !ok {
			http.Error(w, "function not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "READY")
	})
	mux.HandleFunc("/health/liveness", func(w http.ResponseWriter, r *http.Request) {
		ok, err := fn.Alive(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if !ok {
			http.Error(w, "function not alive", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ALIVE")
	})
	mux.HandleFunc("/", fn.Handle)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	startErr := make(chan error, 1)
	go func() {
		cfg := map[string]string{}
		for _, kv := range os.Environ() {
			if k, v, ok := strings.Cut(kv, "="); ok {
				cfg[k] = v
			}
		}
		if err := fn.Start(ctx, cfg); err != nil {
			startErr <- err
			return
		}
		started.Store(true)
	}()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-serveErr:
		return err
	case err := <-startErr:
		return fmt.Errorf("start: %w", err)
	case <-sigs:
	}
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer stopCancel()
	if err := fn.Stop(stopCtx); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	if err := srv.Shutdown(stopCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
`

// TestPlatformOpenFaaS lays out a build context as faas-cli does for
// stack.yml (template golang-middleware, the handler folder's contents under
// function/, each configuration.copy path under function/ too), then runs the
// template Dockerfile's steps: the gofmt check, `go test ./... -cover` in
// function/, `go build`, and sends one request to the binary.
func TestPlatformOpenFaaS(t *testing.T) {
	root := moduleRoot(t)
	stack := readStack(t, root)
	if stack.lang != "golang-middleware" {
		t.Fatalf("stack.yml: lang %q, want golang-middleware", stack.lang)
	}

	ctxDir := t.TempDir()
	writeFile(t, filepath.Join(ctxDir, "main.go"), openfaasMain)
	writeFile(t, filepath.Join(ctxDir, "go.mod"), openfaasGoMod)
	writeFile(t, filepath.Join(ctxDir, "go.work"), openfaasGoWork)

	// faas-cli's CreateBuildContext: overlay the handler folder's entries
	// (but "build" and "template") into function/, then copy each extra
	// path to function/<path>.
	handlerSrc := filepath.Join(root, filepath.FromSlash(stack.handler))
	handlerDst := filepath.Join(ctxDir, "function")
	entries, err := os.ReadDir(handlerSrc)
	if err != nil {
		t.Fatalf("reading handler %s: %v", stack.handler, err)
	}
	for _, e := range entries {
		if e.Name() == "build" || e.Name() == "template" {
			continue
		}
		copyTree(t, filepath.Join(handlerSrc, e.Name()), filepath.Join(handlerDst, e.Name()), nil)
	}
	for _, p := range stack.copy {
		src := filepath.Join(root, filepath.FromSlash(p))
		rel, err := filepath.Rel(root, src)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			t.Fatalf("stack.yml: configuration.copy %q is outside the project or is all of it", p)
		}
		copyTree(t, src, filepath.Join(handlerDst, rel), nil)
	}

	env := buildEnv("CGO_ENABLED=0", "GO111MODULE=on", "GOPROXY=off", "GOFLAGS=")

	// RUN test -z "$(gofmt -l $(find . -type f -name '*.go' -not -path "./vendor/*" -not -path "./function/vendor/*"))"
	var goFiles []string
	err = filepath.WalkDir(ctxDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(ctxDir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() && (rel == "vendor" || rel == "function/vendor") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") {
			goFiles = append(goFiles, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if out := run(t, ctxDir, env, gofmtPath(t), append([]string{"-l"}, goFiles...)...); strings.TrimSpace(out) != "" {
		t.Fatalf("gofmt -l lists files; the image build would stop here:\n%s", out)
	}

	// WORKDIR function; RUN mkdir -p static; RUN go test ./... -cover
	if err := os.MkdirAll(filepath.Join(handlerDst, "static"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := runErr(handlerDst, env, goPath(t), "test", "./...", "-cover")
	if err != nil {
		hint := ""
		if strings.Contains(out, "handler/function/function/") {
			hint = "\nhint: faas-cli copies the handler folder's contents to function/ and each configuration.copy path " +
				"to function/<path>, so go.mod lands in function/ and an import of handler/function/function/... " +
				"resolves only if stack.yml's configuration.copy also lists ./function"
		}
		t.Fatalf("go test ./... -cover in function/ (the image build would stop here): %v\n%s%s", err, out, hint)
	}
	t.Logf("go test ./... -cover in function/:\n%s", out)

	// WORKDIR /go/src/handler; RUN go build --ldflags "-s -w" -o handler .
	bin := filepath.Join(ctxDir, "handler")
	run(t, ctxDir, env, goPath(t), "build", "--ldflags", "-s -w", "-o", bin, ".")

	srv := startServer(t, bin, ctxDir, func(port int) []string {
		return []string{"PLATFORM_CHECK_PORT=" + strconv.Itoa(port)}
	}, func(base string) error {
		// No health route of its own: of-watchdog serves /_/health. Any
		// HTTP answer means the server is up.
		resp, err := http.Get(base + "/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	defer srv.kill()

	checkAcquire(t, srv.base+"/acquire/platform-check")
}

// TestPlatformKnative builds the function as func does (a scaffolding main
// module that requires handler/function through a replace to a copy of this
// repository, built with CGO_ENABLED=0), runs it, waits for
// /health/readiness, and sends one request.
func TestPlatformKnative(t *testing.T) {
	// In-process first: Ready must be false before Start has run.
	fn := New()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ok, _ := fn.Ready(ctx); ok {
		t.Fatal("Ready answered true before Start was called")
	}

	root := moduleRoot(t)
	buildDir := t.TempDir()
	writeFile(t, filepath.Join(buildDir, "go.mod"), knativeGoMod)
	writeFile(t, filepath.Join(buildDir, "main.go"), knativeMain)
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(buildDir, "go.sum"), string(sum))
	// The function's source; skip VCS metadata and dot folders (.func, .ci).
	copyTree(t, root, filepath.Join(buildDir, "f"), func(rel string, d fs.DirEntry) bool {
		return d.IsDir() && strings.HasPrefix(d.Name(), ".") && rel != "."
	})

	// func's host builder builds FROM scratch with CGO_ENABLED=0. -mod=mod
	// lets go fill in the scaffolding's requirements, from the module cache
	// only (GOPROXY=off).
	env := buildEnv("CGO_ENABLED=0", "GO111MODULE=on", "GOPROXY=off", "GOSUMDB=off", "GOFLAGS=-mod=mod")
	bin := filepath.Join(buildDir, "fn")
	run(t, buildDir, env, goPath(t), "build", "-o", bin, ".")

	srv := startServer(t, bin, buildDir, func(port int) []string {
		return []string{"LISTEN_ADDRESS=127.0.0.1:" + strconv.Itoa(port)}
	}, func(base string) error {
		resp, err := http.Get(base + "/health/readiness")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readiness: %s", resp.Status)
		}
		return nil
	})
	defer srv.kill()

	resp, err := http.Get(srv.base + "/health/liveness")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("liveness: %s", resp.Status)
	}

	checkAcquire(t, srv.base+"/acquire/platform-check")

	// SIGTERM: Stop runs and the process exits 0 well within func's budget.
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.done:
		if !srv.cmd.ProcessState.Success() {
			t.Fatalf("exit after SIGTERM: %s; output:\n%s", srv.cmd.ProcessState, srv.out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no exit within 15s of SIGTERM; output:\n%s", srv.out.String())
	}
}

// checkAcquire sends GET url and expects a 200 whose JSON says success true.
func checkAcquire(t *testing.T, url string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var env struct {
		Success bool `json:"success"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("GET %s: body is not JSON (%v): %s", url, err, body)
	}
	if !env.Success {
		t.Fatalf("GET %s: success is not true: %s", url, body)
	}
	t.Logf("GET %s: %s %s", url, resp.Status, bytes.TrimSpace(body))
}

type stackInfo struct {
	lang, handler string
	copy          []string
}

// readStack reads what the build needs from stack.yml (functions.candado's
// lang and handler, and configuration.copy). Without a stack.yml it uses the
// values PLATFORMS.md prescribes. The parser covers the plain block style
// that file uses, nothing more.
func readStack(t *testing.T, root string) stackInfo {
	t.Helper()
	def := stackInfo{lang: "golang-middleware", handler: "./function", copy: []string{"./go.mod", "./go.sum"}}
	f, err := os.Open(filepath.Join(root, "stack.yml"))
	if errors.Is(err, fs.ErrNotExist) {
		t.Log("no stack.yml yet: using handler ./function and copy [./go.mod, ./go.sum]")
		return def
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	var info stackInfo
	var path []string // keys of the enclosing mappings
	var indents []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || trimmed == "---" {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if strings.HasPrefix(trimmed, "- ") {
			if strings.Join(path, ".") == "configuration.copy" {
				info.copy = append(info.copy, unquote(strings.TrimSpace(trimmed[2:])))
			}
			continue
		}
		for len(indents) > 0 && indents[len(indents)-1] >= indent {
			indents, path = indents[:len(indents)-1], path[:len(path)-1]
		}
		key, val, ok := strings.Cut(trimmed, ":")
		if !ok {
			continue
		}
		key, val = unquote(strings.TrimSpace(key)), unquote(strings.TrimSpace(val))
		full := strings.Join(append(append([]string(nil), path...), key), ".")
		switch {
		case full == "functions.candado.lang":
			info.lang = val
		case full == "functions.candado.handler":
			info.handler = val
		case full == "configuration.copy" && strings.HasPrefix(val, "["):
			for _, item := range strings.Split(strings.Trim(val, "[]"), ",") {
				if item = unquote(strings.TrimSpace(item)); item != "" {
					info.copy = append(info.copy, item)
				}
			}
		}
		if val == "" {
			indents, path = append(indents, indent), append(path, key)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if info.handler == "" {
		t.Fatal("stack.yml: no functions.candado.handler")
	}
	return info
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

type server struct {
	cmd  *exec.Cmd
	base string
	out  *syncBuffer
	done chan struct{}
}

func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// startServer runs bin on a free loopback port (extraEnv gets the port),
// without CANDADO_* settings so the function uses its in-process Redis, and
// waits until ready(base) succeeds. It retries on a new port if the process
// exits first because the port was taken between picking and binding it.
func startServer(t *testing.T, bin, dir string, extraEnv func(port int) []string, ready func(base string) error) *server {
	t.Helper()
	for attempt := 0; ; attempt++ {
		s, err := tryStart(t, bin, dir, extraEnv, ready)
		if err == nil {
			return s
		}
		if attempt >= 3 || !strings.Contains(s.out.String(), "address already in use") {
			t.Fatalf("%s: %v; output:\n%s", filepath.Base(bin), err, s.out.String())
		}
	}
}

func tryStart(t *testing.T, bin, dir string, extraEnv func(port int) []string, ready func(base string) error) (*server, error) {
	t.Helper()
	port := freePort(t)
	s := &server{
		cmd:  exec.Command(bin),
		base: "http://127.0.0.1:" + strconv.Itoa(port),
		out:  &syncBuffer{},
		done: make(chan struct{}),
	}
	s.cmd.Dir = dir
	s.cmd.Env = append(runEnv(), extraEnv(port)...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.kill)

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.done:
			return s, fmt.Errorf("exited before it was ready (%s)", s.cmd.ProcessState)
		default:
		}
		err := ready(s.base)
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.kill()
			return s, fmt.Errorf("not ready within 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer collects a child's output, written by exec's copying goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// run runs name with args in dir and returns its combined output, failing
// the test (with the output) if it fails.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s (in %s): %v\n%s", filepath.Base(name), strings.Join(args, " "), dir, err, out)
	}
	return out
}

// runErr runs name with args in dir, for at most 8 minutes, and returns its
// combined output.
func runErr(dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// runEnv is this process's environment without the variables that would
// change how the function under test configures itself or how go builds.
func runEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "CANDADO_"), k == "PORT", k == "LISTEN_ADDRESS",
			strings.HasPrefix(k, "GO"), k == "CGO_ENABLED":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// buildEnv is runEnv plus the toolchain pin and the given settings. The go
// build and module caches stay the ones of this machine (GOCACHE, GOMODCACHE
// and GOPATH are taken from `go env` of the test's own toolchain).
func buildEnv(extra ...string) []string {
	env := append(runEnv(), "GOTOOLCHAIN=local", "GOWORK=")
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOROOT"} {
		if v := goEnv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return append(env, extra...)
}

var goEnvCache = map[string]string{}

func goEnv(key string) string {
	if v, ok := goEnvCache[key]; ok {
		return v
	}
	out, err := exec.Command("go", "env", key).Output()
	v := ""
	if err == nil {
		v = strings.TrimSpace(string(out))
	}
	goEnvCache[key] = v
	return v
}

func goPath(t *testing.T) string {
	t.Helper()
	if root := goEnv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not found: %v", err)
	}
	return p
}

func gofmtPath(t *testing.T) string {
	t.Helper()
	p := filepath.Join(filepath.Dir(goPath(t)), "gofmt")
	if _, err := os.Stat(p); err != nil {
		if p, err = exec.LookPath("gofmt"); err != nil {
			t.Fatalf("gofmt not found: %v", err)
		}
	}
	return p
}

// moduleRoot is the directory of this package, the module root.
func moduleRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(wd, "go.mod")); err != nil {
		t.Fatalf("%s is not the module root: %v", wd, err)
	}
	return wd
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies a file or a directory tree; skip, if given, leaves out
// entries (rel is relative to src). Symbolic links are copied as links.
func copyTree(t *testing.T, src, dst string, skip func(rel string, d fs.DirEntry) bool) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if skip != nil && skip(filepath.ToSlash(rel), d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, info.Mode().Perm())
		default:
			return nil // sockets, devices: not part of a build
		}
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}
