//go:build platform

// Platform build checks: these tests redo what the OpenFaaS golang-middleware
// image build and the Knative Functions (func, func-go runtime) build do with
// this repository, run what each produces in the environment its platform
// gives the process, and talk to it over HTTP. Run them with `make platform`
// (or `make test`):
//
//	go test -tags platform -run '^TestPlatform' -count=1 -v .
//
// The builds use the module proxy the machine is set up with (GOPROXY), as
// the platforms' builds do, so they also pass on a machine whose module cache
// is empty. Fixtures (the scaffolding and the stand-in server) are files
// under testdata/.
package function

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"handler/function/function/redistest"
)

// The bearer token the checks configure; any value works.
const platformToken = "platform-check-token"

// TestPlatformOpenFaaS lays out a build context as faas-cli does for
// stack.yml (template golang-middleware: the template's main module and
// go.work, the handler folder's contents under function/, each
// configuration.copy path under function/ too), runs the template
// Dockerfile's build steps (the gofmt check, `go test ./... -cover` in
// function/, `go build`), and runs the result behind a stand-in for the
// template's server (testdata/openfaas/main.go) in the environment OpenFaaS
// gives the function: stack.yml's environment, its secrets as files, the
// service links of the function's own Service.
func TestPlatformOpenFaaS(t *testing.T) {
	root := moduleRoot(t)
	stack := readStack(t, root)
	fn := stack.Functions["candado"]
	if fn.Lang != "golang-middleware" {
		t.Fatalf("stack.yml: lang %q, want golang-middleware", fn.Lang)
	}
	ctxDir := t.TempDir()
	for _, name := range []string{"main.go", "go.mod", "go.work"} {
		copyTree(t, filepath.Join(root, "testdata", "openfaas", name), filepath.Join(ctxDir, name), nil)
	}

	// faas-cli's build context: the handler folder's entries (but "build"
	// and "template") into function/, then each extra path to function/<path>.
	handlerSrc := filepath.Join(root, filepath.FromSlash(fn.Handler))
	handlerDst := filepath.Join(ctxDir, "function")
	entries, err := os.ReadDir(handlerSrc)
	if err != nil {
		t.Fatalf("reading handler %s: %v", fn.Handler, err)
	}
	for _, e := range entries {
		if e.Name() == "build" || e.Name() == "template" {
			continue
		}
		copyTree(t, filepath.Join(handlerSrc, e.Name()), filepath.Join(handlerDst, e.Name()), nil)
	}
	for _, p := range stack.Configuration.Copy {
		src := filepath.Join(root, filepath.FromSlash(p))
		rel, err := filepath.Rel(root, src)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			t.Fatalf("stack.yml: configuration.copy %q is outside the project or is all of it", p)
		}
		copyTree(t, src, filepath.Join(handlerDst, rel), nil)
	}

	env := buildEnv("CGO_ENABLED=0", "GO111MODULE=on", "GOFLAGS=")

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
		t.Fatalf("go test ./... -cover in function/ (the image build would stop here): %v\n%s", err, out)
	}
	t.Logf("go test ./... -cover in function/:\n%s", out)

	// WORKDIR /go/src/handler; RUN go build --ldflags "-s -w" -o handler .
	bin := filepath.Join(ctxDir, "handler")
	run(t, ctxDir, env, goPath(t), "build", "--ldflags", "-s -w", "-o", bin, ".")

	redis := redistest.Start(t)
	secretsDir := t.TempDir() // stands in for /var/openfaas/secrets
	podVars := func(t *testing.T, port int, redisURL string) map[string]string {
		writeFile(t, filepath.Join(secretsDir, "candado-redis-url"), redisURL)
		writeFile(t, filepath.Join(secretsDir, "candado-auth-token"), platformToken)
		for _, s := range fn.Secrets {
			if _, err := os.Stat(filepath.Join(secretsDir, s)); err != nil {
				t.Fatalf("stack.yml lists secret %s, which this check does not know how to fill", s)
			}
		}
		vars := kubernetesVars()
		// faas-netes creates a Service named after the function (port 8080),
		// and its pods get that Service's links: CANDADO_PORT=tcp://...:8080.
		for k, v := range serviceLinks("candado", "10.96.20.20", []servicePort{{"http", 8080}}) {
			vars[k] = v
		}
		for k, v := range fn.Environment {
			vars[k] = strings.Replace(v, "/var/openfaas/secrets", secretsDir, 1)
		}
		// The template image's ENV for of-watchdog; upstream_url names the
		// port the server listens on (8082 in the image, a free one here).
		vars["fprocess"] = "./handler"
		vars["mode"] = "http"
		vars["upstream_url"] = "http://127.0.0.1:" + strconv.Itoa(port)
		return vars
	}
	podEnv := func(t *testing.T, port int, redisURL string, drop ...string) []string {
		vars := podVars(t, port, redisURL)
		for _, k := range drop {
			delete(vars, k)
		}
		return processEnv(t, "openfaas", vars)
	}
	// viaWatchdog runs the function as the template's image does: of-watchdog
	// on the port the checks use, starting ./handler, which serves on
	// upstream_url; set overrides stack.yml's environment.
	watchdog := watchdogBinary(t, root)
	viaWatchdog := func(t *testing.T, set map[string]string) *server {
		return startProcess(t, watchdog, ctxDir, func(port int) []string {
			vars := podVars(t, freePort(t), redis.URL())
			vars["port"] = strconv.Itoa(port)
			vars["TMPDIR"] = t.TempDir() // the watchdog's lock file
			for k, v := range set {
				vars[k] = v
			}
			return processEnv(t, "openfaas (of-watchdog)", vars)
		}, readyAt("/readyz"), true)
	}

	t.Run("stack environment: lock granted", func(t *testing.T) {
		srv := startServer(t, bin, ctxDir, func(port int) []string { return podEnv(t, port, redis.URL()) }, readyAt("/readyz"))
		defer srv.kill()
		checkGranted(t, srv.base, "openfaas/granted")
	})

	t.Run("write_timeout unset: a longer wait is answered before it", func(t *testing.T) {
		// Without read_timeout, write_timeout and exec_timeout the template's
		// server cuts every answer at 10 s (of-watchdog's defaults are 30 s).
		srv := startServer(t, bin, ctxDir, func(port int) []string {
			return podEnv(t, port, redis.URL(), "read_timeout", "write_timeout", "exec_timeout")
		}, readyAt("/readyz"))
		defer srv.kill()
		checkWaitCut(t, srv, "openfaas/wait", 15*time.Second, 10*time.Second)
	})

	t.Run("watch through of-watchdog", func(t *testing.T) {
		// The shortest timeouts whose streams (a fifth shorter: 16 s) still
		// get a keepalive comment (every 15 s).
		timeouts := map[string]string{"read_timeout": "20s", "write_timeout": "20s", "exec_timeout": "20s"}
		srv := viaWatchdog(t, timeouts)
		defer srv.kill()
		t.Run("events at once, keepalive, clean end before write_timeout, Last-Event-ID", func(t *testing.T) {
			checkWatchStream(t, srv.base, "openfaas/watch", 20*time.Second, srv.out)
		})
		t.Run("without Accept: text/event-stream: a prompt 400", func(t *testing.T) {
			checkWatchNeedsAccept(t, srv.base, "openfaas/watch-accept")
		})
		t.Run("watchers that leave early give their max_inflight slots back", func(t *testing.T) {
			n := 12
			if m, err := strconv.Atoi(fn.Environment["max_inflight"]); err == nil && m+2 > n {
				n = m + 2
			}
			checkWatchersLeaving(t, srv.base, "openfaas/watch-leave", n)
		})
	})

	t.Run("empty Redis secret: never granted", func(t *testing.T) {
		srv := startServer(t, bin, ctxDir, func(port int) []string { return podEnv(t, port, "") }, answers("/readyz"))
		defer srv.kill()
		checkNeverGranted(t, srv, "/readyz", "CANDADO_REDIS_URL")
	})
}

