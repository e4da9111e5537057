package access

import (
	"context"
	"errors"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"handler/function/function/lock"
)

func TestOwnerKeyIsMadeOnceAndShared(t *testing.T) {
	_, rdb := miniLocks(t)
	ctx := context.Background()
	k1 := NewOwnerKey("", RedisKeyStore(rdb, "candado:owner-key"))
	k2 := NewOwnerKey("", RedisKeyStore(rdb, "candado:owner-key"))
	a, err := k1.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := k2.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) || len(a) < 32 {
		t.Fatalf("replicas disagree on the owner key (%d and %d bytes)", len(a), len(b))
	}
	if ttl := rdb.TTL(ctx, "candado:owner-key").Val(); ttl != -1 {
		t.Errorf("the stored owner key has TTL %s, want none", ttl)
	}
	c, err := NewOwnerKey("configured", RedisKeyStore(rdb, "candado:owner-key")).Get(ctx)
	if err != nil || string(c) != "configured" {
		t.Fatalf("configured key = %q, %v", c, err)
	}
	if _, err := NewOwnerKey("", nil).Get(ctx); !errors.Is(err, lock.ErrUnavailable) {
		t.Errorf("no key and no store: %v, want ErrUnavailable", err)
	}
}

func TestOwnerKeyRetriesAfterRedisTrouble(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	k := NewOwnerKey("", RedisKeyStore(rdb, "k"))
	m.SetError("LOADING")
	if _, err := k.Get(context.Background()); !errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("Redis failing: %v, want ErrUnavailable", err)
	}
	m.SetError("")
	if _, err := k.Get(context.Background()); err != nil {
		t.Fatalf("Redis back: %v", err)
	}
}

func TestQuorumKeyStoreTakesTheMajoritysKey(t *testing.T) {
	ctx := context.Background()
	var masters []*miniredis.Miniredis
	var clients []redis.UniversalClient
	for range 3 {
		m := miniredis.RunT(t)
		c := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1})
		t.Cleanup(func() { _ = c.Close() })
		masters, clients = append(masters, m), append(clients, c)
	}
	// Another replica won on two masters; a third master lost its data and
	// this replica writes its own there.
	if err := masters[0].Set("k", "theirs"); err != nil {
		t.Fatal(err)
	}
	if err := masters[1].Set("k", "theirs"); err != nil {
		t.Fatal(err)
	}
	got, err := NewOwnerKey("", QuorumKeyStore(clients, "k")).Get(ctx)
	if err != nil || string(got) != "theirs" {
		t.Fatalf("key = %q, %v; want the majority's", got, err)
	}
	// No majority answers: unavailable, and nothing is remembered.
	masters[0].Close()
	masters[1].Close()
	if _, err := NewOwnerKey("", QuorumKeyStore(clients, "k")).Get(ctx); !errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("one of three masters up: %v, want ErrUnavailable", err)
	}
}
