package check

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// acq is op for an acquire with a limit (0: a mutex) and a mode ("" or
// "exclusive" or "shared").
func acq(client int, id, owner string, limit int, mode string, ttlMs int, call, ret int64, res Result, fence int64) porcupine.Operation {
	o := op(client, Acquire, id, owner, ttlMs, call, ret, res, fence)
	in := o.Input.(Input)
	in.Limit, in.Mode = limit, mode
	o.Input = in
	return o
}

// waiting makes o an acquire that waited up to waitMs and, by its answer,
// waitedMs.
func waiting(o porcupine.Operation, waitMs, waitedMs int) porcupine.Operation {
	in, out := o.Input.(Input), o.Output.(Output)
	in.Wait, out.Waited = time.Duration(waitMs)*time.Millisecond, time.Duration(waitedMs)*time.Millisecond
	o.Input, o.Output = in, out
	return o
}

func checkCases(t *testing.T, want porcupine.CheckResult, cases map[string][]porcupine.Operation) {
	t.Helper()
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			if res := porcupine.CheckOperationsTimeout(Model(), h, 10*time.Second); res != want {
				t.Fatalf("judged %s, want %s", res, want)
			}
		})
	}
}

// The model of semaphores and shared locks accepts what the store may do.
func TestModelShapesLegal(t *testing.T) {
	checkCases(t, porcupine.Ok, map[string][]porcupine.Operation{
		"semaphore: three holders at once, the fourth granted after a release": {
			acq(0, "s", "A", 3, "", 1000, 0, 1, OK, 10),
			acq(1, "s", "B", 3, "", 1000, 2, 3, OK, 11),
			acq(2, "s", "C", 3, "", 1000, 4, 5, OK, 12),
			acq(3, "s", "D", 3, "", 1000, 6, 7, Refused, 0),
			op(1, Release, "s", "B", 0, 8, 9, OK, 11),
			acq(3, "s", "D", 3, "", 1000, 10, 11, OK, 13),
			op(0, Heartbeat, "s", "A", 1000, 12, 13, OK, 10),
			op(2, Release, "s", "C", 0, 14, 15, OK, 12),
		},
		// A's lease ends in [95, 106] ms: a grant returning at 97 may
		// follow its expiry. B's heartbeat shows that A's lease, not B's,
		// was the one that ended.
		"semaphore: a grant right after an expiry window opened": {
			acq(0, "s", "A", 2, "", 100, 0, 1, OK, 10),
			acq(1, "s", "B", 2, "", 100, 0, 1, OK, 11),
			acq(2, "s", "C", 2, "", 100, 96, 97, OK, 12),
			op(1, Heartbeat, "s", "B", 100, 98, 99, OK, 11),
			op(0, Heartbeat, "s", "A", 100, 100, 101, Refused, 0),
		},
		"mutex: a grant right after an expiry window opened": {
			acq(0, "m", "A", 0, "", 100, 0, 1, OK, 10),
			acq(1, "m", "B", 0, "", 100, 95, 96, OK, 11),
		},
		"semaphore: a heartbeat keeps its own lease only": {
			acq(0, "s", "A", 2, "", 100, 0, 1, OK, 10),
			acq(1, "s", "B", 2, "", 100, 0, 1, OK, 11),
			op(1, Heartbeat, "s", "B", 100, 80, 81, OK, 11),
			acq(2, "s", "C", 2, "", 100, 150, 151, OK, 12),
			acq(3, "s", "D", 2, "", 100, 152, 153, Refused, 0),
		},
		"shared: readers together, the writer after them": {
			acq(0, "rw", "R1", 0, "shared", 1000, 0, 1, OK, 10),
			acq(1, "rw", "R2", 0, "shared", 1000, 2, 3, OK, 11),
			acq(2, "rw", "W", 0, "exclusive", 1000, 4, 5, Refused, 0),
			op(0, Release, "rw", "R1", 0, 6, 7, OK, 10),
			op(1, Release, "rw", "R2", 0, 8, 9, OK, 11),
			acq(2, "rw", "W", 0, "exclusive", 1000, 10, 11, OK, 12),
			acq(3, "rw", "R3", 0, "shared", 1000, 12, 13, Refused, 12),
			op(2, Release, "rw", "W", 0, 14, 15, OK, 12),
			acq(3, "rw", "R3", 0, "shared", 1000, 16, 17, OK, 13),
		},
		// R1 called first but was granted second: fences give the order.
		"shared: grants in fence order, not call order": {
			waiting(acq(0, "rw", "R1", 0, "shared", 1000, 0, 10, OK, 12), 100, 5),
			waiting(acq(1, "rw", "R2", 0, "shared", 1000, 1, 10, OK, 11), 100, 4),
			acq(2, "rw", "R3", 0, "shared", 1000, 2, 9, OK, 13),
			op(1, Release, "rw", "R2", 0, 11, 12, OK, 11),
		},
		"shared: a reader granted once the writer's lease may have ended": {
			acq(0, "rw", "W", 0, "", 100, 0, 1, OK, 10),
			acq(1, "rw", "R", 0, "shared", 100, 95, 96, OK, 11),
		},
		// R2 is compatible with R1, but the exclusive waiter E queued
		// ahead of it holds new shared leases back.
		"shared: a reader refused behind a queued writer": {
			acq(0, "rw", "R1", 0, "shared", 1000, 0, 1, OK, 10),
			waiting(acq(1, "rw", "E", 0, "exclusive", 1000, 5, 500, OK, 11), 1000, 390),
			acq(2, "rw", "R2", 0, "shared", 1000, 10, 11, Refused, 10),
			op(0, Release, "rw", "R1", 0, 400, 401, OK, 10),
		},
		// The lock is free when X tries (A released), yet X is refused: W
		// waits in the queue ahead. The 409's fence is A's, not W's.
		"mutex: a newcomer refused while the waiter ahead is woken": {
			acq(0, "m", "A", 0, "", 1000, 0, 1, OK, 10),
			waiting(acq(1, "m", "W", 0, "", 1000, 5, 500, OK, 11), 1000, 100),
			op(0, Release, "m", "A", 0, 100, 101, OK, 10),
			acq(2, "m", "X", 0, "", 1000, 102, 103, Refused, 10),
		},
		// A's grant was lost: it took effect after C's and before or after
		// B's, so its fence is anything above C's but B's.
		"semaphore: a lost grant's fence between the grants around it": {
			acq(0, "s", "C", 3, "", 1000, 0, 1, OK, 10),
			acq(1, "s", "A", 3, "", 1000, 2, -1, Unknown, 0),
			acq(2, "s", "B", 3, "", 1000, 10, 11, OK, 20),
			op(1, Heartbeat, "s", "A", 1000, 30, 31, OK, 15),
		},
		"semaphore: a lost grant that took effect after the next one": {
			acq(0, "s", "C", 3, "", 1000, 0, 1, OK, 10),
			acq(1, "s", "A", 3, "", 1000, 2, -1, Unknown, 0),
			acq(2, "s", "B", 3, "", 1000, 10, 11, OK, 20),
			op(1, Heartbeat, "s", "A", 1000, 30, 31, OK, 25),
		},
		// A's first grant was lost; its re-acquire shows the fence, lower
		// than B's grant that came between.
		"semaphore: a lost grant's fence shown after a later grant": {
			acq(0, "s", "A", 2, "", 1000, 0, -1, Unknown, 0),
			acq(1, "s", "B", 2, "", 1000, 20, 21, OK, 11),
			acq(0, "s", "A", 2, "", 1000, 50, 60, OK, 10),
		},
		"limit mismatches while held": {
			acq(0, "s", "A", 3, "", 1000, 0, 1, OK, 10),
			acq(1, "s", "B", 2, "", 1000, 2, 3, Mismatch, 0),
			acq(2, "s", "R", 0, "shared", 1000, 4, 5, Mismatch, 0),
			acq(3, "m", "R1", 0, "shared", 1000, 0, 1, OK, 10),
			acq(4, "m", "X", 2, "", 1000, 2, 3, Mismatch, 0),
		},
		"semaphore: a release repeated after another grant": {
			acq(0, "s", "A", 2, "", 1000, 0, 1, OK, 10),
			acq(1, "s", "B", 2, "", 1000, 2, 3, OK, 11),
			op(0, Release, "s", "A", 0, 4, 5, OK, 10),
			acq(2, "s", "C", 2, "", 1000, 6, 7, OK, 12),
			op(0, Release, "s", "A", 0, 8, 9, OK, 10),
		},
		"semaphore: data loss frees every slot": {
			acq(0, "s", "A", 2, "", 10000, 0, 1, OK, 10),
			acq(1, "s", "B", 2, "", 10000, 0, 1, OK, 11),
			op(9, Lose, "", "", 0, 5, 6, OK, 0),
			acq(2, "s", "C", 2, "", 10000, 10, 11, OK, 12),
			acq(3, "s", "D", 2, "", 10000, 10, 11, OK, 13),
			op(0, Release, "s", "A", 0, 12, 13, Refused, 0),
		},
	})
}