// TestPlatformKnative builds the function as `func build` does, with the
// real runtime: a scaffolding main module `s` (testdata/knative) that
// requires the function's module through a replace to ./f, a link to this
// repository, patched with the module name read from go.mod, whose main
// calls knative.dev/func-go's http.Start(f.New()). It builds it the three
// ways func does (see knativeBuilds) and runs the host builder's binary in
// the environment a Knative Service made by `func deploy` gives it: checks
// readiness, a grant, a long wait, SIGTERM and an empty Redis URL.
func TestPlatformKnative(t *testing.T) {
	// In-process first: Ready must be false before Start was called.
	{
		fn := New()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ok, _ := fn.Ready(ctx)
		cancel()
		if ok {
			t.Fatal("Ready answered true before Start was called")
		}
	}

	root := moduleRoot(t)
	var bin, buildDir string
	for _, b := range knativeBuilds {
		dir := t.TempDir() // the test's, not the subtest's: the checks below run its binary
		t.Run("build/"+b.name, func(t *testing.T) {
			writeKnativeScaffolding(t, root, dir, b.copyRequires)
			env := buildEnv(append([]string{"CGO_ENABLED=0", "GO111MODULE=on"}, b.env...)...)
			if b.tidy {
				run(t, dir, env, goPath(t), "mod", "tidy")
			}
			out := filepath.Join(dir, "fn")
			run(t, dir, env, goPath(t), "build", "-o", out)
			if got := run(t, dir, env, goPath(t), "list", "-m", "knative.dev/func-go"); !strings.Contains(got, "v0.22.0") {
				t.Fatalf("built with %s, want knative.dev/func-go v0.22.0", strings.TrimSpace(got))
			}
			if b.run {
				bin, buildDir = out, dir
			}
		})
	}
	if bin == "" {
		t.Fatal("the host builder's build failed: nothing to run")
	}

	fy := readFuncYAML(t, root)
	redis := redistest.Start(t)
	podEnv := func(t *testing.T, port int, secrets map[string]string) []string {
		vars := kubernetesVars()
		// Services in the namespace: those a Knative Service revision gets
		// (the route's candado is an ExternalName and has no links) and
		// deploy/redis's candado-redis.
		for _, s := range []struct {
			name, ip string
			ports    []servicePort
		}{
			{"candado-00001", "10.96.30.1", []servicePort{{"http", 80}, {"https", 443}}},
			{"candado-00001-private", "10.96.30.2", []servicePort{{"http", 80}, {"https", 443}, {"http-metrics", 9090}, {"http-profiling", 9091}, {"http-queueadm", 8022}}},
			{"candado-redis", "10.96.30.3", []servicePort{{"redis", 6379}}},
		} {
			for k, v := range serviceLinks(s.name, s.ip, s.ports) {
				vars[k] = v
			}
		}
		for _, e := range fy.Run.Envs {
			v := e.Value
			if m := funcSecretRef.FindStringSubmatch(v); m != nil {
				v = secrets[m[2]]
			}
			vars[e.Name] = v
		}
		// Knative Serving's own variables. func-go listens on 127.0.0.1:PORT
		// when PORT is its only address setting.
		vars["PORT"] = strconv.Itoa(port)
		vars["K_SERVICE"] = fy.Name
		vars["K_CONFIGURATION"] = fy.Name
		vars["K_REVISION"] = fy.Name + "-00001"
		return processEnv(t, "knative", vars)
	}
	goodSecrets := map[string]string{"redis-url": redis.URL(), "auth-token": platformToken}

	t.Run("ready after Start, lock granted, long wait answered, SIGTERM drains", func(t *testing.T) {
		srv := startServer(t, bin, buildDir, func(port int) []string { return podEnv(t, port, goodSecrets) }, readyAt("/health/readiness"))
		defer srv.kill()
		if code, body := get(t, srv.base+"/health/liveness", ""); code != http.StatusOK {
			t.Fatalf("liveness: %d %s", code, body)
		}
		checkGranted(t, srv.base, "knative/granted")
		// func-go's server cuts every response at 30 s; func.yaml lets a
		// wait run 60 s.
		checkWaitCut(t, srv, "knative/wait", 45*time.Second, 30*time.Second)

		// SIGTERM with a waiter in flight: it gets a whole answer, then the
		// process exits 0 within func-go's budget (30 s Shutdown + 30 s Stop).
		holdLock(t, srv.base, "knative/drain")
		answered := make(chan string, 1)
		go func() {
			code, body, err := tryGet(srv.base+"/acquire/knative%2Fdrain?wait=3s", platformToken, 40*time.Second)
			answered <- fmt.Sprintf("%d %s %v", code, body, err)
		}()
		time.Sleep(500 * time.Millisecond)
		if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case a := <-answered:
			if !strings.Contains(a, `"success":false`) || strings.Contains(a, "EOF") {
				t.Errorf("waiter in flight at SIGTERM: %s; want a whole JSON answer", a)
			}
		case <-time.After(40 * time.Second):
			t.Error("waiter in flight at SIGTERM got no answer within 40s")
		}
		select {
		case <-srv.done:
			if !srv.cmd.ProcessState.Success() {
				t.Fatalf("exit after SIGTERM: %s; output:\n%s", srv.cmd.ProcessState, srv.out.String())
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("no exit within 60s of SIGTERM; output:\n%s", srv.out.String())
		}
	})

	t.Run("watch: events at once, keepalive, clean end before func-go's 30s, Last-Event-ID", func(t *testing.T) {
		srv := startServer(t, bin, buildDir, func(port int) []string { return podEnv(t, port, goodSecrets) }, readyAt("/health/readiness"))
		defer srv.kill()
		// func-go v0.22.0's server writes no answer past 30 s (WriteTimeout).
		checkWatchStream(t, srv.base, "knative/watch", 30*time.Second, srv.out)
	})

	t.Run("empty Redis URL: never granted", func(t *testing.T) {
		empty := map[string]string{"redis-url": "", "auth-token": platformToken}
		srv := startServer(t, bin, buildDir, func(port int) []string { return podEnv(t, port, empty) }, answers("/health/readiness"))
		defer srv.kill()
		checkNeverGranted(t, srv, "/health/readiness", "CANDADO_REDIS_URL")
	})
}

