package lock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// hub shares one pub/sub connection among all waiters of a process: one
// Redis subscription per lock with waiters, removed with its last waiter. In
// sharded mode (SSUBSCRIBE, Redis Cluster) each lock with waiters has its own
// connection instead, to the master of the lock's slot: a Cluster routes a
// shard channel to that master, so one connection cannot carry the channels
// of every node.
//
// No network I/O happens under the hub's mutex: SUBSCRIBE and UNSUBSCRIBE go
// through each connection's queue, sent in order by its own goroutine, so a
// Redis that does not answer stalls that goroutine only. Each connection is
// pinged when idle; one whose ping goes unanswered (half-open, or a Redis
// that stopped) is replaced, and so is a shard connection whose channel Redis
// dropped because its slot moved (a sunsubscribe push). The confirmations on
// the replacement wake the waiters of its channels, who try again, since a
// release may have gone unseen meanwhile.
type hub struct {
	newPubSub func(context.Context) *redis.PubSub
	sharded   bool
	// reload asks the client to refresh its Cluster slot map; nil outside a
	// Cluster.
	reload func(context.Context)
	// confirmWait bounds a subscribe's wait for Redis' confirmation; past it
	// the waiter waits unconfirmed (woken by the holder's expiry, and by the
	// confirmation when it comes).
	confirmWait time.Duration
	// idle is how long a connection may be silent before a ping; pongWait
	// how long the ping's answer may take before the connection is replaced.
	idle, pongWait time.Duration
	// opTimeout bounds each SUBSCRIBE, UNSUBSCRIBE or PING sent.
	opTimeout time.Duration

	mu     sync.Mutex
	shared *psConn // the shared connection; nil in sharded mode
	topics map[string]*topic
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup
}

type topic struct {
	channel string
	// waiters maps each waiter's channel to its name, the queue place it
	// waits in ("" for none: woken by every message).
	waiters map[chan struct{}]string
	ready   chan struct{} // closed when Redis confirmed the subscription
	isReady bool
	// early is set when a waiter stopped waiting for the confirmation: the
	// confirmation then wakes every waiter, as a release may have come first.
	early bool
	// conn is the topic's own connection in sharded mode.
	conn *psConn
}

// psConn is one pub/sub connection, with its queue of subscription changes.
type psConn struct {
	ps  *redis.PubSub
	own *topic // sharded: the one topic it carries; nil for the shared one

	qmu   sync.Mutex
	queue []psOp
	kick  chan struct{} // has a value when queue may hold ops
	dead  chan struct{} // closed once the connection is replaced or closed
	once  sync.Once
	// sent is closed once the first subscription was sent: only then does
	// the receiver read, so go-redis, which dials on the first command,
	// routes the connection by the channel's slot rather than to any node.
	sent     chan struct{}
	sentOnce sync.Once
}

type psOp struct {
	subscribe bool
	channel   string
}

func newHub(newPubSub func(context.Context) *redis.PubSub, sharded bool, timeout time.Duration) *hub {
	return &hub{newPubSub: newPubSub, sharded: sharded, topics: map[string]*topic{}, done: make(chan struct{}),
		confirmWait: timeout, idle: time.Second, pongWait: max(2*timeout, time.Second), opTimeout: 2 * timeout}
}

// subscribe returns once Redis confirmed the subscription to channel, or
// after confirmWait without it. A message that names a queue place ("KIND
// PLACE") wakes only the waiters of that name and those without one; any
// other message wakes every waiter.
func (h *hub) subscribe(ctx context.Context, channel, name string) (<-chan struct{}, func(), error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, nil, ErrClosed
	}
	t, exists := h.topics[channel]
	if !exists {
		t = &topic{channel: channel, waiters: map[chan struct{}]string{}, ready: make(chan struct{})}
		h.topics[channel] = t
		if h.sharded {
			t.conn = h.startLocked(t)
			t.conn.send(psOp{subscribe: true, channel: channel})
		} else {
			if h.shared == nil {
				h.shared = h.startLocked(nil)
			}
			h.shared.send(psOp{subscribe: true, channel: channel})
		}
	}
	w := make(chan struct{}, 1)
	t.waiters[w] = name
	h.mu.Unlock()

	stop := func() { h.leave(channel, t, w) }
	bound := time.NewTimer(h.confirmWait)
	defer bound.Stop()
	select {
	case <-t.ready:
		return w, stop, nil
	case <-bound.C:
		h.mu.Lock()
		t.early = !t.isReady
		h.mu.Unlock()
		return w, stop, nil
	case <-ctx.Done():
		stop()
		return nil, nil, fmt.Errorf("%w: subscribe: %w", ErrUnavailable, ctx.Err())
	case <-h.done:
		stop()
		return nil, nil, ErrClosed
	}
}

