//go:build integration

package lock_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"handler/function/function/lock"
	"handler/function/function/redistest"
)

// commandLog records the name of every command a client sends, and its dials.
type commandLog struct {
	mu    sync.Mutex
	names []string
	dials int
}

func (l *commandLog) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		l.mu.Lock()
		l.dials++
		l.mu.Unlock()
		return next(ctx, network, addr)
	}
}

func (l *commandLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		l.record(cmd)
		return next(ctx, cmd)
	}
}

func (l *commandLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			l.record(c)
		}
		return next(ctx, cmds)
	}
}

func (l *commandLog) record(cmd redis.Cmder) {
	name := cmd.Name()
	if a := cmd.Args(); len(a) > 1 && name == "script" {
		name += " " + strings.ToLower(a[1].(string))
	}
	l.mu.Lock()
	l.names = append(l.names, name)
	l.mu.Unlock()
}

// take returns the names recorded since the last take and the dials.
func (l *commandLog) take() ([]string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, d := l.names, l.dials
	l.names, l.dials = nil, 0
	return n, d
}

func loggedStore(t *testing.T, addr string, timeout time.Duration) (*lock.RedisStore, *commandLog, *redis.Client) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, ContextTimeoutEnabled: true,
		DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, MaxRetries: -1})
	log := &commandLog{}
	rdb.AddHook(log)
	s := lock.NewRedisStore(rdb, lock.RedisOptions{Prefix: "warm:", Timeout: timeout})
	t.Cleanup(func() { s.Close() })
	return s, log, rdb
}

// After Warm the first acquire reuses Warm's connection and sends the
// script's hash, never its source.
func TestWarmFirstAcquireSendsNoScript(t *testing.T) {
	srv := redistest.Start(t)
	s, log, rdb := loggedStore(t, srv.Addr(), 2*time.Second)
	ctx := context.Background()
	if err := s.Warm(ctx); err != nil {
		t.Fatal(err)
	}
	names, dials := log.take()
	if dials != 1 || len(names) == 0 || names[0] != "script load" {
		t.Fatalf("Warm sent %v over %d dials, want SCRIPT LOADs over one", names, dials)
	}
	l := lock.NewLocker(s, s)
	lease, err := l.Acquire(ctx, lock.AcquireRequest{ID: "w", Owner: "o", TTL: time.Minute})
	if err != nil || lease.Fence == 0 {
		t.Fatalf("acquire after Warm: %+v, %v", lease, err)
	}
	if _, err := l.Release(ctx, "w", "o"); err != nil {
		t.Fatal(err)
	}
	names, dials = log.take()
	if dials != 0 {
		t.Fatalf("the first calls after Warm dialled %d times", dials)
	}
	for _, n := range names {
		if n == "eval" {
			t.Fatalf("a call after Warm sent EVAL (the script's source): %v", names)
		}
	}
	// A lost script cache still costs one NOSCRIPT, then EVAL, as before.
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	log.take()
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "w", Owner: "o", TTL: time.Minute}); err != nil {
		t.Fatalf("acquire after SCRIPT FLUSH: %v", err)
	}
	if names, _ = log.take(); strings.Join(names, ",") != "evalsha,eval" {
		t.Fatalf("acquire after SCRIPT FLUSH sent %v, want evalsha then eval", names)
	}
}

// Warm against a Redis that is down gives up within the store's timeout,
// and the store answers as it would have: unavailable, then, once Redis is
// back, granted.
func TestWarmRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	s, _, _ := loggedStore(t, srv.Addr(), 300*time.Millisecond)
	srv.Kill()
	ctx := context.Background()
	start := time.Now()
	err := s.Warm(ctx)
	if !errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("Warm with Redis down: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Warm with Redis down took %v", d)
	}
	l := lock.NewLocker(s, s)
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "w", Owner: "o", TTL: time.Minute}); !errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("acquire with Redis down: %v", err)
	}
	srv.Restart()
	var lease lock.Lease
	for deadline := time.Now().Add(5 * time.Second); ; {
		if lease, err = l.Acquire(ctx, lock.AcquireRequest{ID: "w", Owner: "o", TTL: time.Minute}); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || lease.Fence == 0 {
		t.Fatalf("acquire once Redis is back: %+v, %v", lease, err)
	}
}

// A Cluster's Warm loads the scripts on every master, so a first call on
// any slot finds its script.
func TestWarmCluster(t *testing.T) {
	srvs := redistest.StartCluster(t, 3)
	s := lock.NewRedisStore(clusterClient(srvs), lock.RedisOptions{Prefix: "it:", Timeout: 2 * time.Second, Sharded: true})
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	if err := s.Warm(ctx); err != nil {
		t.Fatal(err)
	}
	for _, srv := range srvs {
		if role, _ := srv.Client().Do(ctx, "ROLE").Slice(); len(role) == 0 || role[0] != "master" {
			continue
		}
		ok, err := srv.Client().ScriptExists(ctx, lock.ScriptHashes()...).Result()
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range ok {
			if !e {
				t.Fatalf("%s: script %d not loaded after Warm", srv.Addr(), i)
			}
		}
	}
}

// A quorum's Warm loads the scripts on every master.
func TestWarmQuorum(t *testing.T) {
	var clients []redis.UniversalClient
	var srvs []*redistest.Server
	for range 3 {
		srv := redistest.Start(t)
		srvs = append(srvs, srv)
		clients = append(clients, redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: 2}))
	}
	q, err := lock.NewQuorumStore(clients, lock.RedisOptions{Prefix: "it:", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	ctx := context.Background()
	if err := q.Warm(ctx); err != nil {
		t.Fatal(err)
	}
	for _, srv := range srvs {
		ok, err := srv.Client().ScriptExists(ctx, lock.QuorumScriptHashes()...).Result()
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range ok {
			if !e {
				t.Fatalf("%s: script %d not loaded after Warm", srv.Addr(), i)
			}
		}
	}
	l := lock.NewLocker(q, q)
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: "w", Owner: "o", TTL: time.Minute}); err != nil {
		t.Fatalf("quorum acquire after Warm: %v", err)
	}
}
