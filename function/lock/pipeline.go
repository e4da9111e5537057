package lock

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// pipeliner sends the scripts of concurrent calls to Redis together. A call
// made while fewer than maxSenders batches are on the wire goes out at
// once, from its caller's goroutine; one made while they are all busy
// waits in pending. A sender that is done hands the turn to the first
// waiting caller, which sends everything pending as one pipeline, one
// write and one read for the lot. Batches grow by themselves with the
// load, as with Nagle's algorithm but without waiting: nobody holds a call
// back for company. Every caller is woken once at most, for its answer or
// for its turn to send: there are no worker goroutines to hand calls to
// and back, which cost more than the batching saved at a few clients.
type pipeliner struct {
	rdb     redis.UniversalClient
	timeout time.Duration
	senders int // at most this many batches on the wire at once

	mu      sync.Mutex
	sending int           // batches on the wire now
	pending []*scriptCall // calls waiting for a sender, oldest first
	closed  bool
	// evalled is set once a script call succeeded; until then calls send
	// EVAL, from then on EVALSHA. The first call of a process sends the
	// script itself, which on a cold start saves the round trip of an
	// EVALSHA answered NOSCRIPT.
	evalled atomic.Bool
}

// maxBatch bounds a pipeline, so one slow batch cannot hold many callers.
const maxBatch = 64

type scriptCall struct {
	ctx    context.Context
	script *redis.Script
	keys   []string
	args   []any
	res    []any
	err    error
	// wake says, once, that res and err are set or, with lead set, that
	// this call's goroutine is to send the pending batch.
	wake chan struct{}
	lead bool // guarded by pipeliner.mu
}

func newPipeliner(rdb redis.UniversalClient, timeout time.Duration, senders int) *pipeliner {
	return &pipeliner{rdb: rdb, timeout: timeout, senders: senders}
}

// do runs script and returns its answer; a ctx that ends first leaves the
// call to run or not, as with any request whose answer was lost.
func (p *pipeliner) do(ctx context.Context, script *redis.Script, keys []string, args []any) ([]any, error) {
	c := &scriptCall{ctx: ctx, script: script, keys: keys, args: args}
	p.mu.Lock()
	switch {
	case p.closed:
		p.mu.Unlock()
		return nil, ErrClosed
	case p.sending < p.senders:
		p.sending++
		p.mu.Unlock()
		p.exec([]*scriptCall{c})
		p.pass()
		return c.res, c.err
	}
	c.wake = make(chan struct{}, 1)
	p.pending = append(p.pending, c)
	p.mu.Unlock()
	select {
	case <-c.wake:
	case <-ctx.Done():
		p.mu.Lock()
		i := slices.Index(p.pending, c)
		if i >= 0 {
			p.pending = slices.Delete(p.pending, i, i+1)
		}
		lead := c.lead
		p.mu.Unlock()
		if lead { // given the turn as its caller gave up: pass it on
			p.pass()
		}
		// Still pending, it is not sent; in a batch on the wire, its answer
		// is lost to this caller.
		return nil, ctx.Err()
	}
	if c.lead {
		p.sendPending(c)
	}
	return c.res, c.err
}

// sendPending sends lead's call and the pending ones, up to maxBatch in
// all, then passes the turn on. A call whose caller gave up while it
// waited is not sent: the caller was told it failed, and a late release or
// undo carried out behind its back could end a lease its owner has taken
// again since.
func (p *pipeliner) sendPending(lead *scriptCall) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		lead.err = ErrClosed
		p.pass()
		return
	}
	n := min(len(p.pending), maxBatch-1)
	batch := append(make([]*scriptCall, 0, n+1), lead)
	batch = append(batch, p.pending[:n]...)
	p.pending = slices.Delete(p.pending, 0, n)
	p.mu.Unlock()
	live := make([]*scriptCall, 0, len(batch))
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.err = err
			continue
		}
		live = append(live, c)
	}
	if len(live) > 0 {
		p.exec(live)
	}
	for _, c := range batch[1:] {
		c.wake <- struct{}{}
	}
	p.pass()
}

// pass ends a sender's turn: it goes to the first pending call, whose
// goroutine, woken, sends what is pending; with none, there is one sender
// fewer.
func (p *pipeliner) pass() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) == 0 || p.closed {
		p.sending--
		return
	}
	next := p.pending[0]
	p.pending = slices.Delete(p.pending, 0, 1)
	next.lead = true
	next.wake <- struct{}{}
}

