// Package check proves Candado's guarantees by history checking: concurrent
// clients drive the real service over a real Redis, every acquire, release
// and heartbeat is recorded with its call and return time, and porcupine
// checks the history against a sequential model of a lease lock: a mutex, a
// semaphore or a lock of shared and exclusive leases. CheckFair checks the
// order in which fair queues granted their waiters. Scenarios add faults
// (Redis restarted with data loss, Redis paused past the TTL, a slow or
// broken network between service and Redis, the service killed, two
// service instances on one Redis) and a fenced counter as the protected
// resource.
package check

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"

	"handler/function/function/lock"
)

// Kind is the kind of a recorded operation.
type Kind uint8

// The operation kinds. Lose is not a client call: it marks the window in
// which the harness made Redis lose its data, so every lease may vanish.
const (
	Acquire Kind = iota
	Release
	Heartbeat
	Lose
)

func (k Kind) String() string {
	switch k {
	case Acquire:
		return "acquire"
	case Release:
		return "release"
	case Heartbeat:
		return "heartbeat"
	case Lose:
		return "LOSE-DATA"
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Never is the return time of an operation whose outcome is unknown: it may
// take effect at any moment after its call.
const Never = int64(math.MaxInt64)

// Input is a recorded call. Call and Ret repeat the operation's interval
// (nanoseconds since the history began) so the model can reason about lease
// expiry; Ret is Never when the outcome is unknown.
type Input struct {
	Kind  Kind
	ID    string
	Owner string
	TTL   time.Duration // acquire and heartbeat
	// Wait is how long an acquire may wait for the lock; 0 tries once.
	Wait time.Duration
	// Limit and Mode are an acquire's: Limit 0 or 1 asks for a mutex, N for
	// a semaphore of N; Mode is lock.Shared, lock.Exclusive or "" (exclusive).
	Limit int
	Mode  string
	Call  int64
	Ret   int64
	// Seen is when the answer, or the failure, reached the client: unlike
	// Ret it is kept when the outcome is unknown. 0 when not recorded.
	Seen int64
	// Queued is not recorded: the model's partition sets it on a refused
	// acquire during which another owner's waiting acquire of the same id
	// may have sat in the lock's fair queue (see markQueued).
	Queued bool
	// After is not recorded either: on an owner's first granted acquire,
	// the partition sets the highest lower fence another owner's first
	// grant of the id showed, which must be granted before (see orderGrants).
	After int64
	// Retried, set by the partition too, marks a release whose owner
	// releases the id again later: only its tombstone can matter.
	Retried bool
}

func (in Input) shared() bool { return in.Mode == lock.Shared }

// limit is the lock limit the acquire asks for: 1 for a mutex or a shared
// lease, N for a semaphore.
func (in Input) limit() int {
	if in.shared() || in.Limit < 1 {
		return 1
	}
	return in.Limit
}

// Result is how a call ended.
type Result uint8

// The results. Unknown is an error answer (503, timeout, connection reset):
// the operation may or may not have happened. Mismatch is an acquire's 409
// limit_mismatch: the lock is held with another limit or mode family.
// Rejected is a 4xx other than 409: the request was refused as bad and did
// nothing (the client counts it as a bad answer: the workload sends only
// valid requests).
const (
	OK Result = iota
	Refused
	Unknown
	Mismatch
	Rejected
)

func (r Result) String() string {
	switch r {
	case OK:
		return "ok"
	case Refused:
		return "409"
	case Mismatch:
		return "409 limit_mismatch"
	case Rejected:
		return "rejected (4xx)"
	}
	return "unknown"
}

// Output is a recorded answer. Fence is the answer's fence (0 if none);
// Waited is an acquire's data.waited_ms, which the fair-queue check uses.
type Output struct {
	Result Result
	Fence  int64
	Waited time.Duration
}

// AnyFence, as the fence of a refused acquire, asserts nothing about the
// holder's fence: Relax puts it there to tell a wrong fence in a 409 from a
// lease granted twice.
const AnyFence = -1

// Relax returns history with the fences of refused acquires replaced by
// AnyFence.
func Relax(history []porcupine.Operation) []porcupine.Operation {
	h := make([]porcupine.Operation, len(history))
	for i, op := range history {
		if in, out := op.Input.(Input), op.Output.(Output); in.Kind == Acquire && out.Result == Refused {
			op.Output = Output{Result: Refused, Fence: AnyFence}
		}
		h[i] = op
	}
	return h
}

// WithoutRefusedAcquires returns history without its refused acquires
// (limit mismatches included): what is left checks mutual exclusion and
// fences of the leases granted, whatever the 409s claimed.
func WithoutRefusedAcquires(history []porcupine.Operation) []porcupine.Operation {
	var h []porcupine.Operation
	for _, op := range history {
		if in, out := op.Input.(Input), op.Output.(Output); in.Kind == Acquire && (out.Result == Refused || out.Result == Mismatch) {
			continue
		}
		h = append(h, op)
	}
	return h
}

// Slack absorbs Redis' millisecond granularity around lease expiry: a lease
// set at t with ttl ends somewhere in [t+ttl-Slack, t+ttl+Slack].
const Slack = 5 * time.Millisecond

// TombLife bounds how long a release's tombstone lets a release repeated by
// the same owner succeed again: the contract's 500 ms, which the store keeps
// under a second, counted from the release taking effect.
const TombLife = time.Second

// State is the model's state of one lock: the leases that may be live. A
// mutex is the case of Limit 1 and one exclusive lease at most; a semaphore
// holds up to Limit exclusive leases; a lock of shared leases holds any
// number (up to lock.MaxLimit) of them and no exclusive one. Times are
// nanoseconds since the history began.
type State struct {
	// Leases may still be live, in grant order (so those of known fences in
	// fence order). A lease may already have ended: expiry is a
	// nondeterministic step taken lazily, when an operation needs it, at a
	// time in [ExpLo, ExpHi]; once Now passes ExpHi the lease is dropped.
	Leases []Lease
	// Limit is the lock's limit while Leases is not empty: 1 for a mutex or
	// a lock of shared leases, N for a semaphore; 0 when free.
	Limit int
	// MaxFence is the highest fence any answer showed; a new grant must
	// mint a higher one.
	MaxFence int64
	// Tombs are the leases released in the last TombLife by owners that
	// release again later (Input.Retried), by owner: a release repeated by
	// that owner may succeed again (an idempotent retry) and changes nothing.
	Tombs []Tomb
	// Now is the earliest possible time of the last linearization point;
	// linearization points never go back in time.
	Now int64
}

// Lease is one lease the model tracks.
type Lease struct {
	Owner  string
	Shared bool
	// Fence is the lease's fence, 0 while unknown (the answer to its acquire
	// was lost); an unknown fence lies strictly between FenceLo and FenceHi,
	// which record the fences granted before and after it.
	Fence, FenceLo, FenceHi int64
	// ExpLo and ExpHi bound the moment the lease ends.
	ExpLo, ExpHi int64
}

// Tomb is a released lease, kept until Until.
type Tomb struct {
	Lease
	Until int64
}

func addSat(a int64, d time.Duration) int64 {
	if a == Never || a > Never-int64(d) {
		return Never
	}
	return a + int64(d)
}

// find is the index of owner's lease, or -1.
func (s State) find(owner string) int {
	for i, l := range s.Leases {
		if l.Owner == owner {
			return i
		}
	}
	return -1
}

// tomb is owner's tombstone, if any.
func (s State) tomb(owner string) (Tomb, bool) {
	for _, t := range s.Tombs {
		if t.Owner == owner {
			return t, true
		}
	}
	return Tomb{}, false
}

// settle is s at time t: Now is t, the leases that surely ended by t and
// the tombstones past their life are gone. It never changes s's slices.
func (s State) settle(t int64) State {
	n := s
	n.Now = t
	for i, l := range s.Leases {
		if l.ExpHi <= t {
			n.Leases = keep(s.Leases[:i:i], s.Leases[i+1:], func(l Lease) bool { return l.ExpHi > t })
			break
		}
	}
	for i, tb := range s.Tombs {
		if tb.Until < t {
			n.Tombs = keep(s.Tombs[:i:i], s.Tombs[i+1:], func(tb Tomb) bool { return tb.Until >= t })
			break
		}
	}
	if len(n.Leases) == 0 {
		n.Leases, n.Limit = nil, 0
	}
	if len(n.Tombs) == 0 {
		n.Tombs = nil
	}
	return n
}

// keep appends to a fresh copy of head the elements of rest that ok accepts.
func keep[T any](head, rest []T, ok func(T) bool) []T {
	out := append(make([]T, 0, len(head)+len(rest)), head...)
	for _, x := range rest {
		if ok(x) {
			out = append(out, x)
		}
	}
	return out
}

// without is s with the leases at the indexes ended.
func (s State) without(ended ...int) State {
	if len(ended) == 0 {
		return s
	}
	gone := map[int]bool{}
	for _, i := range ended {
		gone[i] = true
	}
	n := s
	n.Leases = nil
	for i, l := range s.Leases {
		if !gone[i] {
			n.Leases = append(n.Leases, l)
		}
	}
	if len(n.Leases) == 0 {
		n.Limit = 0
	}
	return n
}

// withLease is s with lease i replaced by l.
func (s State) withLease(i int, l Lease) State {
	n := s
	n.Leases = append([]Lease(nil), s.Leases...)
	n.Leases[i] = l
	return n
}

// withTomb is s with t as its owner's tombstone (replacing an older one).
func (s State) withTomb(t Tomb) State {
	t.ExpLo, t.ExpHi = 0, 0
	n := s
	n.Tombs = make([]Tomb, 0, len(s.Tombs)+1)
	for _, old := range s.Tombs {
		if old.Owner != t.Owner {
			n.Tombs = append(n.Tombs, old)
		}
	}
	n.Tombs = append(n.Tombs, t)
	sort.Slice(n.Tombs, func(i, j int) bool { return n.Tombs[i].Owner < n.Tombs[j].Owner })
	return n
}

// feasible reports whether an unknown fence fits strictly between its
// bounds.
func (l Lease) feasible() bool {
	return l.Fence != 0 || l.FenceHi == Never || l.FenceLo < l.FenceHi-1
}

// learn records that lease i has fence f: f must equal a known fence, or
// fit an unknown one's bounds, and it then bounds the unknown fences of the
// leases granted before (from above) and after it (from below). ok is false
// if f contradicts what is known.
func (s State) learn(i int, f int64) (State, bool) {
	l := s.Leases[i]
	if l.Fence != 0 {
		return s, l.Fence == f
	}
	if f <= l.FenceLo || f >= l.FenceHi {
		return s, false
	}
	n := s
	n.Leases = append([]Lease(nil), s.Leases...)
	for j := range n.Leases {
		o := &n.Leases[j]
		if j == i || o.Fence != 0 {
			continue
		}
		if j < i {
			o.FenceHi = min(o.FenceHi, f)
		} else {
			o.FenceLo = max(o.FenceLo, f)
		}
		if !o.feasible() {
			return s, false
		}
	}
	n.Leases[i].Fence = f
	n.MaxFence = max(s.MaxFence, f)
	return n, true
}

// conflict says whether the live leases ls of a lock of limit lockLimit
// refuse the acquire in: held (409 held) or of another limit or mode family
// (409 limit_mismatch). The acquiring owner's own lease is not in ls.
func conflict(ls []Lease, lockLimit int, in Input) (held, mismatch bool) {
	if len(ls) == 0 {
		return false, false
	}
	if in.shared() {
		if lockLimit > 1 {
			return false, true // shared asked of a semaphore
		}
		for _, l := range ls {
			if !l.Shared {
				return true, false
			}
		}
		return len(ls) >= lock.MaxLimit, false
	}
	n := in.limit()
	if ls[0].Shared { // shared and exclusive leases never live together
		return n == 1, n > 1
	}
	if n != lockLimit {
		return false, true
	}
	return len(ls) >= n, false
}

// step is the nondeterministic step of the model: every state the lock can
// be in after op, or none if op's answer is impossible.
func step(s State, in Input, out Output) []State {
	if out.Result == Rejected {
		return []State{s} // did nothing, at no particular time
	}
	if in.Kind == Acquire && out.Result == Refused && in.Queued && s.find(in.Owner) < 0 {
		// Which waiter was queued depends neither on the leases nor on the
		// time, so this refusal constrains nothing: like an operation that
		// never happened, it leaves the state as it was, at no particular
		// time. That state allows all that the refusal's others would (an
		// earlier Now, no fence learnt yet), so they are left out: every
		// one more would double the set of states the search carries while
		// answers are pending.
		return []State{s}
	}
	t0 := max(s.Now, in.Call) // earliest time this op can take effect
	if t0 > in.Ret {
		return nil
	}
	if in.Kind == Lose {
		// Redis lost every key somewhere in [Call, Ret]. Fences stay above
		// MaxFence (they derive from Redis' clock), so MaxFence is kept.
		return []State{{MaxFence: s.MaxFence, Now: t0}}
	}
	m := moment{orig: s, s: s.settle(t0), in: in, out: out, t0: t0}
	m.own = m.s.find(in.Owner)
	switch in.Kind {
	case Acquire:
		return m.acquire()
	case Release:
		return m.release()
	case Heartbeat:
		return m.heartbeat()
	}
	return nil
}

// moment is what step knows of one op (in, out) on state orig: s is orig
// as of t0, the earliest time the op can take effect, and own the index in
// s of the caller's lease (-1 if none).
type moment struct {
	orig, s State
	in      Input
	out     Output
	t0      int64
	own     int
}

// expHi is the latest expiry of a lease of ttl the op set, which took
// effect by in.Ret: Never for an unknown outcome, which may take effect at
// any moment after its call.
func (m moment) expHi(ttl time.Duration) int64 {
	return addSat(m.in.Ret, ttl+Slack)
}

// ownGone is s once the caller's lease, if any, ended: at the earliest at
// its ExpLo, which must fall within the op. ok is false if it cannot have.
func (m moment) ownGone() (State, int64, bool) {
	if m.own < 0 {
		return m.s, m.t0, true
	}
	l := m.s.Leases[m.own]
	if l.ExpLo > m.in.Ret {
		return State{}, 0, false
	}
	t := max(m.t0, l.ExpLo)
	return m.s.without(m.own).settle(t), t, true
}

// extend is the caller's lease with a TTL set at t0 (a heartbeat or a
// re-acquire), its fence learnt from an OK answer.
func (m moment) extend() (State, bool) {
	n := m.s
	if m.out.Result == OK {
		var ok bool
		if n, ok = n.learn(m.own, m.out.Fence); !ok {
			return State{}, false
		}
	}
	l := n.Leases[m.own]
	l.ExpLo, l.ExpHi = addSat(m.t0, m.in.TTL-Slack), m.expHi(m.in.TTL)
	return n.withLease(m.own, l), true
}

// extended is extend's state, if the caller holds a lease it may extend.
func (m moment) extended() []State {
	if m.own < 0 {
		return nil
	}
	if n, ok := m.extend(); ok {
		return []State{n}
	}
	return nil
}

// acquire is step for an acquire.
func (m moment) acquire() []State {
	var next []State
	switch m.out.Result {
	case OK:
		next = m.extended() // the holder again: fence kept, TTL reset
		if m.out.Fence > m.s.MaxFence && m.s.MaxFence >= m.in.After {
			next = append(next, m.grants()...)
		}
	case Unknown:
		next = append(append(next, m.orig), m.extended()...) // never happened, or did
		next = append(next, m.grants()...)
	case Refused:
		next = m.refusals()
	case Mismatch:
		// Held with another limit or mode family at t0, the moment most
		// leases may be live (the caller's own lease counts).
		if _, mm := conflict(m.s.Leases, m.s.Limit, m.in); mm {
			next = append(next, m.s)
		}
	}
	return next
}

// grants are the states after a new lease for the caller, granted at the
// earliest moment at which enough of the leases in its way may have ended:
// all that must (the caller's own, those of the other mode family or
// limit), and any k of the rest when the lock is full.
func (m moment) grants() []State {
	s, in := m.s, m.in
	var must, others, pool []int
	if m.own >= 0 {
		must = append(must, m.own)
	}
	for i := range s.Leases {
		if i != m.own {
			others = append(others, i)
		}
	}
	k := 0
	switch {
	case len(others) == 0:
	case in.shared() && s.Limit > 1, !in.shared() && (s.Leases[others[0]].Shared || s.Limit != in.limit()):
		must = append(must, others...)
	case in.shared():
		for _, i := range others {
			if !s.Leases[i].Shared {
				must = append(must, i)
			} else {
				pool = append(pool, i)
			}
		}
		k = len(pool) - lock.MaxLimit + 1
	default:
		pool, k = others, len(others)-in.limit()+1
	}
	t := m.t0
	for _, i := range must {
		if s.Leases[i].ExpLo > in.Ret {
			return nil
		}
		t = max(t, s.Leases[i].ExpLo)
	}
	var cands []int
	for _, i := range pool {
		if s.Leases[i].ExpLo <= in.Ret {
			cands = append(cands, i)
		}
	}
	var next []State
	choose(cands, max(k, 0), func(pick []int) {
		at := t
		for _, i := range pick {
			at = max(at, s.Leases[i].ExpLo)
		}
		if n, ok := m.grantAt(at, append(append([]int(nil), must...), pick...)); ok {
			next = append(next, n)
		}
	})
	return next
}

// choose calls f with every k-element subset of xs.
func choose(xs []int, k int, f func([]int)) {
	var pick []int
	var rec func(from int)
	rec = func(from int) {
		if len(pick) == k {
			f(pick)
			return
		}
		for i := from; i <= len(xs)-(k-len(pick)); i++ {
			pick = append(pick, xs[i])
			rec(i + 1)
			pick = pick[:len(pick)-1]
		}
	}
	rec(0)
}

// grantAt is the state after a new lease granted at time at, once the
// leases ended had ended.
func (m moment) grantAt(at int64, ended []int) (State, bool) {
	n := m.s.without(ended...).settle(at)
	if len(n.Leases) == 0 {
		n.Limit = m.in.limit()
	}
	l := Lease{Owner: m.in.Owner, Shared: m.in.shared(), FenceLo: n.MaxFence, FenceHi: Never,
		ExpLo: addSat(at, m.in.TTL-Slack), ExpHi: m.expHi(m.in.TTL)}
	ls := append(make([]Lease, 0, len(n.Leases)+1), n.Leases...)
	if m.out.Result == OK {
		f := m.out.Fence
		l.Fence = f
		for j := range ls {
			if ls[j].Fence == 0 {
				ls[j].FenceHi = min(ls[j].FenceHi, f) // granted before this one
				if !ls[j].feasible() {
					return State{}, false
				}
			}
		}
		n.MaxFence = max(n.MaxFence, f)
	}
	n.Leases = append(ls, l)
	return n, true
}

// refusals are the states after a refused acquire: legal if at some moment
// of the call the leases that may be live refuse it (held), with the fence
// of a mutex's holder, or if a waiter of another owner may have been in the
// lock's fair queue then (in.Queued), which refuses a newcomer even while
// leases are free. The caller's own lease must have ended first: a holder's
// acquire is an idempotent retry.
func (m moment) refusals() []State {
	n, _, ok := m.ownGone()
	if !ok {
		return nil
	}
	var next []State
	if held, _ := conflict(n.Leases, n.Limit, m.in); held {
		mutex := !m.in.shared() && m.in.limit() == 1 && n.Limit == 1 && len(n.Leases) == 1 && !n.Leases[0].Shared
		if !mutex || m.out.Fence == AnyFence {
			next = append(next, n)
		} else if h, ok := n.learn(0, m.out.Fence); ok {
			next = append(next, h) // the 409 shows the holder's fence
		}
	}
	if m.in.Queued {
		next = append(next, n)
	}
	return next
}

// release is step for a release.
func (m moment) release() []State {
	var next []State
	switch m.out.Result {
	case OK:
		if m.own >= 0 {
			if n, ok := m.s.learn(m.own, m.out.Fence); ok {
				next = append(next, m.released(n))
			}
		}
		// A release repeated by the owner whose release left the tombstone.
		if n, t, ok := m.ownGone(); ok {
			n = n.settle(t)
			if tb, ok := n.tomb(m.in.Owner); ok && tombFence(tb, m.out.Fence) {
				next = append(next, n)
			}
		}
	case Refused:
		next = m.ownerRefused()
	case Unknown:
		next = append(next, m.orig)
		if m.own >= 0 {
			next = append(next, m.released(m.s))
		}
	}
	return next
}

// released is n (m.s, its fences maybe learnt) after the caller's lease
// ended by release, leaving a tombstone if a later release by the same
// owner may need it (kept for every release, tombstones would multiply the
// states the search must tell apart: one set with and one without each
// release of unknown outcome). A tombstone lives TombLife from the
// release's effect: counted from its answer when known (later than the
// effect, and the same whatever the order of the operations around it, so
// states meet again in the search), else from t0, where the model puts it.
func (m moment) released(n State) State {
	if !m.in.Retried {
		return n.without(m.own)
	}
	from := m.in.Ret
	if m.out.Result == Unknown {
		from = m.t0
	}
	tb := Tomb{Lease: n.Leases[m.own], Until: addSat(from, TombLife)}
	return n.without(m.own).withTomb(tb)
}

// tombFence reports whether a repeated release's fence f fits tombstone tb.
func tombFence(tb Tomb, f int64) bool {
	if tb.Fence != 0 {
		return tb.Fence == f
	}
	return f > tb.FenceLo && f < tb.FenceHi
}

// heartbeat is step for a heartbeat.
func (m moment) heartbeat() []State {
	switch m.out.Result {
	case OK:
		return m.extended()
	case Refused:
		return m.ownerRefused()
	case Unknown:
		return append([]State{m.orig}, m.extended()...)
	}
	return nil
}

// ownerRefused is a release's or heartbeat's 409 not_held: legal for anyone
// without a lease, and for the owner once its lease may have ended.
func (m moment) ownerRefused() []State {
	if n, _, ok := m.ownGone(); ok {
		return []State{n}
	}
	return nil
}

// Model is the lease-lock model for porcupine, partitioned by lock id.
func Model() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: partition,
		Init:      func() []interface{} { return []interface{}{State{}} },
		Step: func(state, input, output interface{}) []interface{} {
			ns := step(state.(State), input.(Input), output.(Output))
			res := make([]interface{}, len(ns))
			for i, n := range ns {
				res[i] = n
			}
			return res
		},
		Equal: func(a, b interface{}) bool { return equalStates(a.(State), b.(State)) },
		Hash:  func(state interface{}) uint64 { return hashState(state.(State)) },
		DescribeOperation: func(input, output interface{}) string {
			return describeOperation(input.(Input), output.(Output))
		},
		DescribeState: func(state interface{}) string { return describeState(state.(State)) },
	}
	return nm.ToModel()
}

