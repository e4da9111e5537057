package lock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The kinds of Change.
const (
	ChangeAcquired = "acquired"
	ChangeExtended = "extended"
	ChangeReleased = "released"
	ChangeRevoked  = "revoked"
	// ChangeExpired is never published by Redis: a lease that runs out
	// leaves no trace there. Watchers learn of it from the service's own
	// timers (see package watch).
	ChangeExpired = "expired"
)

// ErrTooManyWatchers is answered (503) to a watch past the cap of
// watchers of an instance (package watch). It wraps ErrUnavailable.
var ErrTooManyWatchers = fmt.Errorf("%w: too many watchers on this instance", ErrUnavailable)

// Change is one change of one lease of a lock, as the scripts publish it.
// A semaphore or a lock of shared leases has a change per lease: Fence
// names the lease.
type Change struct {
	ID string
	// Kind is one of the Change* constants.
	Kind string
	// Fence is the fence of the lease the change is about.
	Fence int64
	// TTL is the lease's length from the change on; 0 once it ended.
	TTL time.Duration
	// Mode is the lease's mode, Exclusive or Shared; "" when the message
	// came in the format of the previous version, which did not say.
	Mode string
	// Holder is the lease's public label, "" when it has none.
	Holder string
}

// Held reports whether the lock is held after the change.
func (c Change) Held() bool { return c.Kind == ChangeAcquired || c.Kind == ChangeExtended }

// changesCmd publishes change messages. It is PUBLISH in every mode, also
// in a Cluster, where a plain PUBLISH reaches every node: a watcher of a
// prefix subscribes with one pattern (PSUBSCRIBE), and shard channels have
// no patterns. The cost is a message on the Cluster bus per change.
const changesCmd = "PUBLISH"

// changes is the channel the scripts publish lock id's changes on.
func (s *RedisStore) changes(id string) string { return s.Key(id) + changesSuffix }

// changesPattern matches the change channel of every lock.
func (s *RedisStore) changesPattern() string { return globEscape(s.opts.Prefix) + "{*}:changes" }

// globEscape escapes the glob characters of Redis' MATCH and PSUBSCRIBE.
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// The mode letters of a change message.
var changeModes = map[string]string{"x": Exclusive, "s": Shared}

// parseChange reads the message msg published on channel. The scripts
// publish "KIND FENCE TTLMS MODE HOLDER", single spaces apart, where MODE
// is x (exclusive) or s (shared) and HOLDER, the rest of the message, may
// be empty or hold spaces. Pods of the previous version, still publishing
// during a rollout, send "KIND FENCE TTLMS"; both are accepted. A message
// that is neither (a foreign publisher on our pattern) is an error.
func (s *RedisStore) parseChange(channel, msg string) (Change, error) {
	rest, ok := strings.CutPrefix(channel, s.opts.Prefix+"{")
	id, ok2 := strings.CutSuffix(rest, "}:changes")
	if !ok || !ok2 {
		return Change{}, fmt.Errorf("change on unknown channel %q", channel)
	}
	c, err := parseChangeMessage(msg)
	if err != nil {
		return Change{}, err
	}
	c.ID = id
	return c, nil
}