// leave removes waiter w; the last waiter of a topic ends its subscription.
// On the shared connection an unconfirmed topic stays until its confirmation
// arrives, so a confirmation can never be taken for that of a later
// subscription to the same channel.
func (h *hub) leave(channel string, t *topic, w chan struct{}) {
	h.mu.Lock()
	delete(t.waiters, w)
	if len(t.waiters) > 0 || h.topics[channel] != t {
		h.mu.Unlock()
		return
	}
	if h.sharded {
		// The topic's own connection: closing it ends the subscription, and
		// a later subscription gets a new connection.
		delete(h.topics, channel)
		h.mu.Unlock()
		t.conn.close()
		return
	}
	if t.isReady {
		h.unsubscribeLocked(channel)
	}
	h.mu.Unlock()
}

// unsubscribeLocked forgets the topic of channel on the shared connection
// and queues its UNSUBSCRIBE. A lost UNSUBSCRIBE leaves a subscription whose
// messages find no topic and are dropped.
func (h *hub) unsubscribeLocked(channel string) {
	delete(h.topics, channel)
	if !h.closed && h.shared != nil {
		h.shared.send(psOp{channel: channel})
	}
}

// startLocked makes a connection (no I/O: it dials on its first command)
// and starts its sender and receiver.
func (h *hub) startLocked(own *topic) *psConn {
	c := &psConn{ps: h.newPubSub(context.Background()), own: own, kick: make(chan struct{}, 1),
		dead: make(chan struct{}), sent: make(chan struct{})}
	h.wg.Add(2)
	go h.sender(c)
	go h.receive(c)
	return c
}

// current reports whether c is still the connection it was made for.
func (h *hub) currentLocked(c *psConn) bool {
	if h.closed {
		return false
	}
	if c.own == nil {
		return h.shared == c
	}
	return h.topics[c.own.channel] == c.own && c.own.conn == c
}

// replace swaps a failed connection for a new one that subscribes to its
// channels again. The new one's confirmations wake the waiters to try
// again (see dispatch): waking them now, while Redis may still not answer,
// would only turn their waits into errors.
func (h *hub) replace(c *psConn) {
	h.mu.Lock()
	if !h.currentLocked(c) {
		h.mu.Unlock()
		return
	}
	n := h.startLocked(c.own)
	if c.own == nil {
		h.shared = n
		for channel := range h.topics {
			n.send(psOp{subscribe: true, channel: channel})
		}
	} else {
		c.own.conn = n
		n.send(psOp{subscribe: true, channel: c.own.channel})
	}
	h.mu.Unlock()
	c.close()
}

func (c *psConn) send(op psOp) {
	c.qmu.Lock()
	c.queue = append(c.queue, op)
	c.qmu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *psConn) close() {
	c.once.Do(func() {
		close(c.dead)
		_ = c.ps.Close()
	})
}

// sender sends c's queued subscription changes in order. A failed one is
// not sent again here: go-redis records the channel either way and sends
// every recorded subscription again on its next connection, and a
// connection that stays silent is replaced by the receiver.
func (h *hub) sender(c *psConn) {
	defer h.wg.Done()
	for {
		select {
		case <-c.kick:
		case <-c.dead:
			return
		}
		c.qmu.Lock()
		ops := c.queue
		c.queue = nil
		c.qmu.Unlock()
		for _, op := range ops {
			select {
			case <-c.dead:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), h.opTimeout)
			switch {
			case op.subscribe && h.sharded:
				_ = c.ps.SSubscribe(ctx, op.channel)
			case op.subscribe:
				_ = c.ps.Subscribe(ctx, op.channel)
			case h.sharded:
				_ = c.ps.SUnsubscribe(ctx, op.channel)
			default:
				_ = c.ps.Unsubscribe(ctx, op.channel)
			}
			cancel()
			c.sentOnce.Do(func() { close(c.sent) })
		}
	}
}

