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
	q.undo(ctx, "u", "x", l.Fence-1, []int{0}) // a stale undo of an earlier attempt
	if owner := minis[0].HGet(q.Key("u"), "owner"); owner != "x" {
		t.Fatalf("a stale undo ended the current grant: owner %q", owner)
	}
	q.undo(ctx, "u", "x", l.Fence, []int{0})
	if owner := minis[0].HGet(q.Key("u"), "owner"); owner != "" {
		t.Fatalf("the undo of this grant left owner %q", owner)
	}
	if fence := minis[0].HGet(q.Key("u"), "fence"); fence == "" {
		t.Fatal("the undo dropped the fence")
	}
}
