//go:build integration && unix

package redistest_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"handler/function/function/redistest"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestStartSetGet(t *testing.T) {
	s := redistest.Start(t)
	if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") || !strings.HasSuffix(s.URL(), "/0") {
		t.Fatalf("URL() = %q", s.URL())
	}
	opt, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	if opt.Addr != s.Addr() {
		t.Fatalf("URL addr %q != Addr() %q", opt.Addr, s.Addr())
	}
	c := s.Client()
	if err := c.Set(ctx(t), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx(t), "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v", got, err)
	}
	if s.Pid() <= 0 {
		t.Fatalf("Pid() = %d", s.Pid())
	}
	// No persistence: nothing configured to save.
	if got, err := c.ConfigGet(ctx(t), "save").Result(); err != nil || got["save"] != "" {
		t.Fatalf("CONFIG GET save = %v, %v", got, err)
	}
	s.Flush()
	if n, err := c.DBSize(ctx(t)).Result(); err != nil || n != 0 {
		t.Fatalf("DBSIZE after Flush = %d, %v", n, err)
	}
}

func TestTwoServersAreSeparate(t *testing.T) {
	a, b := redistest.Start(t), redistest.Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("both servers on %s", a.Addr())
	}
	if err := a.Client().Set(ctx(t), "k", "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.Client().Get(ctx(t), "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET on b = %v, want redis.Nil", err)
	}
}

func TestRestartLosesData(t *testing.T) {
	s := redistest.Start(t)
	c := s.Client()
	if err := c.Set(ctx(t), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	addr, pid := s.Addr(), s.Pid()
	s.Restart()
	if s.Addr() != addr {
		t.Fatalf("Addr changed across Restart: %s -> %s", addr, s.Addr())
	}
	if s.Pid() == pid || s.Pid() == 0 {
		t.Fatalf("Pid after Restart = %d (before %d)", s.Pid(), pid)
	}
	if err := c.Get(ctx(t), "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET after Restart = %v, want redis.Nil (data lost)", err)
	}
}

func TestRestartWithAOFKeepsData(t *testing.T) {
	s := redistest.Start(t, redistest.WithAOF())
	c := s.Client()
	if err := c.Set(ctx(t), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Restart()
	if got, err := c.Get(ctx(t), "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET after AOF Restart = %q, %v", got, err)
	}
}

func TestKill(t *testing.T) {
	s := redistest.Start(t)
	pid := s.Pid()
	s.Kill()
	if s.Pid() != 0 {
		t.Fatalf("Pid after Kill = %d", s.Pid())
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("process %d still exists after Kill: %v", pid, err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	if err := c.Ping(ctx(t)).Err(); err == nil {
		t.Fatal("PING succeeded on a killed server")
	}
	s.Kill() // killing twice is harmless
}

func TestPauseResume(t *testing.T) {
	s := redistest.Start(t)
	c := redis.NewClient(&redis.Options{
		Addr:        s.Addr(),
		ReadTimeout: 200 * time.Millisecond,
		MaxRetries:  -1,
	})
	defer c.Close()
	if err := c.Ping(ctx(t)).Err(); err != nil {
		t.Fatal(err)
	}
	s.Pause()
	start := time.Now()
	err := c.Ping(ctx(t)).Err()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("PING on a paused server = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timeout took %s", d)
	}
	s.Resume()
	var perr error
	for i := 0; i < 50; i++ {
		if perr = c.Ping(ctx(t)).Err(); perr == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if perr != nil {
		t.Fatalf("PING after Resume: %v", perr)
	}
}

func TestProcessEndsWithTest(t *testing.T) {
	var pid int
	t.Run("inner", func(t *testing.T) {
		pid = redistest.Start(t).Pid()
	})
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("redis-server %d outlived its test: %v", pid, err)
	}
}

func TestBinary(t *testing.T) {
	p, err := redistest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
}