// receive reads c until it is closed and dispatches its confirmations and
// releases; it pings c when idle and replaces it when the ping goes
// unanswered, or when Redis dropped its shard channel.
func (h *hub) receive(c *psConn) {
	defer h.wg.Done()
	select {
	case <-c.sent:
	case <-c.dead:
		return
	}
	pinged := false
	for {
		wait := h.idle
		if pinged {
			wait = h.pongWait
		}
		msg, err := c.ps.ReceiveTimeout(context.Background(), wait)
		select {
		case <-c.dead:
			return
		default:
		}
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout() && !pinged:
				ctx, cancel := context.WithTimeout(context.Background(), h.opTimeout)
				_ = c.ps.Ping(ctx)
				cancel()
				pinged = true
			case errors.As(err, &ne) && ne.Timeout():
				h.replace(c) // silent even to a ping: half-open, or Redis stopped
				return
			case isRedisError(err):
				// Redis refused a subscription, as with MOVED for a shard
				// channel whose slot moved: a new connection, to the slot's
				// master now.
				h.moved(c)
				return
			default:
				// A broken connection: go-redis dials again, and subscribes
				// again, on the next receive.
				pinged = false
				select {
				case <-c.dead:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
			continue
		}
		pinged = false
		h.dispatch(c, msg)
		if s, ok := msg.(*redis.Subscription); ok && s.Kind == "sunsubscribe" && h.wanted(c, s.Channel) {
			// Redis dropped the channel and kept the connection: its slot
			// left this node (a migration, or a failover).
			h.moved(c)
			return
		}
	}
}

// wanted reports whether c still carries channel for a topic.
func (h *hub) wanted(c *psConn, channel string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return c.own != nil && c.own.channel == channel && h.currentLocked(c)
}

// moved replaces c after its slot moved, once the client refreshed its
// slot map, so the new connection goes to the slot's new master.
func (h *hub) moved(c *psConn) {
	if h.reload != nil {
		h.reload(context.Background())
	}
	select {
	case <-c.dead:
		return
	case <-time.After(50 * time.Millisecond): // the refresh is asynchronous
	}
	h.replace(c)
}

func (h *hub) dispatch(c *psConn, msg any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.currentLocked(c) {
		return // a replaced connection: its confirmations count for nothing
	}
	switch m := msg.(type) {
	case *redis.Subscription:
		t := h.topics[m.Channel]
		if (m.Kind != "subscribe" && m.Kind != "ssubscribe") || t == nil || (c.own != nil && t != c.own) {
			return
		}
		if t.isReady || t.early {
			// A resubscription after a reconnect, or a confirmation some
			// waiter stopped waiting for: a release may have been missed
			// meanwhile, so every waiter tries again.
			wakeAll(t)
			t.early = false
		}
		if !t.isReady {
			t.isReady = true
			close(t.ready)
		}
		if len(t.waiters) == 0 && c.own == nil {
			h.unsubscribeLocked(m.Channel)
		}
	case *redis.Message:
		if t := h.topics[m.Channel]; t != nil && (c.own == nil || t == c.own) {
			if _, place, named := strings.Cut(m.Payload, " "); named {
				wakeNamed(t, place)
			} else {
				wakeAll(t)
			}
		}
	}
}

func isRedisError(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr)
}

func wakeAll(t *topic) {
	for w := range t.waiters {
		wake(w)
	}
}

// wakeNamed wakes the waiters named place, and those without a name.
func wakeNamed(t *topic, place string) {
	for w, name := range t.waiters {
		if name == "" || name == place {
			wake(w)
		}
	}
}

func wake(w chan struct{}) {
	select {
	case w <- struct{}{}:
	default: // already has a wake-up pending
	}
}

func (h *hub) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	close(h.done)
	var conns []*psConn
	if h.shared != nil {
		conns = append(conns, h.shared)
	}
	for channel, t := range h.topics {
		if t.conn != nil {
			conns = append(conns, t.conn)
		}
		delete(h.topics, channel)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	h.wg.Wait()
}