// seen sets when the failure of o, an operation of unknown outcome, reached
// the client.
func seen(o porcupine.Operation, atMs int64) porcupine.Operation {
	in := o.Input.(Input)
	in.Seen = atMs * msec
	o.Input = in
	return o
}

// A waiter whose answer was lost may sit in the queue for longer than its
// wait: its last try may run when Redis reads it, after the failure reached
// the client (the service gave up on a round trip that Redis ran later, or
// died), and its entry lives its hold past that. So it explains later
// refusals of a free lock, however late. A waiter that was answered
// explains them only until its wait ran out, counted from its answer.
func TestModelDeadWaiter(t *testing.T) {
	h := func(w porcupine.Operation, refusedAt int64) []porcupine.Operation {
		return []porcupine.Operation{
			acq(0, "m", "A", 0, "", 1000, 0, 1, OK, 10),
			op(0, Release, "m", "A", 0, 200, 201, OK, 10),
			w,
			acq(2, "m", "X", 0, "", 1000, refusedAt, refusedAt+1, Refused, 10),
		}
	}
	lost := seen(waiting(acq(1, "m", "W", 0, "", 1000, 5, -1, Unknown, 0), 100, 0), 105)
	answered := waiting(acq(1, "m", "W", 0, "", 1000, 5, 105, Refused, 10), 100, 100)
	for _, tc := range []struct {
		name      string
		w         porcupine.Operation
		refusedAt int64
		want      porcupine.CheckResult
	}{
		{"lost answer, within its wait", lost, 180, porcupine.Ok},
		{"lost answer, long after its wait", lost, 400, porcupine.Ok},
		{"answered, within its wait", answered, 230, porcupine.Ok},
		{"answered, after its wait", answered, 400, porcupine.Illegal},
	} {
		if res := porcupine.CheckOperationsTimeout(Model(), h(tc.w, tc.refusedAt), 10*time.Second); res != tc.want {
			t.Errorf("%s: a refusal of the free lock at %d ms judged %s, want %s", tc.name, tc.refusedAt, res, tc.want)
		}
	}
}