func equalStates(a, b State) bool {
	if a.Limit != b.Limit || a.MaxFence != b.MaxFence || a.Now != b.Now ||
		len(a.Leases) != len(b.Leases) || len(a.Tombs) != len(b.Tombs) {
		return false
	}
	for i := range a.Leases {
		if a.Leases[i] != b.Leases[i] {
			return false
		}
	}
	for i := range a.Tombs {
		if a.Tombs[i] != b.Tombs[i] {
			return false
		}
	}
	return true
}

// hashState is FNV-1a over what equalStates compares.
func hashState(s State) uint64 {
	h := uint64(14695981039346656037)
	mix := func(v uint64) { h = (h ^ v) * 1099511628211 }
	str := func(x string) {
		for i := 0; i < len(x); i++ {
			mix(uint64(x[i]))
		}
		mix(0xff)
	}
	lease := func(l Lease) {
		str(l.Owner)
		if l.Shared {
			mix(1)
		}
		mix(uint64(l.Fence))
		mix(uint64(l.FenceLo))
		mix(uint64(l.FenceHi))
		mix(uint64(l.ExpLo))
		mix(uint64(l.ExpHi))
	}
	mix(uint64(s.Limit))
	mix(uint64(s.MaxFence))
	mix(uint64(s.Now))
	for _, l := range s.Leases {
		lease(l)
	}
	mix(0xfe)
	for _, t := range s.Tombs {
		lease(t.Lease)
		mix(uint64(t.Until))
	}
	return h
}