// exec sends batch. A lone call runs under its caller's context; a batch
// under the store's timeout, so a caller that gives up now does not cut
// short the others. Until a script went by EVAL once, calls send EVAL (the
// script itself); from then on EVALSHA, and EVAL again only for a call that
// Redis answered NOSCRIPT (its script cache was lost: a restart or SCRIPT
// FLUSH), which ran nothing and is safe to send again.
func (p *pipeliner) exec(batch []*scriptCall) {
	evalled := p.evalled.Load()
	if len(batch) == 1 {
		c := batch[0]
		c.res, c.err = p.eval(c.ctx, p.rdb, c, evalled).Slice()
		if evalled && c.err != nil && redis.HasErrorPrefix(c.err, "NOSCRIPT") {
			c.res, c.err = p.eval(c.ctx, p.rdb, c, false).Slice()
		}
		if c.err == nil {
			p.evalled.Store(true)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	cmds := make([]*redis.Cmd, len(batch))
	_, _ = p.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, c := range batch {
			cmds[i] = p.eval(ctx, pipe, c, evalled)
		}
		return nil
	}) // each command carries its own error
	for i, c := range batch {
		c.res, c.err = cmds[i].Slice()
		if evalled && c.err != nil && redis.HasErrorPrefix(c.err, "NOSCRIPT") {
			c.res, c.err = p.eval(ctx, p.rdb, c, false).Slice()
		}
		if c.err == nil {
			p.evalled.Store(true)
		}
	}
}

// scripter is what exec sends scripts through: the client, or a pipeline.
type scripter interface {
	redis.Scripter
	Process(ctx context.Context, cmd redis.Cmder) error
}

// eval sends c's script by EVALSHA, or by EVAL when byHash is false, as a
// command go-redis never sends twice (see onceCmd).
func (p *pipeliner) eval(ctx context.Context, to scripter, c *scriptCall, byHash bool) *redis.Cmd {
	if byHash {
		return c.script.EvalSha(ctx, onceScripter{to}, c.keys, c.args...)
	}
	return c.script.Eval(ctx, onceScripter{to}, c.keys, c.args...)
}

// onceScripter sends the EVAL family as onceCmds; its other methods are
// those of the client or pipeline it wraps.
type onceScripter struct{ scripter }

func (o onceScripter) Eval(ctx context.Context, src string, keys []string, args ...any) *redis.Cmd {
	return o.send(ctx, "eval", src, keys, args)
}

func (o onceScripter) EvalSha(ctx context.Context, sha string, keys []string, args ...any) *redis.Cmd {
	return o.send(ctx, "evalsha", sha, keys, args)
}

func (o onceScripter) EvalRO(ctx context.Context, src string, keys []string, args ...any) *redis.Cmd {
	return o.send(ctx, "eval_ro", src, keys, args)
}

func (o onceScripter) EvalShaRO(ctx context.Context, sha string, keys []string, args ...any) *redis.Cmd {
	return o.send(ctx, "evalsha_ro", sha, keys, args)
}

func (o onceScripter) send(ctx context.Context, name, payload string, keys []string, args []any) *redis.Cmd {
	a := make([]any, 0, 3+len(keys)+len(args))
	a = append(a, name, payload, len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	a = append(a, args...)
	cmd := redis.NewCmd(ctx, a...)
	if len(keys) > 0 {
		cmd.SetFirstKeyPos(3) // a Cluster routes the call by its first key
	}
	_ = o.Process(ctx, onceCmd{cmd}) // the command carries its own error
	return cmd
}

// onceCmd is a command that go-redis must not send again after a network
// error. Whatever MaxRetries says, a ClusterClient retries a command whose
// connection failed with EOF or a timeout (up to MaxRedirects times), and
// after such a failure in the middle of a pipeline it sends the whole batch
// again, the commands whose answers were already read among them. A script
// that ran before its answer was lost would run twice: a release retried
// after another owner took the lock answers not_held, an acquire retried
// after its own grant answers for a lease it already had. go-redis skips
// every such retry of a command, or of a batch holding one, whose NoRetry
// is true, and still follows MOVED and ASK redirects, which say the command
// did not run. A lost answer is then the caller's 503: outcome unknown.
type onceCmd struct{ *redis.Cmd }

// NoRetry is always true: see onceCmd.
func (onceCmd) NoRetry() bool { return true }

// close refuses calls from now on and answers those pending ErrClosed;
// batches on the wire finish.
func (p *pipeliner) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, c := range p.pending {
		c.err = ErrClosed
		c.wake <- struct{}{}
	}
	p.pending = nil
}