// The model rejects what breaks a semaphore or a shared lock.
func TestModelShapesIllegal(t *testing.T) {
	checkCases(t, porcupine.Illegal, map[string][]porcupine.Operation{
		"two exclusive holders overlapping": {
			acq(0, "rw", "W1", 0, "exclusive", 1000, 0, 1, OK, 10),
			acq(1, "rw", "W2", 0, "exclusive", 1000, 10, 11, OK, 11),
		},
		"limit+1 semaphore holders": {
			acq(0, "s", "A", 3, "", 1000, 0, 1, OK, 10),
			acq(1, "s", "B", 3, "", 1000, 2, 3, OK, 11),
			acq(2, "s", "C", 3, "", 1000, 4, 5, OK, 12),
			acq(3, "s", "D", 3, "", 1000, 6, 7, OK, 13),
		},
		"shared beside exclusive": {
			acq(0, "rw", "W", 0, "exclusive", 1000, 0, 1, OK, 10),
			acq(1, "rw", "R", 0, "shared", 1000, 10, 11, OK, 11),
		},
		"exclusive beside shared": {
			acq(0, "rw", "R1", 0, "shared", 1000, 0, 1, OK, 10),
			acq(1, "rw", "R2", 0, "shared", 1000, 2, 3, OK, 11),
			op(0, Release, "rw", "R1", 0, 4, 5, OK, 10),
			acq(2, "rw", "W", 0, "", 1000, 10, 11, OK, 12),
		},
		"semaphore: a fence that does not rise": {
			acq(0, "s", "A", 3, "", 1000, 0, 1, OK, 10),
			acq(1, "s", "B", 3, "", 1000, 2, 3, OK, 10),
		},
		"semaphore: a fence that falls": {
			acq(0, "s", "A", 3, "", 1000, 0, 1, OK, 10),
			acq(1, "s", "B", 3, "", 1000, 2, 3, OK, 9),
		},
		"shared: a fence that does not rise": {
			acq(0, "rw", "R1", 0, "shared", 1000, 0, 1, OK, 10),
			acq(1, "rw", "R2", 0, "shared", 1000, 2, 3, OK, 10),
		},
		"semaphore: a lost grant's fence below the grant before it": {
			acq(0, "s", "C", 3, "", 1000, 0, 1, OK, 10),
			acq(1, "s", "A", 3, "", 1000, 2, -1, Unknown, 0),
			acq(2, "s", "B", 3, "", 1000, 10, 11, OK, 20),
			op(1, Heartbeat, "s", "A", 1000, 30, 31, OK, 8),
		},
		"semaphore: a lost grant's fence equal to a later grant's": {
			acq(0, "s", "C", 3, "", 1000, 0, 1, OK, 10),
			acq(1, "s", "A", 3, "", 1000, 2, -1, Unknown, 0),
			acq(2, "s", "B", 3, "", 1000, 10, 11, OK, 20),
			op(1, Heartbeat, "s", "A", 1000, 30, 31, OK, 20),
		},
		"semaphore: a release by a non-owner that succeeds": {
			acq(0, "s", "A", 3, "", 1000, 0, 1, OK, 10),
			acq(1, "s", "B", 3, "", 1000, 2, 3, OK, 11),
			op(2, Release, "s", "C", 0, 4, 5, OK, 10),
		},
		"semaphore: a holder releasing another's lease": {
			acq(0, "s", "A", 3, "", 1000, 0, 1, OK, 10),
			acq(1, "s", "B", 3, "", 1000, 2, 3, OK, 11),
			op(1, Release, "s", "B", 0, 4, 5, OK, 10),
		},
		// The contract: a repeated release "succeeds again with the same
		// answer"; a store that answers with the lock's newest fence
		// instead (A's retry showing C's) breaks it.
		"semaphore: a repeated release showing another lease's fence": {
			acq(0, "s", "A", 2, "", 1000, 0, 1, OK, 10),
			op(0, Release, "s", "A", 0, 4, 5, OK, 10),
			acq(2, "s", "C", 2, "", 1000, 6, 7, OK, 12),
			op(0, Release, "s", "A", 0, 8, 9, OK, 12),
		},
		"shared: a heartbeat by a non-owner that succeeds": {
			acq(0, "rw", "R1", 0, "shared", 1000, 0, 1, OK, 10),
			op(1, Heartbeat, "rw", "R2", 1000, 2, 3, OK, 10),
		},
		"semaphore: a grant before the expiry window opened": {
			acq(0, "s", "A", 2, "", 100, 0, 1, OK, 10),
			acq(1, "s", "B", 2, "", 100, 0, 1, OK, 11),
			acq(2, "s", "C", 2, "", 100, 90, 94, OK, 12),
		},
		"mutex: a grant before the expiry window opened": {
			acq(0, "m", "A", 0, "", 100, 0, 1, OK, 10),
			acq(1, "m", "B", 0, "", 100, 90, 94, OK, 11),
		},
		"semaphore: a heartbeat keeps its own lease only": {
			acq(0, "s", "A", 2, "", 100, 0, 1, OK, 10),
			acq(1, "s", "B", 2, "", 100, 0, 1, OK, 11),
			op(1, Heartbeat, "s", "B", 100, 80, 81, OK, 11),
			acq(2, "s", "C", 2, "", 100, 150, 151, OK, 12),
			acq(3, "s", "D", 2, "", 100, 160, 161, OK, 13),
		},
		"semaphore: refused while a slot is free and nobody waits": {
			acq(0, "s", "A", 3, "", 1000, 0, 1, OK, 10),
			acq(1, "s", "B", 3, "", 1000, 2, 3, Refused, 10),
		},
		"shared: a reader refused beside readers, no writer waiting": {
			acq(0, "rw", "R1", 0, "shared", 1000, 0, 1, OK, 10),
			acq(1, "rw", "E", 0, "exclusive", 1000, 5, 500, OK, 11),
			acq(2, "rw", "R2", 0, "shared", 1000, 10, 11, Refused, 10),
			op(0, Release, "rw", "R1", 0, 400, 401, OK, 10),
		},
		"mutex: a newcomer refused with a wrong fence, nobody waiting": {
			acq(0, "m", "A", 0, "", 1000, 0, 1, OK, 10),
			acq(1, "m", "W", 0, "", 1000, 5, 500, OK, 11),
			op(0, Release, "m", "A", 0, 100, 101, OK, 10),
			acq(2, "m", "X", 0, "", 1000, 102, 103, Refused, 10),
		},
		"a limit mismatch while free": {
			acq(0, "s", "A", 3, "", 1000, 0, 1, OK, 10),
			op(0, Release, "s", "A", 0, 2, 3, OK, 10),
			acq(1, "s", "B", 2, "", 1000, 4, 5, Mismatch, 0),
		},
		"a limit mismatch with the same limit": {
			acq(0, "s", "A", 3, "", 1000, 0, 1, OK, 10),
			acq(1, "s", "B", 3, "", 1000, 2, 3, Mismatch, 0),
		},
		"a refusal where the limits differ": {
			acq(0, "s", "A", 3, "", 1000, 0, 1, OK, 10),
			acq(1, "s", "B", 2, "", 1000, 2, 3, Refused, 0),
		},
	})
}
