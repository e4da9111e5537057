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

// ScriptHashes are the hashes of the scripts a RedisStore's Warm loads.
func ScriptHashes() []string { return hashes(singleScripts) }

// QuorumScriptHashes are those a QuorumStore's Warm loads on each master.
func QuorumScriptHashes() []string { return hashes(quorumScripts) }

func hashes(ls []*lua) []string {
	var h []string
	for _, l := range ls {
		h = append(h, l.get().Hash())
	}
	return h
}
