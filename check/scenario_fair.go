package check

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"handler/function/function/api"
	"handler/function/function/lock"
)

// fairShapes are the lock ids of fair-queue: a mutex, a semaphore and a
// lock of shared and exclusive leases, each with a queue of its own.
var fairShapes = []Shape{{}, {Limit: SemaphoreLimit}, {SharedPct: 60}}

// fairLoad makes load one of long queues: every acquire waits (up to a
// second), holders keep their leases for up to 20 ms (some paused past the
// TTL, so that expiry too hands leases over), and the ids change every
// fairRotate operations. fair-queue runs it on the ids of fairShapes, with
// holder labels; broken-fair on mutexes alone, which any store serves, so
// that it proves the check against today's too.
func fairLoad(load *Load, shapes []Shape) {
	load.Shapes, load.WaitAll, load.Holder = shapes, true, shapes != nil
	load.MaxWait, load.Hold, load.Rotate = time.Second, 20*time.Millisecond, fairRotate
}

// fairRotate is how many operations fair-queue records on one generation of
// lock ids, about 500 per id. The history of a queue whose every acquire
// waits, with the waiters of a killed service of unknown outcome, is the
// hardest for the model to search: one id's 3,300 such operations (10,000
// over three ids) once took the check past 20 GB of memory.
const fairRotate = 1500

// fairQueue sets up the scenario fair-queue: fairLoad's queues over two
// services on one Redis, one in process and one a child process that gets
// one call in four and is killed and restarted every 1.5 s. The queue lives
// in Redis, so the two services' waiters share it; a killed service's
// waiters stay queued until their wait runs out, and must then leave the
// queue without blocking it. CheckFair checks the grant order.
func fairQueue(env Env, load *Load) ([]string, faultFunc, error) {
	fairLoad(load, fairShapes)
	r := env.NewRedis()
	killed, fault, err := killedService(env, r.URL(), "fair-queue", 1500*time.Millisecond)
	if err != nil {
		return nil, nil, err
	}
	// One call in four goes to the service that is killed: its waiters
	// die with it, and each such lost answer is an operation the check
	// must try both ways until the end of the history.
	in := inProcess(env, r.URL())
	return []string{in, in, in, killed}, fault, nil
}

// pollAcquire waits for req's lease the way a lock without a queue would:
// tries that do not wait, a few milliseconds apart, until req.Wait ran out.
// Waited is the time to the start of the last try, as the Locker reports it.
func pollAcquire(ctx context.Context, locks api.Locks, req lock.AcquireRequest) (lock.Lease, error) {
	start := time.Now()
	deadline := start.Add(req.Wait)
	try := req
	try.Wait = 0
	for {
		at := time.Now()
		l, err := locks.Acquire(ctx, try)
		if !errors.Is(err, lock.ErrHeld) || !time.Now().Before(deadline) || ctx.Err() != nil {
			l.Waited = at.Sub(start)
			return l, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(1+rand.IntN(4)) * time.Millisecond):
		}
	}
}
