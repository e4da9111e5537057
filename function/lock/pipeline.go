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
	// evalled is set once a script went by EVAL; EVALSHA from then on. The
	// first call of a process sends the script itself, which on a cold start
	// saves the round trip of an EVALSHA answered NOSCRIPT.
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
	res    []int64
	err    error
	done   chan struct{}
}

func newPipeliner(rdb redis.UniversalClient, timeout time.Duration, workers int) *pipeliner {
	return &pipeliner{rdb: rdb, timeout: timeout, workers: workers,
		queue: make(chan *scriptCall, maxBatch*workers), quit: make(chan struct{})}
}

// do runs script and returns its answer; a ctx that ends first leaves the
// call to run or not, as with any request whose answer was lost.
func (p *pipeliner) do(ctx context.Context, script *redis.Script, keys []string, args []any) ([]int64, error) {
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
// short the others.
func (p *pipeliner) exec(batch []*scriptCall) {
	evalled := p.evalled.Load()
	if len(batch) == 1 {
		c := batch[0]
		ctx := c.ctx
		if evalled {
			c.res, c.err = c.script.Run(ctx, p.rdb, c.keys, c.args...).Int64Slice()
		} else {
			c.res, c.err = c.script.Eval(ctx, p.rdb, c.keys, c.args...).Int64Slice()
			p.evalled.Store(c.err == nil)
		}
		close(c.done)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	cmds := make([]*redis.Cmd, len(batch))
	_, _ = p.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, c := range batch {
			if evalled {
				cmds[i] = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
			} else {
				cmds[i] = c.script.Eval(ctx, pipe, c.keys, c.args...)
			}
		}
		return nil
	}) // each command carries its own error
	for i, c := range batch {
		c.res, c.err = cmds[i].Int64Slice()
		if c.err != nil && redis.HasErrorPrefix(c.err, "NOSCRIPT") {
			// Redis lost its script cache (a restart or SCRIPT FLUSH).
			c.res, c.err = c.script.Eval(ctx, p.rdb, c.keys, c.args...).Int64Slice()
		}
		if !evalled && c.err == nil {
			p.evalled.Store(true)
		}
		close(c.done)
	}
}

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
