// Package check proves Candado's guarantees by history checking: concurrent
// clients drive the real service over a real Redis, every acquire, release
// and heartbeat is recorded with its call and return time, and porcupine
// checks the history against a sequential model of a lease lock. Scenarios
// add faults (Redis restarted with data loss, Redis paused past the TTL, a
// slow or broken network between service and Redis, the service killed, two
// service instances on one Redis) and a fenced counter as the protected
// resource.
package check

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
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
	Call  int64
	Ret   int64
}

// Result is how a call ended.
type Result uint8

// The results. Unknown is an error answer (503, timeout, connection reset):
// the operation may or may not have happened.
const (
	OK Result = iota
	Refused
	Unknown
)

func (r Result) String() string {
	switch r {
	case OK:
		return "ok"
	case Refused:
		return "409"
	}
	return "unknown"
}

// Output is a recorded answer. Fence is the answer's fence (0 if none).
type Output struct {
	Result Result
	Fence  int64
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

// WithoutRefusedAcquires returns history without its refused acquires: what
// is left checks mutual exclusion and fences of the leases granted, whatever
// the 409s claimed.
func WithoutRefusedAcquires(history []porcupine.Operation) []porcupine.Operation {
	var h []porcupine.Operation
	for _, op := range history {
		if in, out := op.Input.(Input), op.Output.(Output); in.Kind == Acquire && out.Result == Refused {
			continue
		}
		h = append(h, op)
	}
	return h
}

// Slack absorbs Redis' millisecond granularity around lease expiry: a lease
// set at t with ttl ends somewhere in [t+ttl-Slack, t+ttl+Slack].
const Slack = 5 * time.Millisecond

// State is the model's state of one lock. Times are nanoseconds since the
// history began.
type State struct {
	// Owner holds the lease; "" when free. A held lease may already have
	// expired: expiry is a nondeterministic step taken lazily, when an
	// operation needs it, at a time in [ExpLo, ExpHi].
	Owner string
	// Fence is the current (or last) lease's fence; 0 when unknown (the
	// lease came from an acquire whose answer was lost).
	Fence int64
	// MaxFence is the highest fence any answer showed; a new grant must
	// mint a higher one.
	MaxFence int64
	// ExpLo and ExpHi bound the moment the held lease ends.
	ExpLo, ExpHi int64
	// Tomb is the owner whose release left a tombstone: a repeated release
	// by it may succeed again (idempotent retry) and changes nothing.
	Tomb string
	// Now is the earliest possible time of the last linearization point;
	// linearization points never go back in time.
	Now int64
}

func addSat(a int64, d time.Duration) int64 {
	if a == Never || a > Never-int64(d) {
		return Never
	}
	return a + int64(d)
}

// step is the nondeterministic step of the model: every state the lock can
// be in after op, or none if op's answer is impossible.
func step(s State, in Input, out Output) []State {
	t0 := max(s.Now, in.Call) // earliest time this op can take effect
	if t0 > in.Ret {
		return nil
	}
	if in.Kind == Lose {
		// Redis lost every key somewhere in [Call, Ret]. Fences stay above
		// MaxFence (they derive from Redis' clock), so MaxFence is kept.
		return []State{{MaxFence: s.MaxFence, Fence: s.Fence, Now: t0}}
	}
	held := s.Owner != ""
	m := moment{s: s, in: in, out: out, t0: t0, tExp: max(t0, s.ExpLo), held: held,
		// canBeAlive: the lease may still run at t0, the earliest point.
		canBeAlive: held && t0 < s.ExpHi,
		// canBeExpired: the lease may have ended by the op's return; taking
		// that branch moves the linearization point to at least ExpLo.
		canBeExpired: held && in.Ret >= s.ExpLo,
	}
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

// moment is what step knows of one op (in, out) on state s: the earliest
// time it can take effect (t0; tExp when it takes the expired branch) and
// what the lease may be then.
type moment struct {
	s                              State
	in                             Input
	out                            Output
	t0, tExp                       int64
	held, canBeAlive, canBeExpired bool
}

// expHi is the latest expiry of a lease of ttl the op set; an unknown
// answer's lease may never have been set to expire.
func (m moment) expHi(ttl time.Duration) int64 {
	if m.out.Result == Unknown {
		return Never
	}
	return addSat(m.in.Ret, ttl+Slack)
}

// fenceOK checks an answer's fence against the lease's fence; an unknown
// one (from a lost answer) was minted above MaxFence.
func (m moment) fenceOK(f int64) bool {
	if m.s.Fence != 0 {
		return f == m.s.Fence
	}
	return f > m.s.MaxFence
}

// grant: a new lease, from a free lock or one whose lease ended.
func (m moment) grant(at int64) State {
	n := State{Owner: m.in.Owner, MaxFence: m.s.MaxFence, Now: at,
		ExpLo: addSat(at, m.in.TTL-Slack), ExpHi: m.expHi(m.in.TTL)}
	if m.out.Result == OK {
		n.Fence, n.MaxFence = m.out.Fence, max(m.s.MaxFence, m.out.Fence)
	}
	return n
}

// again: the holder acquires again; fence kept, TTL reset.
func (m moment) again() State {
	n := m.s
	n.Now, n.ExpLo, n.ExpHi = m.t0, addSat(m.t0, m.in.TTL-Slack), m.expHi(m.in.TTL)
	if m.out.Result == OK && n.Fence == 0 {
		n.Fence, n.MaxFence = m.out.Fence, max(m.s.MaxFence, m.out.Fence)
	}
	return n
}

// acquire is step for an acquire.
func (m moment) acquire() []State {
	s, in, out := m.s, m.in, m.out
	var next []State
	switch out.Result {
	case OK:
		f := out.Fence
		if s.Owner == in.Owner && m.canBeAlive && m.fenceOK(f) {
			next = append(next, m.again())
		}
		if f > s.MaxFence {
			if !m.held {
				next = append(next, m.grant(m.t0))
			} else if m.canBeExpired {
				next = append(next, m.grant(m.tExp))
			}
		}
	case Refused:
		// Held by another owner at some moment of the op. AnyFence (only
		// from Relax) asserts no fence.
		if m.held && s.Owner != in.Owner && m.canBeAlive && (out.Fence == AnyFence || m.fenceOK(out.Fence)) {
			n := s
			n.Now = m.t0
			if n.Fence == 0 && out.Fence != AnyFence {
				n.Fence, n.MaxFence = out.Fence, max(s.MaxFence, out.Fence)
			}
			next = append(next, n)
		}
	case Unknown:
		next = append(next, s) // never happened
		if s.Owner == in.Owner && m.canBeAlive {
			next = append(next, m.again())
		}
		if !m.held {
			next = append(next, m.grant(m.t0))
		} else if m.canBeExpired {
			next = append(next, m.grant(m.tExp))
		}
	}
	return next
}

// release is step for a release.
func (m moment) release() []State {
	s, in, out := m.s, m.in, m.out
	released := func() State {
		return State{Fence: s.Fence, MaxFence: s.MaxFence, Tomb: in.Owner, Now: m.t0}
	}
	next := ownerStep(s, in, out, m.t0, m.tExp, m.canBeAlive, m.canBeExpired, m.fenceOK, released)
	if out.Result == OK && !m.held && s.Tomb != "" && s.Tomb == in.Owner && m.fenceOK(out.Fence) {
		n := s // a release repeated by the owner whose release left the tombstone
		n.Now = m.t0
		next = append(next, n)
	}
	return next
}

// heartbeat is step for a heartbeat.
func (m moment) heartbeat() []State {
	s, in, out := m.s, m.in, m.out
	extended := func() State {
		n := s
		n.Now, n.ExpLo, n.ExpHi = m.t0, addSat(m.t0, in.TTL-Slack), m.expHi(in.TTL)
		if out.Result == OK && n.Fence == 0 {
			n.Fence, n.MaxFence = out.Fence, out.Fence
		}
		return n
	}
	return ownerStep(s, in, out, m.t0, m.tExp, m.canBeAlive, m.canBeExpired, m.fenceOK, extended)
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
		Hash: func(state interface{}) uint64 {
			s := state.(State)
			h := uint64(14695981039346656037)
			for _, c := range s.Owner {
				h = (h ^ uint64(c)) * 1099511628211
			}
			return h ^ uint64(s.Fence)*31 ^ uint64(s.Now)*17 ^ uint64(s.ExpLo)
		},
		DescribeOperation: func(input, output interface{}) string {
			in, out := input.(Input), output.(Output)
			if in.Kind == Lose {
				return "redis lost all data"
			}
			s := fmt.Sprintf("%s(%s, %s", in.Kind, in.ID, short(in.Owner))
			if in.Kind != Release {
				s += ", ttl " + in.TTL.String()
			}
			s += ") -> " + out.Result.String()
			if out.Fence != 0 {
				s += fmt.Sprintf(" fence %d", out.Fence)
			}
			return s
		},
		DescribeState: func(state interface{}) string {
			s := state.(State)
			if s.Owner == "" {
				return fmt.Sprintf("free (fence %d, tomb %s, now %s)", s.Fence, short(s.Tomb), ms(s.Now))
			}
			return fmt.Sprintf("held by %s fence %d, ends in [%s, %s] (now %s)",
				short(s.Owner), s.Fence, ms(s.ExpLo), ms(s.ExpHi), ms(s.Now))
		},
	}
	return nm.ToModel()
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
		parts = append(parts, append(byID[id], loses...))
	}
	return parts
}

// ownerStep is what release and heartbeat share: they take effect (apply)
// only for the owner of a lease that may still be alive; a refusal is legal
// for anyone else, or for the owner once its lease may have expired; an
// unknown outcome may or may not have taken effect.
func ownerStep(s State, in Input, out Output, t0, tExp int64, canBeAlive, canBeExpired bool,
	fenceOK func(int64) bool, apply func() State) []State {
	var next []State
	switch out.Result {
	case OK:
		if s.Owner == in.Owner && canBeAlive && fenceOK(out.Fence) {
			next = append(next, apply())
		}
	case Refused:
		if s.Owner != in.Owner {
			n := s
			n.Now = t0
			next = append(next, n)
		} else if canBeExpired {
			next = append(next, State{Fence: s.Fence, MaxFence: s.MaxFence, Now: tExp})
		}
	case Unknown:
		next = append(next, s)
		if s.Owner == in.Owner && canBeAlive {
			next = append(next, apply())
		}
	}
	return next
}
