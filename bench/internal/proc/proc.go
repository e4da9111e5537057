// Package proc starts and stops the processes the benchmark measures: a
// private redis-server, a private etcd and the binaries it builds, each on
// free loopback ports, each killed by its stop func (and, on Linux, when the
// benchmark itself dies).
package proc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// readyTimeout bounds how long a started process may take to answer.
const readyTimeout = 15 * time.Second

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Proc is one started process.
type Proc struct {
	Cmd  *exec.Cmd
	done chan struct{}
}

// Start runs bin with args and env (added to this process's environment).
func Start(bin string, env []string, args ...string) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop kills the process and waits for it.
func (p *Proc) Stop() {
	if p == nil {
		return
	}
	p.Cmd.Process.Kill()
	<-p.done
}

// RSS is the process's resident set size in bytes, from /proc.
func (p *Proc) RSS() (int64, error) { return RSSOf(p.Cmd.Process.Pid) }

// RSSOf reads VmRSS of pid.
func RSSOf(pid int) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// Redis is a private redis-server.
type Redis struct {
	*Proc
	Addr string
}

// StartRedis runs redis-server on a free loopback port, persisting nothing,
// with its files in dir, and waits until it answers PING.
func StartRedis(dir string) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not on PATH (scripts/ensure-redis.sh installs it): %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		p, err := Start(bin, nil, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no", "--dir", dir, "--protected-mode", "yes")
		if err != nil {
			return nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		if lastErr = waitFor(p, func() error { return ping(addr) }); lastErr == nil {
			return &Redis{Proc: p, Addr: addr}, nil
		}
		p.Stop()
	}
	return nil, fmt.Errorf("redis-server did not answer: %w", lastErr)
}

// ping sends an inline PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Etcd is a private one-member etcd.
type Etcd struct {
	*Proc
	Endpoint string
}

// EnsureEtcd installs Debian's etcd-server when etcd is not on PATH.
func EnsureEtcd() error {
	if _, err := exec.LookPath("etcd"); err == nil {
		return nil
	}
	// The repository's own installer; the bench module reaches the root
	// module (and so its scripts/) through its replace.
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "handler/function").Output()
	if err != nil {
		return fmt.Errorf("installing etcd: finding the repository: %w", err)
	}
	script := filepath.Join(strings.TrimSpace(string(out)), "scripts", "ensure-debian.sh")
	cmd := exec.Command("bash", script, "ensure-etcd", "etcd", "etcd-server")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("installing etcd: %w", err)
	}
	return nil
}

// StartEtcd runs etcd on two free loopback ports with its data in a new
// folder under dir, and waits until it reports healthy.
func StartEtcd(dir string) (*Etcd, error) {
	if err := EnsureEtcd(); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		cport, err := FreePort()
		if err != nil {
			return nil, err
		}
		pport, err := FreePort()
		if err != nil {
			return nil, err
		}
		data, err := os.MkdirTemp(dir, "etcd")
		if err != nil {
			return nil, err
		}
		client := "http://127.0.0.1:" + strconv.Itoa(cport)
		peer := "http://127.0.0.1:" + strconv.Itoa(pport)
		p, err := Start("etcd", []string{"ETCD_UNSUPPORTED_ARCH="},
			"--name", "bench", "--data-dir", data,
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", "bench="+peer, "--initial-cluster-state", "new",
			"--log-level", "error")
		if err != nil {
			return nil, err
		}
		if lastErr = waitFor(p, func() error { return httpOK(client + "/health") }); lastErr == nil {
			return &Etcd{Proc: p, Endpoint: "127.0.0.1:" + strconv.Itoa(cport)}, nil
		}
		p.Stop()
	}
	return nil, fmt.Errorf("etcd did not become healthy: %w", lastErr)
}

func httpOK(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// waitFor polls check until it passes, the process exits or readyTimeout.
func waitFor(p *Proc, check func() error) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if p.Exited() {
			return errors.New("process exited")
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Server is a started HTTP server process.
type Server struct {
	*Proc
	Base string // http://127.0.0.1:port
}

// StartServer runs bin with CANDADO_PORT (and PORT) set to a free port plus
// env, and waits until GET probe answers 200.
func StartServer(bin string, env []string, probe string) (*Server, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	p := strconv.Itoa(port)
	proc, err := Start(bin, append([]string{"CANDADO_PORT=" + p, "PORT=" + p}, env...))
	if err != nil {
		return nil, err
	}
	base := "http://127.0.0.1:" + p
	if err := waitFor(proc, func() error { return httpOK(base + probe) }); err != nil {
		proc.Stop()
		return nil, fmt.Errorf("%s did not answer %s: %w", filepath.Base(bin), probe, err)
	}
	return &Server{Proc: proc, Base: base}, nil
}

// Build builds pkg (a package path, or "." for dir) into out with the flags
// of the Dockerfile: CGO_ENABLED=0, -trimpath, -ldflags '-s -w'.
func Build(out, pkg, dir string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s in %s: %w\n%s", pkg, dir, err, b)
	}
	return nil
}

// CPUTime is the user and system CPU time pid has used, from /proc (clock
// ticks of 10 ms on Linux).
func CPUTime(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold blanks.
	_, rest, ok := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