func describeOperation(in Input, out Output) string {
	if in.Kind == Lose {
		return "redis lost all data"
	}
	s := fmt.Sprintf("%s(%s, %s", in.Kind, in.ID, short(in.Owner))
	if in.Kind != Release {
		s += ", ttl " + in.TTL.String()
	}
	if in.Wait > 0 {
		s += ", wait " + in.Wait.String()
	}
	if in.Limit > 1 {
		s += fmt.Sprintf(", limit %d", in.Limit)
	}
	if in.Mode != "" {
		s += ", " + in.Mode
	}
	s += ") -> " + out.Result.String()
	if out.Fence != 0 {
		s += fmt.Sprintf(" fence %d", out.Fence)
	}
	if out.Waited > 0 {
		s += " waited " + out.Waited.String()
	}
	if in.Queued {
		s += " (a waiter may have been queued)"
	}
	return s
}

func describeState(s State) string {
	if len(s.Leases) == 0 {
		return fmt.Sprintf("free (max fence %d, %d tombstones, now %s)", s.MaxFence, len(s.Tombs), ms(s.Now))
	}
	d := fmt.Sprintf("limit %d:", s.Limit)
	for _, l := range s.Leases {
		mode := "exclusive"
		if l.Shared {
			mode = "shared"
		}
		f := fmt.Sprint(l.Fence)
		if l.Fence == 0 {
			f = fmt.Sprintf("? in (%d, %s)", l.FenceLo, fenceHi(l.FenceHi))
		}
		d += fmt.Sprintf(" [%s %s fence %s, ends in [%s, %s]]", short(l.Owner), mode, f, ms(l.ExpLo), ms(l.ExpHi))
	}
	return d + fmt.Sprintf(" (now %s)", ms(s.Now))
}

func fenceHi(f int64) string {
	if f == Never {
		return "∞"
	}
	return fmt.Sprint(f)
}

func short(owner string) string {
	if len(owner) > 12 {
		return owner[:12]
	}
	if owner == "" {
		return "-"
	}
	return owner
}

func ms(t int64) string {
	if t == Never {
		return "never"
	}
	return fmt.Sprintf("%.1fms", float64(t)/1e6)
}

// partition splits a history by lock id; Lose events belong to every lock.
// It gives each id's operations what the model needs to know of the id's
// whole history (see prepare).
func partition(history []porcupine.Operation) [][]porcupine.Operation {
	byID := map[string][]porcupine.Operation{}
	var loses []porcupine.Operation
	for _, op := range history {
		in := op.Input.(Input)
		if in.Kind == Lose {
			loses = append(loses, op)
			continue
		}
		byID[in.ID] = append(byID[in.ID], op)
	}
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	parts := make([][]porcupine.Operation, 0, len(ids))
	for _, id := range ids {
		parts = append(parts, append(prepare(byID[id]), loses...))
	}
	return parts
}
