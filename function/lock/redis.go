package lock

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
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
	//go:embed leave.lua
	leaveLua string

	// Scripts are sent by EVAL until one call succeeded, then by EVALSHA
	// (EVAL again after a NOSCRIPT); see pipeliner.exec. Start-up does no
	// I/O to load them (Warm does, when asked).
	acquireScript   = newLua(acquireLua)
	releaseScript   = newLua(releaseLua)
	heartbeatScript = newLua(heartbeatLua)
	inspectScript   = newLua(inspectLua)
	leaveScript     = newLua(leaveLua)
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
// so every key and channel of a lock share a slot.
func (s *RedisStore) Key(id string) string { return s.opts.Prefix + "{" + id + "}" }

func (s *RedisStore) channel(id string) string { return s.Key(id) + releasedSuffix }

// leasesKey and leaseInfoKey hold the leases of a semaphore, of shared
// leases and of leases with a lock-delay (see acquire.lua).
func (s *RedisStore) leasesKey(id string) string    { return s.Key(id) + leasesSuffix }
func (s *RedisStore) leaseInfoKey(id string) string { return s.Key(id) + leaseInfoSuffix }

// The suffixes that follow a lock's key (Key) in the names of its other
// keys and its wake-up channel.
const (
	releasedSuffix       = ":released"
	changesSuffix        = ":changes"
	leasesSuffix         = ":leases"
	leaseInfoSuffix      = ":lease"
	queueSuffix          = ":queue"
	queueDeadlinesSuffix = ":queue:deadlines"
)

// The keys each script takes, as suffixes of the lock's key ("" is the
// key itself), in the script's order.
var (
	acquireKeys   = []string{"", changesSuffix, leasesSuffix, leaseInfoSuffix, queueSuffix, queueDeadlinesSuffix, releasedSuffix}
	releaseKeys   = []string{"", releasedSuffix, changesSuffix, leasesSuffix, leaseInfoSuffix, queueSuffix, queueDeadlinesSuffix}
	heartbeatKeys = []string{"", changesSuffix, leasesSuffix, leaseInfoSuffix}
	inspectKeys   = []string{"", leasesSuffix, leaseInfoSuffix, queueDeadlinesSuffix}
)

// keysOf returns lock id's keys with suffixes, all of them substrings of one
// string: one allocation for their bytes instead of one per key.
func (s *RedisStore) keysOf(id string, suffixes []string) []string {
	base := len(s.opts.Prefix) + len(id) + 2
	n := 0
	for _, x := range suffixes {
		n += base + len(x)
	}
	var b strings.Builder
	b.Grow(n)
	for _, x := range suffixes {
		b.WriteString(s.opts.Prefix)
		b.WriteByte('{')
		b.WriteString(id)
		b.WriteByte('}')
		b.WriteString(x)
	}
	all := b.String()
	keys := make([]string, len(suffixes))
	for i, x := range suffixes {
		keys[i], all = all[:base+len(x)], all[base+len(x):]
	}
	return keys
}

// queueKey and queueDeadlinesKey are the lock's queue of waiters.
func (s *RedisStore) queueKey(id string) string          { return s.Key(id) + queueSuffix }
func (s *RedisStore) queueDeadlinesKey(id string) string { return s.Key(id) + queueDeadlinesSuffix }

func (s *RedisStore) publishCmd() string {
	if s.opts.Sharded {
		return "SPUBLISH"
	}
	return "PUBLISH"
}

// QueueHold is how long a waiter's place in a lock's queue outlives its
// last try: a waiter whose instance died leaves the queue within it.
// Locker's waiters try at least every QueueRefresh.
const (
	QueueHold    = 3 * time.Second
	QueueRefresh = time.Second
)

// modeArg is the one-letter mode the scripts keep.
func modeArg(mode string) string {
	if mode == Shared {
		return "s"
	}
	return "x"
}

// Acquire takes the lease once. A request with Wait > 0 that is refused
// takes a place in the lock's queue, or refreshes the one it has, for
// min(Wait, QueueHold); Locker tries again and calls Leave when it gives up.
func (s *RedisStore) Acquire(ctx context.Context, req AcquireRequest) (Lease, error) {
	if err := ValidateAcquire(req); err != nil {
		return Lease{ID: req.ID}, err
	}
	hold := time.Duration(0)
	if req.Wait > 0 {
		hold = max(min(req.Wait, QueueHold), time.Millisecond)
	}
	id := req.ID
	keys := s.keysOf(id, acquireKeys)
	l, status, err := s.run(ctx, acquireScript.get(), id, keys, req.Owner, ms(req.TTL), changesCmd, req.Holder,
		req.limit(), modeArg(req.Mode), ms(req.LockDelay), ms(hold), s.publishCmd())
	if err != nil {
		return l, err
	}
	switch status {
	case 1:
		if l.Limit == 0 { // the plain mutex's short answer: {1, 1, fence, ttl}
			l.Holders, l.Limit, l.Mode, l.Holder = 1, 1, Exclusive, req.Holder
		}
		l.Owner = req.Owner
		l.Leases = nil
		return l, nil
	case 2:
		return l, fmt.Errorf("%w: it is held with limit %d, the acquire asked for %d", ErrLimitMismatch, l.Limit, req.limit())
	}
	if l.DelayLeft > 0 && !l.Held {
		return l, fmt.Errorf("%w: a lock-delay runs for %s more", ErrHeld, l.DelayLeft)
	}
	return l, ErrHeld
}

