package faultproxy

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echo serves a line echo on a free port.
func echo(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, timeout time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	_ = c.SetDeadline(start.Add(timeout))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return 0, err
	}
	line, err := r.ReadString('\n')
	if err == nil && line != "ping\n" {
		t.Fatalf("echo %q", line)
	}
	return time.Since(start), err
}

func TestProxyFaults(t *testing.T) {
	p, err := Start(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := roundTrip(t, c, r, time.Second); err != nil {
		t.Fatalf("plain: %v", err)
	}

	p.SetLatency(30 * time.Millisecond)
	if d, err := roundTrip(t, c, r, time.Second); err != nil || d < 60*time.Millisecond {
		t.Fatalf("latency: %v after %s", err, d)
	}
	p.SetLatency(0)

	p.SetBlackhole(true)
	if _, err := roundTrip(t, c, r, 100*time.Millisecond); err == nil {
		t.Fatal("blackhole let a reply through")
	}
	p.SetBlackhole(false)
	// The held ping arrives now.
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if line, err := r.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("after blackhole: %q %v", line, err)
	}

	if n := p.DropAll(); n != 2 {
		t.Fatalf("dropped %d conns, want 2", n)
	}
	if _, err := roundTrip(t, c, r, time.Second); err == nil {
		t.Fatal("dropped connection still works")
	}
}
