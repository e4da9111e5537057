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

// loadable is a script with its source, which SCRIPT LOAD sends. (A
// redis.Script's Load is not for pipelines: it would keep the empty answer
// of a queued command as the script's hash.)
type loadable struct {
	script *redis.Script
	src    string
}

// singleScripts are the scripts a RedisStore sends through its pipeliner.
var singleScripts = []loadable{{acquireScript, acquireLua}, {releaseScript, releaseLua}, {heartbeatScript, heartbeatLua},
	{inspectScript, inspectLua}, {leaveScript, leaveLua}, {revokeScript, revokeLua}}

// quorumScripts are the scripts a QuorumStore runs on each master.
var quorumScripts = []loadable{{quorumReadScript, quorumReadLua}, {quorumAcquireScript, quorumAcquireLua}, {quorumUndoScript, quorumUndoLua},
	{releaseScript, releaseLua}, {heartbeatScript, heartbeatLua}, {inspectScript, inspectLua}, {revokeScript, revokeLua}}

// Warm loads the store's scripts with SCRIPT LOAD, in one round trip on the
// connection it dials, which then stays in the pool. Once every script is
// loaded, calls send EVALSHA from the first (EVAL again after a NOSCRIPT, as
// always).
func (s *RedisStore) Warm(ctx context.Context) error { return s.warm(ctx, singleScripts) }

func (s *RedisStore) warm(ctx context.Context, scripts []loadable) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	cmds := make([]*redis.StringCmd, len(scripts))
	var err error
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		// A Cluster's SCRIPT LOAD goes to every master; in a pipeline it
		// would go to one node only.
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
		if sha, err = cmds[i].Result(); err == nil && sha != sc.script.Hash() {
			err = fmt.Errorf("SCRIPT LOAD answered %q for a script whose SHA1 is %s", sha, sc.script.Hash())
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
