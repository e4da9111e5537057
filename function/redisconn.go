package function

import (
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// peekAfter is how long a Redis connection may sit unread before go-redis'
// health check peeks at it again. go-redis peeks at every connection it
// takes from the pool (a recvfrom system call) to drop those the server
// closed while they sat idle; a connection that answered less than this
// ago was not idle, and under load that is nearly every checkout. It is
// shorter than any Redis restart or failover, so a connection those closed
// is still peeked before it is used once they are over.
const peekAfter = 100 * time.Millisecond

// dialer dials Redis as go-redis does (its timeout, keep-alives and TLS)
// and hands out plain TCP and Unix connections as lastReadConns. TLS
// connections, which go-redis never peeks at, are left as they are.
func dialer(timeout time.Duration, tlsConfig *tls.Config) func(context.Context, string, string) (net.Conn, error) {
	dial := redis.NewDialer(&redis.Options{DialTimeout: timeout, TLSConfig: tlsConfig})
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		sc, ok := c.(syscall.Conn)
		if !ok {
			return c, nil
		}
		raw, err := sc.SyscallConn()
		if err != nil {
			return c, nil
		}
		lc := &lastReadConn{Conn: c, raw: raw}
		lc.read.Store(time.Now().UnixNano())
		return lc, nil
	}
}

// lastReadConn is a connection that notes when it last read data, and whose
// SyscallConn lets go-redis' peek through only when that is peekAfter ago.
type lastReadConn struct {
	net.Conn
	raw  syscall.RawConn
	read atomic.Int64 // unix nanoseconds of the last read of data
}

func (c *lastReadConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.read.Store(time.Now().UnixNano())
	}
	return n, err
}

// SyscallConn is what go-redis' health check asks for.
func (c *lastReadConn) SyscallConn() (syscall.RawConn, error) { return peekGate{c}, nil }

// peekGate runs a read-side function on the descriptor (go-redis' peek)
// only when the connection read nothing for peekAfter; otherwise it
// reports it done, as a peek that found nothing waiting would.
type peekGate struct{ c *lastReadConn }

func (g peekGate) Read(f func(fd uintptr) bool) error {
	if time.Now().UnixNano()-g.c.read.Load() < int64(peekAfter) {
		return nil
	}
	return g.c.raw.Read(f)
}

func (g peekGate) Write(f func(fd uintptr) bool) error { return g.c.raw.Write(f) }
func (g peekGate) Control(f func(fd uintptr)) error    { return g.c.raw.Control(f) }