// Leave takes req's waiter out of the lock's queue, and wakes those behind
// it. Locker calls it when a wait ends without a grant.
func (s *RedisStore) Leave(ctx context.Context, req AcquireRequest) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	id := req.ID
	err := leaveScript.get().Run(ctx, s.rdb, []string{s.queueKey(id), s.queueDeadlinesKey(id), s.channel(id)},
		queuePlace(req), s.publishCmd()).Err()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Release gives the lease back if owner holds it.
func (s *RedisStore) Release(ctx context.Context, id, owner string) (Lease, error) {
	l, status, err := s.run(ctx, releaseScript.get(), id, s.keysOf(id, releaseKeys),
		owner, ms(s.opts.Tombstone), s.publishCmd(), changesCmd)
	if err != nil {
		return l, err
	}
	if status != 1 {
		return l, ErrNotHeld
	}
	l.Owner = owner
	return l, nil
}

// Heartbeat extends owner's live lease to ttl from now.
func (s *RedisStore) Heartbeat(ctx context.Context, id, owner string, ttl time.Duration) (Lease, error) {
	l, status, err := s.run(ctx, heartbeatScript.get(), id, s.keysOf(id, heartbeatKeys),
		owner, ms(ttl), changesCmd)
	if err != nil {
		return l, err
	}
	if status != 1 {
		return l, ErrNotHeld
	}
	l.Owner = owner
	return l, nil
}

// Inspect reports the lock's state and every live lease, owners blank.
func (s *RedisStore) Inspect(ctx context.Context, id string) (Lease, error) {
	l, _, err := s.run(ctx, inspectScript.get(), id, s.keysOf(id, inspectKeys))
	if err == nil && l.Held && len(l.Leases) == 0 {
		l.Leases = []LeaseInfo{{Fence: l.Fence, TTL: l.TTL, Holder: l.Holder, Mode: l.Mode}}
	}
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
	return s.hub.subscribe(ctx, s.channel(id), "")
}

// SubscribeWaiter is Subscribe for req's place in the queue: a release of
// a mutex wakes the first live place only, not every waiter; see
// QueueNotifier.
func (s *RedisStore) SubscribeWaiter(ctx context.Context, req AcquireRequest) (<-chan struct{}, func(), error) {
	return s.hub.subscribe(ctx, s.channel(req.ID), queuePlace(req))
}

// queuePlace is the member of req's place in the queue (see acquire.lua).
func queuePlace(req AcquireRequest) string { return modeArg(req.Mode) + req.Owner }

// Close ends the wake-up subscription and the connections.
func (s *RedisStore) Close() error {
	s.hub.close()
	s.pipe.close()
	return s.rdb.Close()
}

// scriptReply is the answer every lock script gives: {status, held, fence,
// pttl}, what the script did (1: it took effect; see each script for
// others), whether the lock is held now, its current (or last) fence and
// the remaining milliseconds of a held lease; acquire.lua and inspect.lua
// go on with {retry, holders, limit, waiters, delay_left, holder, mode} and
// then {fence, ttl, holder, mode} per lease of a lock of several leases.
type scriptReply struct {
	status int64
	lease  Lease
}

// decodeScriptReply reads a script's answer into a Lease of id.
func decodeScriptReply(id string, res []any) (scriptReply, error) {
	n := len(res)
	if n != 4 && (n < 11 || (n-11)%4 != 0) {
		return scriptReply{}, fmt.Errorf("script answered %d values", n)
	}
	var bad error
	num := func(i int) int64 {
		v, ok := res[i].(int64)
		if !ok && bad == nil {
			bad = fmt.Errorf("script answer %d is %T, want an integer", i, res[i])
		}
		return v
	}
	str := func(i int) string {
		v, ok := res[i].(string)
		if !ok && bad == nil {
			bad = fmt.Errorf("script answer %d is %T, want a string", i, res[i])
		}
		return v
	}
	millis := func(i int) time.Duration { return time.Duration(max(num(i), 0)) * time.Millisecond }
	r := scriptReply{status: num(0)}
	l := Lease{ID: id, Held: num(1) == 1, Fence: num(2)}
	if l.Held {
		l.TTL = millis(3)
	}
	if n >= 11 {
		l.RetryIn = millis(4)
		l.Holders = int(num(5))
		l.Limit = int(num(6))
		l.Waiters = int(num(7))
		l.DelayLeft = millis(8)
		l.Holder = str(9)
		l.Mode = modeName(str(10))
		for i := 11; i < n; i += 4 {
			l.Leases = append(l.Leases, LeaseInfo{Fence: num(i), TTL: millis(i + 1), Holder: str(i + 2), Mode: modeName(str(i + 3))})
		}
	}
	r.lease = l
	return r, bad
}

// modeName is the Mode of a script's one-letter mode; "" for none.
func modeName(m string) string {
	switch m {
	case "x":
		return Exclusive
	case "s":
		return Shared
	}
	return ""
}

// run evaluates a lock script and returns its lease and status.
func (s *RedisStore) run(ctx context.Context, script *redis.Script, id string, keys []string, args ...any) (Lease, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	res, err := s.pipe.do(ctx, script, keys, args)
	if err != nil {
		return Lease{ID: id}, 0, fmt.Errorf("%w: %w", ErrUnavailable, s.ver.explain(ctx, s.rdb, err))
	}
	reply, err := decodeScriptReply(id, res)
	if err != nil {
		return Lease{ID: id}, 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return reply.lease, reply.status, nil
}

// ms renders d as whole milliseconds for PX-style arguments.
func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
