package check

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is what scenarios need of a redis-server: redistest.Server has it,
// and so does RedisProc (for cmd/candado-verify, which has no testing.TB).
type Redis interface {
	URL() string
	Addr() string
	Kill()
	Restart()
	Pause()
	Resume()
}

// RedisProc is a private redis-server persisting nothing, so Restart loses
// all data.
type RedisProc struct {
	bin, dir string
	port     int
	args     []string // extra redis-server arguments
	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
}

// StartRedis runs redis-server ($REDISTEST_SERVER or on PATH) on a free
// port with its files in dir, and args appended to its arguments.
func StartRedis(dir string, args ...string) (*RedisProc, error) {
	bin := os.Getenv("REDISTEST_SERVER")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			return nil, fmt.Errorf("redis-server not found on PATH (make test installs it): %w", err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	r := &RedisProc{bin: bin, dir: dir, port: port, args: args}
	return r, r.launch()
}

// Addr is host:port.
func (r *RedisProc) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// URL is a redis:// URL of database 0.
func (r *RedisProc) URL() string { return "redis://" + r.Addr() + "/0" }

func (r *RedisProc) launch() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd := exec.Command(r.bin, append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", filepath.Join(r.dir, "redis.log")}, r.args...)...)
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	r.cmd, r.done = cmd, done
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", r.Addr(), 200*time.Millisecond); err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte("PING\r\n"))
			line, err := bufio.NewReader(c).ReadString('\n')
			_ = c.Close()
			if err == nil && line == "+PONG\r\n" {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server exited at start")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("redis-server did not answer PING")
}

// Kill sends SIGKILL and waits for the exit.
func (r *RedisProc) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(syscall.SIGCONT)
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// Restart kills the server and starts it empty on the same port.
func (r *RedisProc) Restart() {
	r.Kill()
	deadline := time.Now().Add(3 * time.Second)
	for {
		err := r.launch()
		if err == nil || time.Now().After(deadline) {
			if err != nil {
				panic(fmt.Sprintf("redis restart: %v", err))
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Pause stops the process with SIGSTOP.
func (r *RedisProc) Pause() { r.signal(syscall.SIGSTOP) }

// Resume continues it with SIGCONT.
func (r *RedisProc) Resume() { r.signal(syscall.SIGCONT) }

func (r *RedisProc) signal(s syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(s)
	}
}

// Close kills the server.
func (r *RedisProc) Close() { r.Kill() }

// QuietRedisLog silences go-redis' own log (dial failures during injected
// faults are expected and would drown the report).
func QuietRedisLog() { redis.SetLogger(quiet{}) }

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