// knativeBuilds are the ways func builds the scaffolding. func v1.22 and
// later add the function's require lines (not its replace lines) to the
// scaffolding's go.mod; the host builder (func v1.23, `builder: host` in
// func.yaml) then runs `go build` with CGO_ENABLED=0 and the caller's
// environment, without `go mod tidy`, so the copied requirements must
// already agree with what the scaffolding selects (go's default
// -mod=readonly stops on "updates to go.mod needed"). The s2i builder and
// `func run` run `go mod tidy` first. func v1.21 copied no requirements and
// relied on tidy.
var knativeBuilds = []struct {
	name         string
	copyRequires bool
	tidy         bool
	env          []string
	run          bool // the build whose binary the checks run
}{
	{name: "host (func v1.23)", copyRequires: true, env: []string{"GOFLAGS="}, run: true},
	{name: "s2i and func run (func v1.23)", copyRequires: true, tidy: true, env: []string{"GOFLAGS="}},
	{name: "tidy without copied requires (func v1.21)", tidy: true, env: []string{"GOFLAGS="}},
}

// writeKnativeScaffolding writes func's scaffolding for the function at root
// into dir: testdata/knative patched with the module name (the require, the
// replace and main's import), the function's go line when it is newer, with
// copyRequires the function's requirements the scaffolding does not list
// itself (at the function's versions; its replace lines are not copied), the
// scaffolding's go.sum followed by the function's, and f linked to root.
func writeKnativeScaffolding(t *testing.T, root, dir string, copyRequires bool) {
	t.Helper()
	rootMod := readFile(t, filepath.Join(root, "go.mod"))
	module, goLine := readGoModText(rootMod)
	scaffold := filepath.Join(root, "testdata", "knative")
	goMod := readFile(t, filepath.Join(scaffold, "go.mod"))
	mainGo := readFile(t, filepath.Join(scaffold, "main.go"))
	goMod = regexp.MustCompile(`(?m)^(\s*(?:require\s+|replace\s+)?)function(\s)`).ReplaceAllString(goMod, "${1}"+module+"${2}")
	if _, scaffoldGo := readGoModText(goMod); versionLess(scaffoldGo, goLine) {
		goMod = regexp.MustCompile(`(?m)^go .*$`).ReplaceAllString(goMod, "go "+goLine)
	}
	mainGo = strings.ReplaceAll(mainGo, `"function"`, strconv.Quote(module))
	if !strings.Contains(goMod, "replace "+module+" => ./f") || !strings.Contains(mainGo, strconv.Quote(module)) {
		t.Fatalf("patching the scaffolding for %s failed:\n%s\n%s", module, goMod, mainGo)
	}
	if copyRequires {
		listed := map[string]bool{}
		for _, r := range goModRequires(goMod) {
			listed[r[0]] = true
		}
		var add []string
		for _, r := range goModRequires(rootMod) {
			if !listed[r[0]] {
				add = append(add, "\t"+r[0]+" "+r[1]+"\n")
			}
		}
		if len(add) > 0 {
			goMod += "\nrequire (\n" + strings.Join(add, "") + ")\n"
		}
	}
	if _, need := readGoModText(goMod); versionLess(strings.TrimPrefix(goEnv("GOVERSION"), "go"), need) {
		t.Fatalf("the scaffolding needs go %s (knative.dev/func-go v0.22.0 asks for it) and this toolchain is %s: install Go %s or later", need, goEnv("GOVERSION"), need)
	}
	writeFile(t, filepath.Join(dir, "go.mod"), goMod)
	writeFile(t, filepath.Join(dir, "main.go"), mainGo)
	writeFile(t, filepath.Join(dir, "go.sum"), readFile(t, filepath.Join(scaffold, "go.sum"))+readFile(t, filepath.Join(root, "go.sum")))
	if err := os.Symlink(root, filepath.Join(dir, "f")); err != nil {
		t.Fatal(err)
	}
}

