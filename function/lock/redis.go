package lock

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed acquire.lua
	acquireLua string
	//go:embed release.lua
	releaseLua string
	//go:embed heartbeat.lua
	heartbeatLua string
	//go:embed inspect.lua
	inspectLua string

	// Scripts are sent by EVAL until one call succeeded, then by EVALSHA
	// (EVAL again after a NOSCRIPT); see pipeliner.exec. Start-up does no
	// I/O to load them.
	acquireScript   = redis.NewScript(acquireLua)
	releaseScript   = redis.NewScript(releaseLua)
	heartbeatScript = redis.NewScript(heartbeatLua)
	inspectScript   = redis.NewScript(inspectLua)
)

// RedisOptions tunes a RedisStore.
type RedisOptions struct {
	// Prefix starts every key and channel name; default "candado:".
	Prefix string
	// Timeout bounds each round trip to Redis; default 500ms.
	Timeout time.Duration
	// Tombstone is how long a released lock keeps its last fence; default
	// 500ms. It must stay under a second: a lease's keys are gone within 1s.
	Tombstone time.Duration
	// Sharded uses SPUBLISH/SSUBSCRIBE (Redis Cluster 7+) for wake-ups.
	Sharded bool
}

// RedisStore keeps leases in one Redis (or one Sentinel-managed master, or a
// Cluster: every key of a lock shares one hash slot). Each operation is one
// Lua script, one round trip.
type RedisStore struct {
	rdb  redis.UniversalClient
	opts RedisOptions
	hub  *hub
	pipe *pipeliner
	ver  versionCheck
}

// NewRedisStore returns a store on rdb. It does no I/O.
func NewRedisStore(rdb redis.UniversalClient, opts RedisOptions) *RedisStore {
	if opts.Prefix == "" {
		opts.Prefix = "candado:"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 500 * time.Millisecond
	}
	if opts.Tombstone <= 0 {
		opts.Tombstone = 500 * time.Millisecond
	}
	s := &RedisStore{rdb: rdb, opts: opts, pipe: newPipeliner(rdb, opts.Timeout, 2)}
	s.hub = newHub(func(ctx context.Context) *redis.PubSub {
		if opts.Sharded {
			return rdb.SSubscribe(ctx)
		}
		return rdb.Subscribe(ctx)
	}, opts.Sharded, opts.Timeout)
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		s.hub.reload = cc.ReloadState
	}
	return s
}

// Key is the Redis key of lock id. The braces make id the Cluster hash tag,
// so the key and the wake-up channel share a slot.
func (s *RedisStore) Key(id string) string { return s.opts.Prefix + "{" + id + "}" }

func (s *RedisStore) channel(id string) string { return s.Key(id) + ":released" }

func (s *RedisStore) publishCmd() string {
	if s.opts.Sharded {
		return "SPUBLISH"
	}
	return "PUBLISH"
}

// Acquire takes the lease once; it ignores req.Wait (see Locker).
func (s *RedisStore) Acquire(ctx context.Context, req AcquireRequest) (Lease, error) {
	l, ok, err := s.run(ctx, acquireScript, req.ID, []string{s.Key(req.ID), s.changes(req.ID)}, req.Owner, ms(req.TTL), changesCmd)
	if err != nil {
		return l, err
	}
	if !ok {
		return l, ErrHeld
	}
	l.Owner = req.Owner
	return l, nil
}

// Release gives the lease back if owner holds it.
func (s *RedisStore) Release(ctx context.Context, id, owner string) (Lease, error) {
	l, ok, err := s.run(ctx, releaseScript, id, []string{s.Key(id), s.channel(id), s.changes(id)},
		owner, ms(s.opts.Tombstone), s.publishCmd(), changesCmd)
	if err != nil {
		return l, err
	}
	if !ok {
		return l, ErrNotHeld
	}
	l.Owner = owner
	return l, nil
}

// Heartbeat extends owner's live lease to ttl from now.
func (s *RedisStore) Heartbeat(ctx context.Context, id, owner string, ttl time.Duration) (Lease, error) {
	l, ok, err := s.run(ctx, heartbeatScript, id, []string{s.Key(id), s.changes(id)}, owner, ms(ttl), changesCmd)
	if err != nil {
		return l, err
	}
	if !ok {
		return l, ErrNotHeld
	}
	l.Owner = owner
	return l, nil
}

// Inspect reports the lock's state without its owner.
func (s *RedisStore) Inspect(ctx context.Context, id string) (Lease, error) {
	l, _, err := s.run(ctx, inspectScript, id, []string{s.Key(id)})
	return l, err
}

// Ping reports whether Redis answers within the store's timeout.
func (s *RedisStore) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Subscribe returns a channel that receives a value when a lease on id is
// released; see hub.
func (s *RedisStore) Subscribe(ctx context.Context, id string) (<-chan struct{}, func(), error) {
	return s.hub.subscribe(ctx, s.channel(id))
}

// Close ends the wake-up subscription and the connections.
func (s *RedisStore) Close() error {
	s.hub.close()
	s.pipe.close()
	return s.rdb.Close()
}

// scriptReply is the answer every lock script gives, {status, held, fence,
// pttl}: what the script did (1: it took effect; quorum_acquire.lua has more
// statuses), whether the lock is held now, its current (or last) fence and
// the remaining milliseconds of a held lease.
type scriptReply struct {
	status int64
	held   bool
	fence  int64
	pttl   int64
}

// decodeScriptReply reads a {status, held, fence, pttl} answer.
func decodeScriptReply(res []int64) (scriptReply, error) {
	if len(res) != 4 {
		return scriptReply{}, fmt.Errorf("script answered %d values, want 4", len(res))
	}
	return scriptReply{status: res[0], held: res[1] == 1, fence: res[2], pttl: res[3]}, nil
}

// ok reports whether the script took effect (status 1).
func (r scriptReply) ok() bool { return r.status == 1 }

// ttl is the remaining time of a held lease, else 0.
func (r scriptReply) ttl() time.Duration {
	if !r.held || r.pttl <= 0 {
		return 0
	}
	return time.Duration(r.pttl) * time.Millisecond
}

// run evaluates a script that answers a scriptReply; ok is its status 1.
func (s *RedisStore) run(ctx context.Context, script *redis.Script, id string, keys []string, args ...any) (Lease, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	res, err := s.pipe.do(ctx, script, keys, args)
	if err != nil {
		return Lease{ID: id}, false, fmt.Errorf("%w: %w", ErrUnavailable, s.ver.explain(ctx, s.rdb, err))
	}
	reply, err := decodeScriptReply(res)
	if err != nil {
		return Lease{ID: id}, false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return Lease{ID: id, Held: reply.held, Fence: reply.fence, TTL: reply.ttl()}, reply.ok(), nil
}

// ms renders d as whole milliseconds for PX-style arguments.
func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
