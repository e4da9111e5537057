package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Warmer is a Store that can get ready for its first calls ahead of them.
type Warmer interface {
	// Warm dials the backend and loads the scripts that lock calls run, so
	// the first call finds a connection open and sends only a script's
	// hash. It is an optimisation: a Store that was never warmed, or whose
	// Warm failed, works as before. ctx bounds it, as does each round trip's
	// timeout.
	Warm(ctx context.Context) error
}

// singleScripts are the scripts a RedisStore sends through its pipeliner.
var singleScripts = []*lua{acquireScript, releaseScript, heartbeatScript, inspectScript, leaveScript, revokeScript}

// quorumScripts are the scripts a QuorumStore runs on each master.
var quorumScripts = []*lua{quorumReadScript, quorumAcquireScript, quorumUndoScript, releaseScript, heartbeatScript, inspectScript, revokeScript}

// Warm loads the store's scripts with SCRIPT LOAD, in one round trip on the
// connection it dials, which then stays in the pool. Once every script is
// loaded, calls send EVALSHA from the first (EVAL again after a NOSCRIPT, as
// always).
func (s *RedisStore) Warm(ctx context.Context) error { return s.warm(ctx, singleScripts) }

func (s *RedisStore) warm(ctx context.Context, scripts []*lua) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	cmds := make([]*redis.StringCmd, len(scripts))
	var err error
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		// A Cluster's SCRIPT LOAD goes to every master; in a pipeline it
		// would go to one node only. (Not redis.Script's Load, which in a
		// pipeline would keep a queued command's empty answer as its hash.)
		for i, sc := range scripts {
			if cmds[i] = cc.ScriptLoad(ctx, sc.src); cmds[i].Err() != nil {
				break
			}
		}
	} else {
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, sc := range scripts {
				cmds[i] = p.ScriptLoad(ctx, sc.src)
			}
			return nil
		})
	}
	for i, sc := range scripts {
		if err != nil {
			break
		}
		if cmds[i] == nil {
			err = errors.New("script not loaded")
			break
		}
		var sha string
		if sha, err = cmds[i].Result(); err == nil && sha != sc.get().Hash() {
			err = fmt.Errorf("SCRIPT LOAD answered %q for a script whose SHA1 is %s", sha, sc.get().Hash())
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s.pipe.evalled.Store(true)
	return nil
}

// Warm warms every master at once; it fails when any master did.
func (q *QuorumStore) Warm(ctx context.Context) error {
	errs := make([]error, len(q.masters))
	var wg sync.WaitGroup
	for i, m := range q.masters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.warm(ctx, quorumScripts)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
