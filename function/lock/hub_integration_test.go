//go:build integration

package lock_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"handler/function/function/lock"
	"handler/function/function/redistest"
)

// pubsubProxy forwards connections to one Redis. Blackhole holds back every
// byte of every connection, new ones included; Freeze does so for the
// connections open now only (half-open connections: new ones work); Drop
// resets the open ones.
type pubsubProxy struct {
	ln     net.Listener
	target string
	all    atomic.Bool
	mu     sync.Mutex
	conns  map[*proxied]struct{}
}

type proxied struct {
	c, s   net.Conn
	frozen atomic.Bool
}

func startPubSubProxy(t *testing.T, target string) *pubsubProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pubsubProxy{ln: ln, target: target, conns: map[*proxied]struct{}{}}
	t.Cleanup(func() { ln.Close(); p.Drop() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			pc := &proxied{c: c, s: s}
			p.mu.Lock()
			p.conns[pc] = struct{}{}
			p.mu.Unlock()
			go p.pipe(pc, c, s)
			go p.pipe(pc, s, c)
		}
	}()
	return p
}

func (p *pubsubProxy) pipe(pc *proxied, from, to net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if err != nil {
			to.Close()
			return
		}
		if p.all.Load() || pc.frozen.Load() {
			continue // held back for ever: the peer hears nothing
		}
		if _, err := to.Write(buf[:n]); err != nil {
			from.Close()
			return
		}
	}
}

func (p *pubsubProxy) Addr() string { return p.ln.Addr().String() }

func (p *pubsubProxy) Blackhole(on bool) { p.all.Store(on) }

func (p *pubsubProxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pc := range p.conns {
		pc.frozen.Store(true)
	}
}

func (p *pubsubProxy) Drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pc := range p.conns {
		pc.c.Close()
		pc.s.Close()
		delete(p.conns, pc)
	}
}

// splitClient runs commands on one client and pub/sub on another, so a
// fault can hit the wake-ups alone.
type splitClient struct {
	redis.UniversalClient
	sub *redis.Client
}

func (c splitClient) Subscribe(ctx context.Context, channels ...string) *redis.PubSub {
	return c.sub.Subscribe(ctx, channels...)
}

func (c splitClient) Close() error {
	c.sub.Close()
	return c.UniversalClient.Close()
}

// newSplitLocker is a Locker on srv whose wake-ups go through p; dial, when
// set, is called before each pub/sub dial.
func newSplitLocker(t *testing.T, srv *redistest.Server, p *pubsubProxy, dial func(ctx context.Context) error) (*lock.Locker, *lock.RedisStore) {
	var d net.Dialer
	sub := redis.NewClient(tuning(&redis.Options{Addr: p.Addr(), DialTimeout: 3 * time.Second,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if dial != nil {
				if err := dial(ctx); err != nil {
					return nil, err
				}
			}
			return d.DialContext(ctx, network, addr)
		}}))
	rdb := splitClient{UniversalClient: redis.NewClient(tuning(&redis.Options{Addr: srv.Addr()})), sub: sub}
	s := lock.NewRedisStore(rdb, lock.RedisOptions{Prefix: "hub:", Timeout: opTimeout})
	t.Cleanup(func() { s.Close() })
	return lock.NewLocker(s, s), s
}

// A waiter whose subscription is never confirmed (the pub/sub connection
// is blackholed) still tries again when the holder's lease expires, and
// gets the lock then, not at the end of its wait.
func TestUnconfirmedWaiterRetriesAtExpiry(t *testing.T) {
	srv := redistest.Start(t)
	p := startPubSubProxy(t, srv.Addr())
	l, _ := newSplitLocker(t, srv, p, nil)
	ctx := context.Background()
	p.Blackhole(true)
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "x", Owner: "holder", TTL: 1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	lease, err := l.Acquire(ctx, lock.AcquireRequest{ID: "x", Owner: "waiter", TTL: time.Second, Wait: 10 * time.Second})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("waiter = %+v, %v after %v; want the lock at the holder's expiry", lease, err, took)
	}
	if took > 6*time.Second {
		t.Fatalf("the waiter got the lock after %v; the holder's lease ended at 1.5s", took)
	}
}

// A pub/sub connection that goes silent (half-open: bytes vanish both ways)
// is found out by its unanswered ping and replaced; the waiters try again,
// so a release whose wake-up was lost is seen within seconds, long before
// the holder's lease would have ended.
func TestHalfOpenPubSubIsReplaced(t *testing.T) {
	srv := redistest.Start(t)
	p := startPubSubProxy(t, srv.Addr())
	l, s := newSplitLocker(t, srv, p, nil)
	ctx := context.Background()
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "y", Owner: "holder", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := l.Acquire(ctx, lock.AcquireRequest{ID: "y", Owner: "waiter", TTL: time.Second, Wait: 20 * time.Second})
		done <- err
	}()
	waitNumSub(t, srv, "hub:{y}:released", 1)
	p.Freeze()
	if _, err := s.Release(ctx, "y", "holder"); err != nil {
		t.Fatal(err)
	}
	released := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("waiter: %v", err)
		}
		if d := time.Since(released); d > 10*time.Second {
			t.Fatalf("the waiter saw the release after %v", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the waiter never saw the release: the silent connection was kept")
	}
}

// While the pub/sub connection cannot be dialled, leaving and subscribing
// do not queue behind one another: a cancelled waiter returns at once, and
// a new waiter's wait is bounded by its own wait.
func TestPubSubOutageDoesNotStallTheHub(t *testing.T) {
	srv := redistest.Start(t)
	p := startPubSubProxy(t, srv.Addr())
	var outage atomic.Bool
	l, _ := newSplitLocker(t, srv, p, func(ctx context.Context) error {
		if outage.Load() {
			// A dial that hangs until its timeout, as to a host that is gone.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(3 * time.Second):
				return errors.New("dial timeout")
			}
		}
		return nil
	})
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: id, Owner: "holder", TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	first := make(chan time.Time, 1)
	go func() {
		_, _ = l.Acquire(wctx, lock.AcquireRequest{ID: "a", Owner: "w1", TTL: time.Second, Wait: 20 * time.Second})
		first <- time.Now()
	}()
	waitNumSub(t, srv, "hub:{a}:released", 1)
	outage.Store(true)
	p.Drop() // go-redis dials again, and hangs there
	time.Sleep(200 * time.Millisecond)

	cancelled := time.Now()
	cancel()
	var back time.Time
	select {
	case back = <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled waiter never returned")
	}
	if d := back.Sub(cancelled); d > time.Second {
		t.Errorf("the cancelled waiter returned %v after its cancellation", d)
	}
	start := time.Now()
	_, err := l.Acquire(ctx, lock.AcquireRequest{ID: "b", Owner: "w2", TTL: time.Second, Wait: 500 * time.Millisecond})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a waiter with a 500ms wait answered after %v (%v)", took, err)
	}
	if !errors.Is(err, lock.ErrHeld) && !errors.Is(err, lock.ErrUnavailable) {
		t.Errorf("the waiter during the outage = %v", err)
	}
	outage.Store(false)
}

// waitNumSub waits until Redis counts n subscribers of channel.
func waitNumSub(t *testing.T, srv *redistest.Server, channel string, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := srv.Client().PubSubNumSub(context.Background(), channel).Result()
		if err == nil && got[channel] == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscribers of %s = %v (%v), want %d", channel, got, err, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