// goModRequires returns the [path, version] pairs of a go.mod's require
// lines, in blocks or single.
func goModRequires(text string) [][2]string {
	var reqs [][2]string
	inBlock := false
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "require" && f[1] == "(":
			inBlock = true
		case inBlock && len(f) == 1 && f[0] == ")":
			inBlock = false
		case inBlock && len(f) >= 2 && !strings.HasPrefix(f[0], "//"):
			reqs = append(reqs, [2]string{f[0], f[1]})
		case !inBlock && len(f) >= 3 && f[0] == "require":
			reqs = append(reqs, [2]string{f[1], f[2]})
		}
	}
	return reqs
}

// ---- what the checks assert ----

// checkGranted acquires id (a fresh lock) and expects a 200 with success
// true, a fence and an owner, then releases it.
func checkGranted(t *testing.T, base, id string) {
	t.Helper()
	code, body := get(t, base+"/acquire/"+pathEscape(id)+"?ttl=30s", platformToken)
	env := decodeEnvelope(t, body)
	if code != http.StatusOK || !env.Success || env.Data.Fence <= 0 || env.Data.Owner == "" {
		t.Fatalf("acquire %s: %d %s; want 200 with a fence and an owner", id, code, body)
	}
	t.Logf("acquire %s: %d %s", id, code, bytes.TrimSpace(body))
	code, body = get(t, base+"/release/"+pathEscape(id)+"?owner="+env.Data.Owner, platformToken)
	if code != http.StatusOK {
		t.Fatalf("release %s: %d %s", id, code, body)
	}
}

