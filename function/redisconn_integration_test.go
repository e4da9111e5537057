//go:build integration

package function

import (
	"context"
	"testing"
	"time"

	"handler/function/function/redistest"
)

// A connection Redis closed while it sat in the pool is dropped by go-redis'
// health check before it is used, once it has been idle for peekAfter: the
// next command gets a new connection and succeeds, as with go-redis' own
// dialer. (Within peekAfter of its last answer it would be used, and that
// one command would fail: the cost of not peeking at busy connections.)
func TestIdleConnectionClosedByRedisIsReplaced(t *testing.T) {
	srv := redistest.Start(t)
	rdb, err := newRedisClient(srv.URL(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx := context.Background()
	for round := range 3 {
		if err := rdb.Ping(ctx).Err(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if n, err := srv.Client().ClientKillByFilter(ctx, "TYPE", "normal", "SKIPME", "yes").Result(); err != nil || n == 0 {
			t.Fatalf("round %d: CLIENT KILL closed %d connections (%v)", round, n, err)
		}
		time.Sleep(peekAfter + 50*time.Millisecond)
		if err := rdb.Ping(ctx).Err(); err != nil {
			t.Fatalf("round %d: the first command after Redis closed the idle connection failed: %v", round, err)
		}
	}
}
