package lock

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// TestQuorumUndoTouchesOnlyItsGrant: an undo that arrives after the same
// owner's next grant (another fence) must leave that grant alone.
func TestQuorumUndoTouchesOnlyItsGrant(t *testing.T) {
	var clients []redis.UniversalClient
	var minis []*miniredis.Miniredis
	for i := 0; i < 3; i++ {
		m := miniredis.RunT(t)
		minis = append(minis, m)
		clients = append(clients, redis.NewClient(&redis.Options{Addr: m.Addr(), Protocol: 2}))
	}
	q, err := NewQuorumStore(clients, RedisOptions{Prefix: "q:"})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()
	l, err := q.Acquire(ctx, AcquireRequest{ID: "u", Owner: "x", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Acquire answers once a majority granted: node 0's grant may still be
	// on its way.
	for deadline := time.Now().Add(5 * time.Second); minis[0].HGet(q.Key("u"), "owner") != "x"; {
		if time.Now().After(deadline) {
			t.Fatal("node 0 never got the grant")
		}
		time.Sleep(time.Millisecond)
	}
	q.undo(ctx, "u", "x", l.Fence-1, []int{0}, true) // a stale undo of an earlier attempt
	if owner := minis[0].HGet(q.Key("u"), "owner"); owner != "x" {
		t.Fatalf("a stale undo ended the current grant: owner %q", owner)
	}
	q.undo(ctx, "u", "x", l.Fence, []int{0}, true)
	if owner := minis[0].HGet(q.Key("u"), "owner"); owner != "" {
		t.Fatalf("the undo of this grant left owner %q", owner)
	}
	if fence := minis[0].HGet(q.Key("u"), "fence"); fence == "" {
		t.Fatal("the undo dropped the fence")
	}
}

// TestQuorumGrantNeverRewritesTheCallersLease: a proposal above the fence of
// the caller's own lease leaves that lease as it is (an undo of the attempt
// could otherwise end it); the proposal of its own fence extends it.
func TestQuorumGrantNeverRewritesTheCallersLease(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), Protocol: 2})
	defer rdb.Close()
	ctx := context.Background()
	key := "q:g"
	m.HSet(key, "owner", "a", "fence", "100", "prev", "")
	m.SetTTL(key, time.Second)
	grant := func(owner string, ttl time.Duration, fence int64) []int64 {
		t.Helper()
		res, err := quorumAcquireScript.get().Run(ctx, rdb, []string{key}, owner, ms(ttl), fence).Int64Slice()
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := grant("a", time.Minute, 200); res[0] != grantOtherFence || res[2] != 100 {
		t.Fatalf("a proposal above the caller's fence answered %v", res)
	}
	if f, ttl := m.HGet(key, "fence"), m.TTL(key); f != "100" || ttl != time.Second {
		t.Fatalf("the caller's lease was rewritten: fence %s, ttl %s", f, ttl)
	}
	if res := grant("a", time.Minute, 100); res[0] != grantKept || res[2] != 100 {
		t.Fatalf("the caller's own fence answered %v", res)
	}
	if ttl := m.TTL(key); ttl != time.Minute {
		t.Fatalf("the holder's retry left ttl %s", ttl)
	}
	if res := grant("b", time.Minute, 300); res[0] != grantHeld {
		t.Fatalf("another owner's proposal answered %v", res)
	}
}
