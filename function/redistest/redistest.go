// Package redistest runs a private, real redis-server for one test.
//
// Each Server listens on its own free loopback port and keeps its files in
// the test's temporary directory. With the default settings it persists
// nothing, so Restart brings back an empty Redis: the restart that lost all
// data. WithAOF turns on the append-only file, so a restart keeps the data.
// The process is killed when the test ends (and, on Linux, when the test
// binary dies), so it never outlives the test.
//
// When redis-server is not on PATH, Start fails the test with a message that
// says to run `make test`, which installs it. It never skips.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// BinaryEnv names an environment variable that, when set, is the path of the
// redis-server binary to run instead of the one found on PATH.
const BinaryEnv = "REDISTEST_SERVER"

// startTimeout bounds how long a starting redis-server may take to answer PING.
const startTimeout = 10 * time.Second

// Option changes how a Server runs.
type Option func(*config)

type config struct {
	aof   bool
	extra []string
}

// WithAOF turns on the append-only file with appendfsync always, so that a
// Kill followed by Restart keeps every acknowledged write.
func WithAOF() Option {
	return func(c *config) { c.aof = true }
}

// WithArgs appends raw redis-server arguments, such as
// WithArgs("--maxmemory", "1mb", "--maxmemory-policy", "allkeys-lru").
func WithArgs(args ...string) Option {
	return func(c *config) { c.extra = append(c.extra, args...) }
}

// Binary returns the path of the redis-server binary: $REDISTEST_SERVER when
// set, else redis-server on PATH.
func Binary() (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%q: %w", BinaryEnv, p, err)
		}
		return p, nil
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server not found on PATH: %w", err)
	}
	return p, nil
}

// Server is one private redis-server process.
type Server struct {
	tb   testing.TB
	bin  string
	dir  string
	cfg  config
	port int

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd has exited
	client *redis.Client
	runs   int
}

// Start runs a new redis-server for tb and waits until it answers PING. It is
// stopped, and its Client closed, when tb's cleanups run.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	bin, err := Binary()
	if err != nil {
		tb.Fatalf("redistest: %v; run `make test`, which installs redis-server (scripts/ensure-redis.sh)", err)
	}
	s := &Server{tb: tb, bin: bin, dir: tb.TempDir()}
	for _, o := range opts {
		o(&s.cfg)
	}
	// Registered before the process starts, so it runs after the cleanups of
	// whatever the test builds on top of this server.
	tb.Cleanup(s.stop)

	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("redistest: picking a free port: %v", err)
		}
		s.port = port
		if lastErr = s.launch(); lastErr == nil {
			return s
		}
	}
	tb.Fatalf("redistest: could not start redis-server: %v", lastErr)
	return nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Port is the server's TCP port; it stays the same across Restart.
func (s *Server) Port() int { return s.port }

// URL is a redis:// URL for database 0 of the server.
func (s *Server) URL() string {
	return "redis://" + s.Addr() + "/0"
}

// Dir is the server's working directory (where an AOF would live).
func (s *Server) Dir() string { return s.dir }

// Client returns a go-redis client of the server, made on first use and
// closed when the test ends. It reconnects by itself after a Restart.
func (s *Server) Client() *redis.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		s.client = redis.NewClient(&redis.Options{Addr: s.Addr()})
	}
	return s.client
}

// Pid is the process id of the running redis-server, or 0 if it is stopped.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil || s.exited() {
		return 0
	}
	return s.cmd.Process.Pid
}

// Kill sends SIGKILL to redis-server and waits until it has exited. Killing
// a stopped server does nothing.
func (s *Server) Kill() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

// Restart kills the server, if it runs, and starts it again on the same port.
// Without WithAOF it comes back empty.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	var err error
	// The old socket is gone once the process has exited, and redis-server
	// sets SO_REUSEADDR, but another process may have taken the port
	// meanwhile: retry briefly before failing.
	deadline := time.Now().Add(3 * time.Second)
	for {
		if err = s.launch(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.tb.Fatalf("redistest: restart on port %d: %v", s.port, err)
}

// Pause stops the process with SIGSTOP: connections stay open but nothing
// answers, as with a server stuck in a long pause.
func (s *Server) Pause() {
	s.tb.Helper()
	s.signal(pauseSignal, "pause")
}

// Resume continues a paused process with SIGCONT.
func (s *Server) Resume() {
	s.tb.Helper()
	s.signal(resumeSignal, "resume")
}

// Flush runs FLUSHALL.
func (s *Server) Flush() {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Client().FlushAll(ctx).Err(); err != nil {
		s.tb.Fatalf("redistest: FLUSHALL: %v", err)
	}
}

func (s *Server) signal(sig os.Signal, what string) {
	s.tb.Helper()
	if sig == nil {
		s.tb.Fatalf("redistest: %s is not supported on this platform", what)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.exited() {
		s.tb.Fatalf("redistest: %s: redis-server is not running", what)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.tb.Fatalf("redistest: %s: %v", what, err)
	}
}

// exited reports whether the current process has exited; s.mu must be held.
func (s *Server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *Server) killLocked() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	if !s.exited() {
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func (s *Server) stop() {
	s.mu.Lock()
	client := s.client
	s.client = nil
	s.killLocked()
	s.mu.Unlock()
	if client != nil {
		_ = client.Close()
	}
}

func (s *Server) args() []string {
	appendonly := "no"
	if s.cfg.aof {
		appendonly = "yes"
	}
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", appendonly,
		"--daemonize", "no",
		"--logfile", "",
	}
	if s.cfg.aof {
		args = append(args, "--appendfsync", "always")
	}
	return append(args, s.cfg.extra...)
}

// launch starts redis-server on s.port and waits until it answers PING.
func (s *Server) launch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs++
	logPath := filepath.Join(s.dir, fmt.Sprintf("redis-%d.log", s.runs))
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, s.args()...)
	cmd.Dir = s.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("starting %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(done)
	}()
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-done:
			return fmt.Errorf("redis-server exited at start (%s); log:\n%s", cmd.ProcessState, tail(logPath))
		default:
		}
		if ping(s.Addr()) == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.killLocked()
			return fmt.Errorf("redis-server did not answer PING within %s; log:\n%s", startTimeout, tail(logPath))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ping sends one inline PING and expects +PONG (not -LOADING and the like).
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return errors.New("PING answered " + line)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	const max = 4096
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(bytes.TrimSpace(b))
}
