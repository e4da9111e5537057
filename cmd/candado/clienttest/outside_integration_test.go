//go:build integration

package clienttest_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/candado-dev/candado/client"
)

// clientModulePath is the module line of client/go.mod: the one place the
// client's import path is written down.
func clientModulePath(t *testing.T, clientDir string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(clientDir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	t.Fatalf("%s/go.mod has no module line", clientDir)
	return ""
}

// TestClientFromOutsideTheRepository builds a program in a temporary module
// outside this repository that imports the client by its module path, with a
// replace to this checkout (as README's "From Go" says), with no network and
// no workspace, and runs it against a real service.
func TestClientFromOutsideTheRepository(t *testing.T) {
	clientDir, err := filepath.Abs(filepath.Join("..", "..", "..", "client"))
	if err != nil {
		t.Fatal(err)
	}
	modPath := clientModulePath(t, clientDir)
	if !strings.HasPrefix(modPath, "github.com/") {
		t.Fatalf("client module path %q is not one go get can fetch once published", modPath)
	}
	src, err := os.ReadFile(filepath.Join("testdata", "consumer", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), strconv.Quote(modPath)) {
		t.Fatalf("testdata/consumer/main.go does not import %q", modPath)
	}

	dir := t.TempDir() // outside the repository
	goMod := "module example.com/consumer\n\ngo 1.24.0\n\n" +
		"require " + modPath + " v0.0.0\n\n" +
		"replace " + modPath + " => " + clientDir + "\n"
	for name, text := range map[string]string{"go.mod": goMod, "main.go": string(src)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GOWORK=off", "GOPROXY=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local", "CGO_ENABLED=0")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(dir, "consumer")
	build := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".")
	build.Dir, build.Env = dir, env
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of a module outside the repository: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "handler/function") {
		t.Fatalf("the consumer's module needed the service module:\n%s", b)
	}

	s := startStack(t)
	const id = "outside/1"
	runCmd := exec.CommandContext(ctx, bin, s.http.URL, id)
	runCmd.Dir = dir
	out, err := runCmd.CombinedOutput()
	if err != nil {
		t.Fatalf("consumer: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^fence (\d+)$`).FindSubmatch(out)
	if m == nil || !strings.Contains(string(out), "released") {
		t.Fatalf("consumer output:\n%s", out)
	}
	fence, _ := strconv.ParseInt(string(m[1]), 10, 64)

	// The server saw that lease: the next owner gets a higher fence.
	c := s.client(t, "")
	l, err := c.Acquire(itCtx(t, 10*time.Second), id, &client.AcquireOptions{TTL: 5 * time.Second})
	if err != nil {
		t.Fatalf("acquire after the consumer released: %v", err)
	}
	if l.Fence() <= fence {
		t.Fatalf("fence %d after the consumer's %d: the consumer's lease was not the server's", l.Fence(), fence)
	}
}
