package drive

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"handler/function/function/lock"
)

// Direct drives Candado's lock package in this process: the same Lua
// scripts, pipeliner and wake-ups on the same Redis, with no HTTP between.
type Direct struct {
	rdb    *redis.Client
	store  *lock.RedisStore
	locker *lock.Locker
}

// NewDirect returns a driver on the Redis at addr, keys under prefix.
func NewDirect(addr, prefix string) *Direct {
	rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, ContextTimeoutEnabled: true,
		DisableIdentity: true, PoolSize: 64})
	store := lock.NewRedisStore(rdb, lock.RedisOptions{Prefix: prefix})
	return &Direct{rdb: rdb, store: store, locker: lock.NewLocker(store, store)}
}

func (d *Direct) Name() string { return "go-redis direct (lock package, no HTTP)" }

// Client is the driver's Redis client, for INFO and the like.
func (d *Direct) Client() *redis.Client { return d.rdb }

func (d *Direct) Acquire(ctx context.Context, id, owner string, wait time.Duration) (int64, error) {
	l, err := d.locker.Acquire(ctx, lock.AcquireRequest{ID: id, Owner: owner, TTL: LeaseTTL, Wait: wait})
	if errors.Is(err, lock.ErrHeld) {
		return 0, ErrHeld
	}
	return l.Fence, err
}

func (d *Direct) Release(ctx context.Context, id, owner string) error {
	_, err := d.locker.Release(ctx, id, owner)
	return err
}

func (d *Direct) Close() error {
	d.locker.Shutdown()
	return d.store.Close()
}
