package access

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"handler/function/function/api"
	"handler/function/function/lock"
)

func miniLocks(t *testing.T) (api.Locks, redis.UniversalClient) {
	t.Helper()
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	return lock.NewRedisStore(rdb, lock.RedisOptions{}), rdb
}

var (
	teamA = Identity{Kind: Token, Name: "team-a", Entry: "team-a"}
	teamB = Identity{Kind: Token, Name: "team-b", Entry: "team-b"}
)

// Threat 1: the derived owner is a function of public data only. With a
// secret key, what an observer computes from the event is not the owner.
func TestDerivedOwnerNeedsTheKey(t *testing.T) {
	key := []byte("secret key of this deployment")
	o := DeriveOwner(key, teamA.Principal(), "/producer", "event-1")
	if o != DeriveOwner(key, teamA.Principal(), "/producer", "event-1") {
		t.Fatal("the derivation is not deterministic: a redelivery would be another owner")
	}
	if o == DeriveOwner([]byte("a guess"), teamA.Principal(), "/producer", "event-1") ||
		o == DeriveOwner(nil, teamA.Principal(), "/producer", "event-1") {
		t.Fatal("the derived owner does not depend on the key")
	}
	if o == DeriveOwner(key, teamA.Principal(), "/producer", "event-2") ||
		o == DeriveOwner(key, teamA.Principal(), "/producer2", "event-1") ||
		o == DeriveOwner(key, teamA.Principal(), "/produce", "revent-1") {
		t.Fatal("distinct events share a derived owner")
	}
	if lock.ValidateOwner(o) != nil || lock.ValidateOwner(BindOwner(key, teamA.Principal(), o)) != nil {
		t.Fatal("derived or bound owners are not valid owners")
	}
}

// Threat 2: the owner travels in replies every subscriber of the broker
// sees. Bound to the identity that acquired, it is of no use to another.
func TestBoundOwnerIsHonouredOnlyFromItsIdentity(t *testing.T) {
	locks, _ := miniLocks(t)
	ctx := context.Background()
	key := []byte("k")
	asA, asB := BindOwners(locks, key, teamA), BindOwners(locks, key, teamB)
	lease, err := asA.Acquire(ctx, lock.AcquireRequest{ID: "jobs/1", Owner: "seen-on-the-broker", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if lease.Owner != "seen-on-the-broker" {
		t.Fatalf("the answer shows owner %q, want the one team-a named", lease.Owner)
	}
	if _, err := asB.Heartbeat(ctx, "jobs/1", "seen-on-the-broker", time.Minute); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("team-b heartbeat with team-a's owner: %v, want ErrNotHeld", err)
	}
	if _, err := asB.Release(ctx, "jobs/1", "seen-on-the-broker"); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("team-b release with team-a's owner: %v, want ErrNotHeld", err)
	}
	if _, err := locks.Release(ctx, "jobs/1", "seen-on-the-broker"); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("an unbound release with the owner: %v, want ErrNotHeld", err)
	}
	if l, err := asA.Heartbeat(ctx, "jobs/1", "seen-on-the-broker", time.Minute); err != nil || l.Owner != "seen-on-the-broker" {
		t.Fatalf("team-a heartbeat: %+v, %v", l, err)
	}
	if _, err := asA.Release(ctx, "jobs/1", "seen-on-the-broker"); err != nil {
		t.Fatalf("team-a release: %v", err)
	}
	if BindOwners(locks, key, Identity{Kind: Anonymous}) != locks {
		t.Error("anonymous callers are bound; there is nobody to tell apart")
	}
}

// Threat 3: two senders that reuse one source and id are one owner, and
// both get "acquired". Bound to their identities, the second is refused.
func TestSendersReusingAnEventIDAreDistinctOwners(t *testing.T) {
	locks, _ := miniLocks(t)
	ctx := context.Background()
	key := []byte("k")
	acquire := func(ident Identity) error {
		owner := DeriveOwner(key, ident.Principal(), "/shared-source", "42")
		_, err := BindOwners(locks, key, ident).Acquire(ctx, lock.AcquireRequest{ID: "jobs/1", Owner: owner, TTL: time.Minute})
		return err
	}
	if err := acquire(teamA); err != nil {
		t.Fatal(err)
	}
	if err := acquire(teamA); err != nil {
		t.Fatalf("team-a redelivered: %v, want the idempotent re-acquire", err)
	}
	if err := acquire(teamB); !errors.Is(err, lock.ErrHeld) {
		t.Fatalf("team-b reusing team-a's source and id: %v, want ErrHeld", err)
	}
}

func TestBindTakesTheIdentityFromTheContext(t *testing.T) {
	locks, _ := miniLocks(t)
	bound := NewOwnerKey("k", nil).Bind(locks)
	ctxA := WithIdentity(context.Background(), teamA)
	ctxB := WithIdentity(context.Background(), teamB)
	if _, err := bound.Acquire(ctxA, lock.AcquireRequest{ID: "x", Owner: "o", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := bound.Release(ctxB, "x", "o"); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("team-b: %v, want ErrNotHeld", err)
	}
	if _, err := bound.Release(context.Background(), "x", "o"); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("anonymous: %v, want ErrNotHeld", err)
	}
	if l, err := bound.Heartbeat(ctxA, "x", "o", time.Minute); err != nil || l.Owner != "o" {
		t.Fatalf("team-a heartbeat: %+v, %v", l, err)
	}
	// Anonymous owners are stored as named.
	if _, err := bound.Acquire(context.Background(), lock.AcquireRequest{ID: "y", Owner: "p", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := locks.Release(context.Background(), "y", "p"); err != nil {
		t.Fatalf("anonymous owner was bound: %v", err)
	}
	// No key: a bound call is a 503, not a silent unbound one.
	if _, err := NewOwnerKey("", nil).Bind(locks).Acquire(ctxA, lock.AcquireRequest{ID: "z", Owner: "o", TTL: time.Minute}); !errors.Is(err, lock.ErrUnavailable) {
		t.Fatalf("no key: %v, want ErrUnavailable", err)
	}
}
