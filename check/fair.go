package check

import (
	"fmt"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// FairMargin bounds how long a waiting acquire takes, from its arrival at
// the service, to make its first try in Redis: the try that puts it in the
// lock's queue. It is an assumption of the grant-order check, true of the
// scenarios that run it (no fault slows the service's path to Redis there)
// and generous on a loaded machine with the race detector.
const FairMargin = 50 * time.Millisecond

// FairReport is the outcome of CheckFair.
type FairReport struct {
	// Checked is true when the history was checked at all.
	Checked bool
	// Grants counts the grants checked; Waiters the granted waiting
	// acquires among them that waited longer than the margin, which a later
	// caller could have been seen to pass.
	Grants, Waiters int
	// Violations counts the grants that passed waiters the queue owed a
	// lease first; First describes the first of them.
	Violations int
	First      string
}

// CheckFair checks the order in which a fair lock granted its waiters.
//
// Of one lock id, a grant G (an acquire answered 200, not a re-acquire by an
// owner that already held the lock) passes a waiter W (another owner's
// acquire with a wait, also answered 200) when the history shows, whatever
// the timing left unknown, that W was in the lock's queue before G's request
// was sent and was granted after G:
//
//  1. W queued first: W.Ret - W.Waited + margin < G.Call. The service counts
//     waited_ms from the request's arrival to the start of the try that
//     granted it, which precedes the answer, so W arrived by W.Ret - W.Waited
//     (waited_ms rounds down: still a bound), and W's first try followed
//     within margin (FairMargin). That try found the lock taken, or W would
//     have been granted before G's call; so it put W in the queue.
//  2. W was granted after G: W.Call + W.Waited > G.Ret. W's grant came no
//     earlier than its arrival plus waited_ms, and G's no later than G's answer.
//  3. No data loss overlaps [W.Call, G.Ret]: a Redis that lost its data lost
//     the queue too, and W then queued again behind G.
//  4. W's place surely lived through G's grant: G.Ret < W.Call + W.Wait. A
//     place lasts to the end of its waiter's wait, which the service counts
//     from the request's arrival; past it the place may have lapsed, and a
//     try of W's still on its way may be granted later all the same.
//
// The queue owes the waiters G passed, P(G), a lease before G:
//
//   - a shared grant passing an exclusive waiter is a violation (a waiting
//     exclusive acquire holds back new shared ones);
//   - an exclusive grant of limit N (a mutex: N = 1) is a violation when
//     |P(G)| + L(G) >= N, where L(G) counts the other leases surely live at
//     G's grant (answered 200 before G's call, surely not ended by G's
//     answer): the lock then had no free slot beyond those the passed
//     waiters were owed. So a mutex or a lock of shared leases must never
//     let an exclusive grant pass anyone, and a semaphore may, while it has
//     slots for all the waiters ahead.
//
// A shared grant passing a shared waiter is allowed (both may hold at once),
// and acquires of unknown outcome are not checked.
func CheckFair(history []porcupine.Operation, margin time.Duration) FairReport {
	rep := FairReport{Checked: true}
	for _, part := range partition(history) {
		checkFairID(part, int64(margin), &rep)
	}
	return rep
}

// span is a granted lease's interval of sure life: from its grant's answer
// to the earliest moment it may have ended.
type span struct {
	op       porcupine.Operation
	from, to int64
}

// grantSpans are the spans of one lock id's grants (each owner's first
// acquire that may have taken effect, if answered 200: later ones are
// re-acquires of a held lease). ops may hold Lose markers.
func grantSpans(ops []porcupine.Operation) []span {
	firstCall := map[string]int64{}
	for _, op := range ops {
		in, out := op.Input.(Input), op.Output.(Output)
		if in.Kind == Acquire && (out.Result == OK || out.Result == Unknown) {
			if c, ok := firstCall[in.Owner]; !ok || in.Call < c {
				firstCall[in.Owner] = in.Call
			}
		}
	}
	var grants []span
	for _, op := range ops {
		in, out := op.Input.(Input), op.Output.(Output)
		if in.Kind == Acquire && out.Result == OK && firstCall[in.Owner] == in.Call {
			grants = append(grants, span{op: op, from: in.Ret, to: endLo(op, ops)})
		}
	}
	return grants
}

// PeakLeases is the most leases of one lock id surely live at one moment
// (from a grant's answer to the earliest moment it may have ended): above
// 1, a semaphore or a lock of shared leases was seen to grant several
// leases at once.
func PeakLeases(history []porcupine.Operation) int {
	best := 0
	for _, part := range partition(history) {
		best = max(best, peak(grantSpans(part)))
	}
	return best
}

// checkFairID is CheckFair for one lock id's operations (Lose markers
// included), adding to rep.
func checkFairID(ops []porcupine.Operation, margin int64, rep *FairReport) {
	var loses []porcupine.Operation
	for _, op := range ops {
		if op.Input.(Input).Kind == Lose {
			loses = append(loses, op)
		}
	}
	grants := grantSpans(ops)
	lost := func(from, to int64) bool {
		for _, l := range loses {
			if l.Input.(Input).Ret >= from && l.Input.(Input).Call <= to {
				return true
			}
		}
		return false
	}
	for _, g := range grants {
		gin := g.op.Input.(Input)
		rep.Grants++
		if gin.Wait > 0 && g.op.Output.(Output).Waited > time.Duration(margin) {
			rep.Waiters++
		}
		var passed []porcupine.Operation
		exclusivePassed := false
		for _, w := range grants {
			win, wout := w.op.Input.(Input), w.op.Output.(Output)
			if win.Wait <= 0 || win.Owner == gin.Owner {
				continue
			}
			waited := int64(wout.Waited)
			if win.Ret-waited+margin < gin.Call && win.Call+waited > gin.Ret && gin.Ret < win.Call+int64(win.Wait) && !lost(win.Call, gin.Ret) {
				passed = append(passed, w.op)
				exclusivePassed = exclusivePassed || !win.shared()
			}
		}
		if len(passed) == 0 {
			continue
		}
		live := 0
		for _, o := range grants {
			if o.op.Input.(Input).Owner != gin.Owner && o.from < gin.Call && o.to > gin.Ret {
				live++
			}
		}
		if gin.shared() && !exclusivePassed || !gin.shared() && len(passed)+live < gin.limit() {
			continue
		}
		rep.Violations++
		if rep.First == "" {
			rep.First = describePass(g.op, passed, live)
		}
	}
}

// endLo is the earliest moment the lease granted by op may have ended: its
// TTL counted from the call, its owner's first release, or a data loss.
// Heartbeats and re-acquires only extend a lease, so they are left out.
func endLo(op porcupine.Operation, ops []porcupine.Operation) int64 {
	in := op.Input.(Input)
	end := addSat(in.Call, in.TTL-Slack)
	for _, o := range ops {
		oi := o.Input.(Input)
		switch {
		case oi.Kind == Release && oi.Owner == in.Owner && oi.Call >= in.Call:
			end = min(end, oi.Call)
		case oi.Kind == Lose && oi.Ret >= in.Call:
			end = min(end, max(oi.Call, in.Call))
		}
	}
	return end
}

// peak is the most spans that overlap at one moment.
func peak(spans []span) int {
	type edge struct {
		t     int64
		delta int
	}
	var es []edge
	for _, s := range spans {
		if s.from < s.to {
			es = append(es, edge{s.from, 1}, edge{s.to, -1})
		}
	}
	sort.Slice(es, func(i, j int) bool {
		if es[i].t != es[j].t {
			return es[i].t < es[j].t
		}
		return es[i].delta < es[j].delta // an end at t before a start at t
	})
	n, best := 0, 0
	for _, e := range es {
		n += e.delta
		best = max(best, n)
	}
	return best
}

func describePass(g porcupine.Operation, passed []porcupine.Operation, live int) string {
	gin := g.Input.(Input)
	w := passed[0]
	win, wout := w.Input.(Input), w.Output.(Output)
	return fmt.Sprintf("%s: %s (called %s, granted by %s) passed %d earlier waiter(s) with %d other lease(s) surely live; "+
		"first %s (queued by %s, granted no earlier than %s)",
		gin.ID, describeOperation(gin, g.Output.(Output)), ms(gin.Call), ms(gin.Ret), len(passed), live,
		describeOperation(win, wout), ms(win.Ret-int64(wout.Waited)), ms(win.Call+int64(wout.Waited)))
}
