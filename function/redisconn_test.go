package function

import (
	"context"
	"net"
	"testing"
	"time"
)

// peekGate lets go-redis' peek through only when the connection read
// nothing for peekAfter.
func TestPeekGateSkipsBusyConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 1)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	c, err := dialer(time.Second, nil)(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lc, ok := c.(*lastReadConn)
	if !ok {
		t.Fatalf("a TCP connection was dialled as %T", c)
	}
	peeked := func() bool {
		raw, err := lc.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		ran := false
		if err := raw.Read(func(uintptr) bool { ran = true; return true }); err != nil {
			t.Fatal(err)
		}
		return ran
	}
	if _, err := c.Write([]byte{'x'}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if peeked() {
		t.Fatal("a connection that had just read was peeked at")
	}
	time.Sleep(peekAfter + 20*time.Millisecond)
	if !peeked() {
		t.Fatalf("a connection idle for %s was not peeked at", peekAfter)
	}
}
