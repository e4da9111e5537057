package check

import (
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

// The grant-order check flags a grant that passed a waiter the queue owed a
// lease first, and nothing that timing may explain.
func TestCheckFair(t *testing.T) {
	// W began waiting at 5 ms and, by its answer, arrived by 20 ms
	// (500 - 480) and was granted no earlier than 485 ms (5 + 480).
	w := func(owner, mode string, limit int) porcupine.Operation {
		return waiting(acq(1, "a", owner, limit, mode, 1000, 5, 500, OK, 20), 1000, 480)
	}
	holder := func(limit int, mode string) []porcupine.Operation {
		return []porcupine.Operation{
			acq(0, "a", "H", limit, mode, 1000, 0, 1, OK, 10),
			op(0, Release, "a", "H", 0, 90, 91, OK, 10),
		}
	}
	cases := []struct {
		name       string
		history    []porcupine.Operation
		violations int
	}{
		{"mutex: a newcomer passes a queued waiter", append(holder(0, ""),
			w("W", "", 0),
			acq(2, "a", "X", 0, "", 1000, 100, 101, OK, 12),
			op(2, Release, "a", "X", 0, 110, 111, OK, 12)), 1},
		{"mutex: a later waiter passes an earlier one", append(holder(0, ""),
			w("W", "", 0),
			waiting(acq(2, "a", "X", 0, "", 1000, 100, 101, OK, 12), 1000, 0),
			op(2, Release, "a", "X", 0, 110, 111, OK, 12)), 1},
		// W may not have reached Redis before X was sent.
		{"mutex: starts within the margin", append(holder(0, ""),
			w("W", "", 0),
			acq(2, "a", "X", 0, "", 1000, 60, 101, OK, 12)), 0},
		// W arrived by 40 ms and was granted no earlier than 95 ms: maybe
		// before X's grant, which came by 101 ms.
		{"mutex: the waiter may have been granted first", append(holder(0, ""),
			waiting(acq(1, "a", "W", 0, "", 1000, 5, 130, OK, 20), 1000, 90),
			acq(2, "a", "X", 0, "", 1000, 100, 101, OK, 12)), 0},
		// W's wait ran out at 85 ms at the earliest, before X's grant; a
		// try of W's in flight then was granted later, after its place lapsed.
		{"mutex: the waiter's place lapsed with its wait", append(holder(0, ""),
			waiting(acq(1, "a", "W", 0, "", 1000, 5, 500, OK, 20), 80, 480),
			acq(2, "a", "X", 0, "", 1000, 100, 101, OK, 12)), 0},
		{"mutex: the waiter gave up", append(holder(0, ""),
			waiting(acq(1, "a", "W", 0, "", 1000, 5, 500, Refused, 12), 495, 480),
			acq(2, "a", "X", 0, "", 1000, 100, 101, OK, 12)), 0},
		{"mutex: the waiter's outcome is unknown", append(holder(0, ""),
			waiting(acq(1, "a", "W", 0, "", 1000, 5, -1, Unknown, 0), 1000, 0),
			acq(2, "a", "X", 0, "", 1000, 100, 101, OK, 12)), 0},
		{"mutex: Redis lost the queue meanwhile", append(holder(0, ""),
			w("W", "", 0),
			op(9, Lose, "", "", 0, 50, 60, OK, 0),
			acq(2, "a", "X", 0, "", 1000, 100, 101, OK, 12)), 0},
		{"mutex: a holder's re-acquire is no grant", []porcupine.Operation{
			acq(2, "a", "X", 0, "", 1000, 0, 1, OK, 10),
			w("W", "", 0),
			acq(2, "a", "X", 0, "", 1000, 100, 101, OK, 10),
			op(2, Release, "a", "X", 0, 110, 111, OK, 10)}, 0},
		// Limit 3, two waiters ahead: a third slot is free for X...
		{"semaphore: a newcomer takes a slot beyond the waiters'", []porcupine.Operation{
			w("W1", "", 3), w("W2", "", 3),
			acq(2, "a", "X", 3, "", 1000, 100, 101, OK, 12)}, 0},
		// ...unless a lease surely holds it.
		{"semaphore: a newcomer takes the slot a waiter was owed", []porcupine.Operation{
			acq(0, "a", "H", 3, "", 1000, 0, 1, OK, 10),
			w("W1", "", 3), w("W2", "", 3),
			acq(2, "a", "X", 3, "", 1000, 100, 101, OK, 12),
			op(0, Release, "a", "H", 0, 600, 601, OK, 10)}, 1},
		{"shared: a reader passes a queued writer", append(holder(0, ""),
			w("W", "exclusive", 0),
			acq(2, "a", "R", 0, "shared", 1000, 100, 101, OK, 12)), 1},
		{"shared: a reader passes a queued reader", append(holder(0, ""),
			w("R1", "shared", 0),
			acq(2, "a", "R2", 0, "shared", 1000, 100, 101, OK, 12)), 0},
		{"shared: a writer passes a queued reader", append(holder(0, ""),
			w("R", "shared", 0),
			acq(2, "a", "X", 0, "exclusive", 1000, 100, 101, OK, 12)), 1},
		{"two locks: a grant of one passes no waiter of another", append(holder(0, ""),
			w("W", "", 0),
			acq(2, "b", "X", 0, "", 1000, 100, 101, OK, 12)), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := CheckFair(c.history, FairMargin)
			if rep.Violations != c.violations {
				t.Fatalf("%d violations, want %d: %+v", rep.Violations, c.violations, rep)
			}
			if c.violations > 0 && !strings.Contains(rep.First, "passed") {
				t.Errorf("the violation is not described: %q", rep.First)
			}
		})
	}
}

// Peak counts the leases of one id surely live at once: a semaphore that
// granted three leases together shows 3, a mutex 1.
func TestPeakLeases(t *testing.T) {
	sem := []porcupine.Operation{
		acq(0, "s", "A", 3, "", 1000, 0, 1, OK, 10),
		acq(1, "s", "B", 3, "", 1000, 2, 3, OK, 11),
		acq(2, "s", "C", 3, "", 1000, 4, 5, OK, 12),
		op(0, Release, "s", "A", 0, 10, 11, OK, 10),
		acq(0, "s", "D", 3, "", 1000, 12, 13, OK, 13),
	}
	if p := PeakLeases(sem); p != 3 {
		t.Errorf("semaphore peak %d, want 3", p)
	}
	mutex := []porcupine.Operation{
		acq(0, "m", "A", 0, "", 1000, 0, 1, OK, 10),
		op(0, Release, "m", "A", 0, 2, 3, OK, 10),
		acq(1, "m", "B", 0, "", 1000, 4, 5, OK, 11),
	}
	if p := PeakLeases(mutex); p != 1 {
		t.Errorf("mutex peak %d, want 1", p)
	}
}
