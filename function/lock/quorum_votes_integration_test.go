//go:build integration

package lock_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"handler/function/function/lock"
	"handler/function/function/redistest"
)

// With one master of three down, the two that answer decide: a majority of
// refusals is a refusal (409), never a 503. The dead master answers first
// (connection refused), which is when a fan-out that stops as soon as
// success is impossible answered 503.
func TestQuorumRefusalsWithAMasterDown(t *testing.T) {
	srvs, q := startServiceQuorum(t, 3)
	ctx := context.Background()
	a, err := q.Acquire(ctx, lock.AcquireRequest{ID: "held", Owner: "a", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	waitFence(t, q, srvs, "held", a.Fence)
	srvs[0].Kill()
	failFast(q)
	for i := 0; i < 10; i++ {
		if _, err := q.Heartbeat(ctx, "held", "x", time.Minute); !errors.Is(err, lock.ErrNotHeld) {
			t.Fatalf("heartbeat by a wrong owner = %v; want ErrNotHeld", err)
		}
		if _, err := q.Heartbeat(ctx, fmt.Sprintf("free/%d", i), "x", time.Minute); !errors.Is(err, lock.ErrNotHeld) {
			t.Fatalf("heartbeat of a free lock = %v; want ErrNotHeld", err)
		}
		if _, err := q.Release(ctx, "held", "x"); !errors.Is(err, lock.ErrNotHeld) {
			t.Fatalf("release by a wrong owner = %v; want ErrNotHeld", err)
		}
		if _, err := q.Release(ctx, fmt.Sprintf("free/%d", i), "x"); !errors.Is(err, lock.ErrNotHeld) {
			t.Fatalf("release of a free lock = %v; want ErrNotHeld", err)
		}
		if l, err := q.Acquire(ctx, lock.AcquireRequest{ID: "held", Owner: "x", TTL: time.Minute}); !errors.Is(err, lock.ErrHeld) || l.Fence != a.Fence {
			t.Fatalf("acquire of a held lock = %+v, %v; want ErrHeld with fence %d", l, err, a.Fence)
		}
		if l, err := q.Inspect(ctx, "held"); err != nil || !l.Held || l.Fence != a.Fence {
			t.Fatalf("inspect of the held lock = %+v, %v", l, err)
		}
		if l, err := q.Inspect(ctx, fmt.Sprintf("free/%d", i)); err != nil || l.Held {
			t.Fatalf("inspect of a free lock = %+v, %v", l, err)
		}
	}
	if h, err := q.Heartbeat(ctx, "held", "a", time.Minute); err != nil || h.Fence != a.Fence {
		t.Fatalf("the holder's heartbeat = %+v, %v", h, err)
	}
}

// Five masters, one down, the lock held on three of the four that answer:
// the acquire reads enough of them to see the holder's majority and answers
// 409 with its fence, whichever answers come first.
func TestQuorumAcquireSeesTheHoldersMajority(t *testing.T) {
	srvs, q := startServiceQuorum(t, 5)
	ctx := context.Background()
	key := q.Key("h")
	const fence = 1 << 40
	for _, s := range srvs[:3] {
		if err := s.Client().HSet(ctx, key, "owner", "b", "fence", fence, "prev", "").Err(); err != nil {
			t.Fatal(err)
		}
		s.Client().PExpire(ctx, key, time.Minute)
	}
	srvs[4].Kill()
	failFast(q)
	for i := 0; i < 20; i++ {
		l, err := q.Acquire(ctx, lock.AcquireRequest{ID: "h", Owner: fmt.Sprintf("x%d", i), TTL: time.Minute})
		if !errors.Is(err, lock.ErrHeld) || l.Fence != fence {
			t.Fatalf("acquire %d = %+v, %v; want ErrHeld with fence %d", i, l, err, int64(fence))
		}
	}
	if _, err := q.Heartbeat(ctx, "h", "x", time.Minute); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("heartbeat by a wrong owner = %v; want ErrNotHeld", err)
	}
}

// Inspect reports held only for a lease a majority holds with one fence,
// free only when no lease can have a majority, and 503 in between: a lease
// on one master of three with another down may be held, and two competing
// partial grants are neither free nor held.
func TestQuorumInspectAnswersByMajority(t *testing.T) {
	srvs, q := startServiceQuorum(t, 3)
	ctx := context.Background()
	set := func(i int, id, owner string, fence int64) {
		t.Helper()
		if err := srvs[i].Client().HSet(ctx, q.Key(id), "owner", owner, "fence", fence, "prev", "").Err(); err != nil {
			t.Fatal(err)
		}
		srvs[i].Client().PExpire(ctx, q.Key(id), time.Minute)
	}
	set(0, "split", "c", 10)
	set(1, "split", "d", 11)
	if l, err := q.Inspect(ctx, "split"); !errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("inspect of a lock split between two partial grants = %+v, %v; want ErrUnavailable", l, err)
	}
	set(1, "one", "c", 10)
	srvs[2].Kill()
	failFast(q)
	if l, err := q.Inspect(ctx, "one"); !errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("inspect of a lease on one master, another down = %+v, %v; want ErrUnavailable", l, err)
	}
	set(0, "two", "c", 10)
	set(1, "two", "c", 10)
	if l, err := q.Inspect(ctx, "two"); err != nil || !l.Held || l.Fence != 10 {
		t.Fatalf("inspect of a lease on two masters = %+v, %v", l, err)
	}
	if l, err := q.Inspect(ctx, "none"); err != nil || l.Held {
		t.Fatalf("inspect of a free lock = %+v, %v", l, err)
	}
}

// failFast makes the clients of the masters that are down fail at once, as
// they do in a service once a master has been down a while: go-redis
// answers with the last dial error, without dialling, after as many failed
// dials as its pool has connections. The dead master's error then arrives
// before the answers of the live ones.
func failFast(q *lock.QuorumStore) {
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = q.Ping(context.Background())
		}()
	}
	wg.Wait()
}

// startServiceQuorum is startQuorum with the service's clients, which never
// retry a command (function/backend.go): a dead master's error is not held
// back by a retry's backoff.
func startServiceQuorum(tb testing.TB, n int) ([]*redistest.Server, *lock.QuorumStore) {
	tb.Helper()
	var srvs []*redistest.Server
	var clients []redis.UniversalClient
	for i := 0; i < n; i++ {
		s := redistest.Start(tb)
		srvs = append(srvs, s)
		o := tuning(&redis.Options{Addr: s.Addr()})
		o.MaxRetries = -1
		clients = append(clients, redis.NewClient(o))
	}
	q, err := lock.NewQuorumStore(clients, lock.RedisOptions{Prefix: "it:", Timeout: opTimeout})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { q.Close() })
	return srvs, q
}
