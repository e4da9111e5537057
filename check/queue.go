package check

import (
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// QueueSlack pads the latest end of a waiter's entry in a lock's fair queue:
// Redis expires it by its own clock, in whole milliseconds.
const QueueSlack = 50 * time.Millisecond

// entryEnd is the latest moment a waiting acquire's entry may still sit in
// the lock's fair queue. An answered acquire's entry lives at most to the
// waiter's deadline: the service removes it then, and Redis expires it by
// then even when the service died (min(wait left, 3 s) past its last
// refresh). The deadline is the request's arrival plus its wait, and the
// arrival came no later than the answer the client saw. An acquire whose
// answer was lost (Ret is Never) has no such bound: its last try may still
// run when Redis reads it, after the failure reached the client (a script
// written before a pause, or before the service gave up on the round trip,
// runs when Redis resumes), and its entry then lives its hold past that.
// The redis-restart scenario caught it: a waiter called 787 ms into the
// run left an entry when Redis came back at about 1229 ms, which refused
// newcomers past its client's failure plus its 20 ms wait.
func entryEnd(in Input) int64 {
	if in.Ret == Never {
		return Never
	}
	seen := in.Seen
	if seen == 0 {
		seen = in.Ret
	}
	return addSat(addSat(seen, in.Wait), QueueSlack)
}

// markQueued returns one lock id's operations with Input.Queued set on each
// refused acquire that a fair queue may explain: some other owner's waiting
// acquire was called before the refusal returned, and its entry may have
// outlived the refusal's call. A fair lock refuses a newcomer while the
// queue ahead of it is not empty, even when leases are free; which waiter
// was ahead is the grant-order check's business (CheckFair), not the
// model's. Shared waiters count for a shared newcomer too: whether they
// hold it back (while being woken) is the store's choice.
func markQueued(ops []porcupine.Operation) []porcupine.Operation {
	type window struct {
		from, to int64
		owner    string
	}
	var ws []window
	for _, op := range ops {
		if in := op.Input.(Input); in.Kind == Acquire && in.Wait > 0 {
			ws = append(ws, window{in.Call, entryEnd(in), in.Owner})
		}
	}
	if len(ws) == 0 {
		return ops
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].from < ws[j].from })
	out := append([]porcupine.Operation(nil), ops...)
	for i, op := range out {
		in := op.Input.(Input)
		if in.Kind != Acquire || op.Output.(Output).Result != Refused {
			continue
		}
		for _, w := range ws {
			if w.from > in.Ret {
				break
			}
			if w.owner != in.Owner && w.to >= in.Call {
				in.Queued = true
				break
			}
		}
		out[i].Input = in
	}
	return out
}