// holdLock takes id for an hour with a fresh owner.
func holdLock(t *testing.T, base, id string) {
	t.Helper()
	code, body := get(t, base+"/acquire/"+pathEscape(id)+"?ttl=1h", platformToken)
	if code != http.StatusOK {
		t.Fatalf("holding %s: %d %s", id, code, body)
	}
}

// checkWaitCut holds id, asks for it with a wait longer than the platform's
// request deadline, and expects a whole answer before that deadline: a 409
// held with the lock's data and data.wait_cut true.
func checkWaitCut(t *testing.T, srv *server, id string, wait, deadline time.Duration) {
	t.Helper()
	holdLock(t, srv.base, id)
	start := time.Now()
	code, body, err := tryGet(srv.base+"/acquire/"+pathEscape(id)+"?wait="+wait.String(), platformToken, wait+15*time.Second)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("acquire %s wait=%v: no answer after %v (%v): the platform cut the response", id, wait, took.Round(time.Millisecond), err)
	}
	if took >= deadline {
		t.Fatalf("acquire %s wait=%v answered after %v, not before the platform's %v deadline", id, wait, took, deadline)
	}
	var env struct {
		Success bool   `json:"success"`
		Code    string `json:"code"`
		Data    struct {
			Fence   int64 `json:"fence"`
			WaitCut *bool `json:"wait_cut"`
			Waited  *int  `json:"waited_ms"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &env) != nil || code != http.StatusConflict || env.Code != "held" || env.Data.Fence <= 0 {
		t.Fatalf("acquire %s wait=%v: %d %s; want 409 held with the lock's data", id, wait, code, body)
	}
	if env.Data.WaitCut == nil || !*env.Data.WaitCut || env.Data.Waited == nil || *env.Data.Waited <= 0 {
		t.Fatalf("acquire %s wait=%v: %s; want data.wait_cut true and data.waited_ms", id, wait, body)
	}
	t.Logf("acquire %s wait=%v: answered after %v: %d %s", id, wait, took.Round(time.Millisecond), code, bytes.TrimSpace(body))
}

// checkNeverGranted expects a service without a Redis URL to stay not ready
// and to answer lock calls 503 with an error naming variable, never 200.
func checkNeverGranted(t *testing.T, srv *server, readyPath, variable string) {
	t.Helper()
	for i := 0; i < 3; i++ {
		if code, body := get(t, srv.base+readyPath, ""); code == http.StatusOK {
			t.Fatalf("%s answered 200 without a Redis URL: %s", readyPath, body)
		}
		code, body := get(t, srv.base+"/acquire/never-"+strconv.Itoa(i), platformToken)
		if code == http.StatusOK {
			t.Fatalf("acquire granted without a Redis URL (an in-process Redis shares no lock with other replicas): %s", body)
		}
		if code != http.StatusServiceUnavailable || !strings.Contains(string(body), variable) {
			t.Fatalf("acquire without a Redis URL: %d %s; want 503 naming %s", code, body, variable)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type envelope struct {
	Success bool   `json:"success"`
	Code    string `json:"code"`
	Error   string `json:"error"`
	Data    struct {
		Owner string `json:"owner"`
		Fence int64  `json:"fence"`
	} `json:"data"`
}

func decodeEnvelope(t *testing.T, body []byte) envelope {
	t.Helper()
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("body is not the JSON envelope (%v): %s", err, body)
	}
	return env
}

func pathEscape(id string) string { return strings.ReplaceAll(id, "/", "%2F") }

// get sends GET url (with a bearer token unless empty) and fails the test
// when no whole answer comes back within 20 s.
func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	code, body, err := tryGet(url, token, 20*time.Second)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return code, body
}

func tryGet(url, token string, timeout time.Duration) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: timeout}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// readyAt waits for a 200 from path.
func readyAt(path string) func(base string) error {
	return func(base string) error {
		code, _, err := tryGet(base+path, "", 5*time.Second)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("%s: %d", path, code)
		}
		return nil
	}
}

// answers waits for any HTTP answer from path.
func answers(path string) func(base string) error {
	return func(base string) error {
		_, _, err := tryGet(base+path, "", 5*time.Second)
		return err
	}
}

// ---- the platforms' environments ----

// servicePort is one port of a Kubernetes Service.
type servicePort struct {
	name string
	port int
}

// serviceLinks are the variables the kubelet writes into a pod for a Service
// with a cluster IP (unless the pod spec says enableServiceLinks: false).
func serviceLinks(name, ip string, ports []servicePort) map[string]string {
	p := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	vars := map[string]string{p + "_SERVICE_HOST": ip}
	for i, sp := range ports {
		port := strconv.Itoa(sp.port)
		if i == 0 {
			vars[p+"_SERVICE_PORT"] = port
			vars[p+"_PORT"] = "tcp://" + ip + ":" + port
		}
		if sp.name != "" {
			vars[p+"_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(sp.name, "-", "_"))] = port
		}
		link := p + "_PORT_" + port + "_TCP"
		vars[link] = "tcp://" + ip + ":" + port
		vars[link+"_PROTO"] = "tcp"
		vars[link+"_PORT"] = port
		vars[link+"_ADDR"] = ip
	}
	return vars
}

// kubernetesVars are the API server's variables, which every pod gets.
func kubernetesVars() map[string]string {
	return serviceLinks("kubernetes", "10.96.0.1", []servicePort{{"https", 443}})
}

// processEnv is vars plus PATH and HOME and nothing else of this process,
// logged (secrets masked) so the report shows what the process saw.
func processEnv(t *testing.T, what string, vars map[string]string) []string {
	t.Helper()
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	var shown []string
	for _, k := range names {
		env = append(env, k+"="+vars[k])
		v := vars[k]
		if (strings.Contains(k, "TOKEN") || strings.Contains(k, "REDIS_URL")) && !strings.HasSuffix(k, "_FILE") {
			v = "<secret, " + strconv.Itoa(len(v)) + " bytes>"
		}
		shown = append(shown, k+"="+v)
	}
	t.Logf("%s process environment (%d variables, plus PATH and HOME):\n  %s", what, len(names), strings.Join(shown, "\n  "))
	return env
}

// ---- reading the repository's files ----

type stackFile struct {
	Functions map[string]struct {
		Lang        string            `json:"lang"`
		Handler     string            `json:"handler"`
		Environment map[string]string `json:"environment"`
		Secrets     []string          `json:"secrets"`
	} `json:"functions"`
	Configuration struct {
		Copy []string `json:"copy"`
	} `json:"configuration"`
}

func readStack(t *testing.T, root string) stackFile {
	t.Helper()
	var s stackFile
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(root, "stack.yml"))), &s); err != nil {
		t.Fatalf("stack.yml: %v", err)
	}
	if s.Functions["candado"].Handler == "" {
		t.Fatal("stack.yml: no functions.candado.handler")
	}
	return s
}

type funcFile struct {
	Name string `json:"name"`
	Run  struct {
		Envs []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"envs"`
	} `json:"run"`
}