// parseChangeMessage reads msg, one of the two formats of parseChange.
func parseChangeMessage(msg string) (Change, error) {
	f := strings.SplitN(msg, " ", 5)
	if len(f) < 3 {
		return Change{}, fmt.Errorf("change message %q has %d fields, want 3 or 5", msg, len(f))
	}
	var c Change
	switch c.Kind = f[0]; c.Kind {
	case ChangeAcquired, ChangeExtended, ChangeReleased, ChangeRevoked:
	default:
		return Change{}, fmt.Errorf("change message %q: unknown kind %q", msg, c.Kind)
	}
	fence, err1 := strconv.ParseInt(f[1], 10, 64)
	ttl, err2 := strconv.ParseInt(f[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Change{}, fmt.Errorf("change message %q: %w", msg, err)
	}
	if fence < 0 || ttl < 0 || ttl > int64(maxChangeTTL/time.Millisecond) {
		return Change{}, fmt.Errorf("change message %q: fence and ttl must be whole numbers in range", msg)
	}
	c.Fence, c.TTL = fence, time.Duration(ttl)*time.Millisecond
	if len(f) == 3 {
		return c, nil // the previous version's format
	}
	mode, ok := changeModes[f[3]]
	if !ok {
		return Change{}, fmt.Errorf("change message %q: mode %q, want x or s", msg, f[3])
	}
	c.Mode = mode
	if len(f) == 5 {
		c.Holder = f[4]
	}
	if err := ValidateAcquire(AcquireRequest{Holder: c.Holder}); err != nil {
		return Change{}, fmt.Errorf("change message %q: %w", msg, err)
	}
	return c, nil
}

// maxChangeTTL bounds a change's TTL so that it converts to a Duration
// without overflow; a lease's TTL is far below it.
const maxChangeTTL = 100 * 365 * 24 * time.Hour

// changesIdle is how long the change subscription may be silent before it
// pings Redis; a ping unanswered for as long again replaces the
// connection (a half-open one, or a Redis that stopped).
var changesIdle = 5 * time.Second

// Changes subscribes, on one pub/sub connection, to the changes of every
// lock and sends them on the returned channel until ctx ends; then the
// channel is closed. It returns once Redis confirmed the subscription.
// A connection that breaks, or stays silent past a ping, is replaced;
// changes published meanwhile are lost, and the returned gap channel gets
// a value, so that watchers can take a fresh snapshot.
func (s *RedisStore) Changes(ctx context.Context) (<-chan Change, <-chan struct{}, error) {
	ps, err := s.psubscribeChanges(ctx)
	if err != nil {
		return nil, nil, err
	}
	out := make(chan Change, 256)
	gap := make(chan struct{}, 1)
	go s.receiveChanges(ctx, ps, changesIdle, out, gap)
	return out, gap, nil
}

// psubscribeChanges opens a pattern subscription to every change channel
// and waits, bounded, for Redis' confirmation.
func (s *RedisStore) psubscribeChanges(ctx context.Context) (*redis.PubSub, error) {
	ps := s.rdb.PSubscribe(ctx)
	sub, cancel := context.WithTimeout(ctx, 2*s.opts.Timeout+time.Second)
	defer cancel()
	if err := ps.PSubscribe(sub, s.changesPattern()); err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("%w: subscribing to changes: %w", ErrUnavailable, err)
	}
	if _, err := ps.ReceiveTimeout(sub, 2*s.opts.Timeout+time.Second); err != nil { // the confirmation
		_ = ps.Close()
		return nil, fmt.Errorf("%w: subscribing to changes: %w", ErrUnavailable, err)
	}
	return ps, nil
}

// receiveChanges reads ps until ctx ends, replacing it when it breaks or
// goes silent past a ping.
func (s *RedisStore) receiveChanges(ctx context.Context, ps *redis.PubSub, idle time.Duration, out chan<- Change, gap chan<- struct{}) {
	defer close(out)
	defer func() { _ = ps.Close() }() // the current one: a replacement reassigns ps
	lost := func() {
		select {
		case gap <- struct{}{}:
		default:
		}
	}
	pinged := false
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, idle)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged {
				pinged = true
				_ = ps.Ping(ctx) // its answer, or the next silence, decides
				continue
			}
			// Broken, or silent past the ping: a new connection.
			lost()
			_ = ps.Close()
			for {
				select {
				case <-time.After(100 * time.Millisecond):
				case <-ctx.Done():
					return
				}
				if next, err := s.psubscribeChanges(ctx); err == nil {
					ps = next
					break
				}
			}
			pinged = false
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Message:
			c, err := s.parseChange(m.Channel, m.Payload)
			if err != nil {
				continue // not ours: a foreign publisher on our pattern
			}
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
		case *redis.Subscription:
			if m.Kind == "psubscribe" { // go-redis subscribed again after a redial
				lost()
			}
		}
	}
}
