package lock

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// pipeliner sends the scripts of concurrent calls to Redis together: a few
// workers each take every call waiting in the queue and send them as one
// pipeline, one write and one read for the lot. Under load that saves most
// of the system calls on both sides; a lone call goes out at once, from its
// caller's goroutine. Batches
// grow by themselves with the load, as with Nagle's algorithm but without
// waiting: a worker never holds a call back for company.
type pipeliner struct {
	rdb     redis.UniversalClient
	timeout time.Duration
	workers int
	queue   chan *scriptCall
	quit    chan struct{}
	start   sync.Once
	stop    sync.Once
	wg      sync.WaitGroup
	// evalled is set once a script call succeeded; until then calls send
	// EVAL, from then on EVALSHA. The first call of a process sends the
	// script itself, which on a cold start saves the round trip of an
	// EVALSHA answered NOSCRIPT.
	evalled atomic.Bool
	// inflight counts the calls in do.
	inflight atomic.Int64
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
	done   chan struct{}
}

func newPipeliner(rdb redis.UniversalClient, timeout time.Duration, workers int) *pipeliner {
	return &pipeliner{rdb: rdb, timeout: timeout, workers: workers,
		queue: make(chan *scriptCall, maxBatch*workers), quit: make(chan struct{})}
}

// do runs script and returns its answer; a ctx that ends first leaves the
// call to run or not, as with any request whose answer was lost.
func (p *pipeliner) do(ctx context.Context, script *redis.Script, keys []string, args []any) ([]any, error) {
	p.start.Do(func() {
		p.wg.Add(p.workers)
		for range p.workers {
			go p.work()
		}
	})
	c := &scriptCall{ctx: ctx, script: script, keys: keys, args: args, done: make(chan struct{})}
	// With no other call in flight there is nothing to batch with: send it
	// from this goroutine, sparing the two hand-offs to a worker and back.
	if p.inflight.Add(1) == 1 {
		defer p.inflight.Add(-1)
		select {
		case <-p.quit:
			return nil, ErrClosed
		default:
		}
		p.exec([]*scriptCall{c})
		return c.res, c.err
	}
	defer p.inflight.Add(-1)
	select {
	case p.queue <- c:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.quit:
		return nil, ErrClosed
	}
	select {
	case <-c.done:
		return c.res, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.quit:
		return nil, ErrClosed
	}
}

func (p *pipeliner) work() {
	defer p.wg.Done()
	batch := make([]*scriptCall, 0, maxBatch)
	for {
		select {
		case c := <-p.queue:
			batch = append(batch[:0], c)
		case <-p.quit:
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case c := <-p.queue:
				batch = append(batch, c)
			default:
				break fill
			}
		}
		// A call whose caller gave up while it queued is not sent: the
		// caller was told it failed, and a late release or undo carried out
		// behind its back could end a lease its owner has taken again since.
		live := batch[:0]
		for _, c := range batch {
			if err := c.ctx.Err(); err != nil {
				c.err = err
				close(c.done)
				continue
			}
			live = append(live, c)
		}
		if len(live) > 0 {
			p.exec(live)
		}
	}
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
		close(c.done)
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
		close(c.done)
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

// close stops the workers; calls still queued are answered ErrClosed.
func (p *pipeliner) close() {
	p.stop.Do(func() {
		p.start.Do(func() {}) // no workers start after this, and wg is settled
		close(p.quit)
	})
	p.wg.Wait()
	for {
		select {
		case c := <-p.queue:
			c.err = ErrClosed
			close(c.done)
		default:
			return
		}
	}
}