// funcSecretRef is func's {{ secret:name:key }} value.
var funcSecretRef = regexp.MustCompile(`^{{\s*secret:([-\w]+):([-._a-zA-Z0-9]+)\s*}}$`)

func readFuncYAML(t *testing.T, root string) funcFile {
	t.Helper()
	var f funcFile
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(root, "func.yaml"))), &f); err != nil {
		t.Fatalf("func.yaml: %v", err)
	}
	if f.Name == "" {
		t.Fatal("func.yaml: no name")
	}
	return f
}

// readGoMod returns the module path and go line of a go.mod file.
func readGoMod(t *testing.T, path string) (module, goLine string) {
	t.Helper()
	module, goLine = readGoModText(readFile(t, path))
	if module == "" || goLine == "" {
		t.Fatalf("%s: no module or go line", path)
	}
	return module, goLine
}

func readGoModText(text string) (module, goLine string) {
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "module" {
			module = strings.Trim(f[1], `"`)
		}
		if len(f) == 2 && f[0] == "go" {
			goLine = f[1]
		}
	}
	return module, goLine
}

// versionLess compares go lines such as 1.24.0 and 1.25.
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < 3; i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ---- running what was built ----

type server struct {
	cmd  *exec.Cmd
	base string
	out  *syncBuffer
	done chan struct{}
}

