package check

import "time"

// quorumReacquire sets up the scenario quorum-reacquire: three masters in
// quorum mode, holders that acquire their own lease again while they hold
// it, and a fault cycle that leaves leases on exactly two masters when one
// of those two turns slow or stops.
//
// Each cycle kills one master and keeps it down past every lease it held
// (QuorumReacquireDown), so the leases granted meanwhile live on the other
// two only; it comes back empty, and at once one of those two is paused,
// past the backend timeout or in short stalls within it. A holder that
// re-acquires then reads its lease on one master and a free lock on the
// other: it must keep its lease and its fence (or answer 503), never mint a
// new fence while its lease lives, and a failed attempt must never end the
// lease. The masters rotate, so each plays every part.
func quorumReacquire(env Env, load *Load) (targets []string, fault func(stop <-chan struct{}) int) {
	masters := make([]Redis, 3)
	urls := make([]string, len(masters))
	for i := range masters {
		masters[i] = env.NewRedis()
		urls[i] = masters[i].URL()
	}
	load.Reacquires = 3
	targets = []string{inProcessConfig(env, QuorumConfig(urls))}
	return targets, func(stop <-chan struct{}) int {
		faults := 0
		for n := 0; ; n++ {
			if sleepOrStop(stop, 200*time.Millisecond) {
				return faults
			}
			down, slow := masters[n%3], masters[(n+1)%3]
			down.Kill()
			faults++
			if sleepOrStop(stop, QuorumReacquireDown) {
				down.Restart()
				return faults
			}
			down.Restart()
			slow.Pause()
			faults++
			if n%2 == 0 {
				// Paused past the backend timeout: its calls time out.
				time.Sleep(2 * TTL)
			} else {
				// Stalls shorter than the backend timeout: its answers come
				// late, but in time to count.
				for range 3 {
					time.Sleep(100 * time.Millisecond)
					slow.Resume()
					time.Sleep(30 * time.Millisecond)
					slow.Pause()
				}
			}
			slow.Resume()
		}
	}
}

// QuorumReacquireDown is how long quorum-reacquire keeps a killed master
// down: past the longest lease the workload can hold (its re-acquires,
// up to 3 × TTL/4, then a hold of up to 1.5 TTL, then the TTL the last
// extension set), so no lease it held is live when it comes back empty.
const QuorumReacquireDown = 4 * TTL

// sleepOrStop sleeps d, or less if stop closes; it reports whether it did.
func sleepOrStop(stop <-chan struct{}, d time.Duration) bool {
	select {
	case <-stop:
		return true
	case <-time.After(d):
		return false
	}
}
