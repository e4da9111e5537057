package lock

import "time"

// SetQuorumWakeAll switches q back to the wake-ups before issue 11 (item 8):
// every release and every undo wakes every local waiter; false restores one
// waiter per release. The contention benchmark compares both in one run.
func SetQuorumWakeAll(q *QuorumStore, on bool) { q.wakeAll.Store(on) }

// SetChangesIdle sets how long the change subscription may be silent
// before it pings, and returns the old value.
func SetChangesIdle(d time.Duration) time.Duration {
	old := changesIdle
	changesIdle = d
	return old
}