// kill ends the process and, for a process started in a group of its own,
// what it started.
func (s *server) kill() {
	if s.cmd.SysProcAttr != nil && s.cmd.SysProcAttr.Setpgid {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	} else {
		_ = s.cmd.Process.Kill()
	}
	<-s.done
}

// startServer runs bin on a free loopback port with the environment env
// gives for that port (and nothing else), and waits until ready(base)
// succeeds. It retries on a new port if the process exits first because the
// port was taken between picking and binding it.
func startServer(t *testing.T, bin, dir string, env func(port int) []string, ready func(base string) error) *server {
	t.Helper()
	return startProcess(t, bin, dir, env, ready, false)
}

// startProcess is startServer; with group the process gets a process group
// of its own, which kill ends whole (of-watchdog starts the function).
func startProcess(t *testing.T, bin, dir string, env func(port int) []string, ready func(base string) error, group bool) *server {
	t.Helper()
	for attempt := 0; ; attempt++ {
		s, err := tryStart(t, bin, dir, env, ready, group)
		if err == nil {
			return s
		}
		if attempt >= 3 || !strings.Contains(s.out.String(), "address already in use") {
			t.Fatalf("%s: %v; output:\n%s", filepath.Base(bin), err, s.out.String())
		}
	}
}

func tryStart(t *testing.T, bin, dir string, env func(port int) []string, ready func(base string) error, group bool) (*server, error) {
	t.Helper()
	port := freePort(t)
	s := &server{
		cmd:  exec.Command(bin),
		base: "http://127.0.0.1:" + strconv.Itoa(port),
		out:  &syncBuffer{},
		done: make(chan struct{}),
	}
	s.cmd.Dir = dir
	s.cmd.Env = env(port)
	if group {
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
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

// watchdogBinary builds the of-watchdog stand-in (testdata/ofwatchdog) and
// returns its path, or returns OF_WATCHDOG, the path of a real fwatchdog
// binary to run instead.
func watchdogBinary(t *testing.T, root string) string {
	t.Helper()
	if p := os.Getenv("OF_WATCHDOG"); p != "" {
		t.Logf("of-watchdog: %s (OF_WATCHDOG)", p)
		return p
	}
	out := filepath.Join(t.TempDir(), "fwatchdog")
	run(t, filepath.Join(root, "testdata", "ofwatchdog"), buildEnv("CGO_ENABLED=0", "GOFLAGS="), goPath(t), "build", "-o", out, ".")
	return out
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
// build and module caches and the module proxy stay the ones of this machine
// (taken from `go env` of the test's own toolchain), so a build downloads
// what the cache lacks, as the platforms' builds do.
func buildEnv(extra ...string) []string {
	env := append(runEnv(), "GOTOOLCHAIN=local", "GOWORK=")
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOROOT", "GOPROXY", "GOSUMDB", "GONOSUMDB", "GONOPROXY", "GOPRIVATE", "GOINSECURE"} {
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
