package check

import (
	"sort"

	"github.com/anishathalye/porcupine"
)

// prepare returns one lock id's operations with what the model needs to
// know of the id's whole history written into their inputs: the refusals a
// fair queue may explain (markQueued), the order of the grants
// (orderGrants), and the releases whose tombstones may matter
// (markRetried).
func prepare(ops []porcupine.Operation) []porcupine.Operation {
	return markRetried(orderGrants(markQueued(derivedCleared(ops))))
}

// derivedCleared returns ops without what an earlier prepare wrote, which
// a cut of a prepared history (see transcript) would otherwise keep: an
// operation of unknown outcome in the cut may have been a grant the rest
// were ordered after.
func derivedCleared(ops []porcupine.Operation) []porcupine.Operation {
	out := make([]porcupine.Operation, len(ops))
	for i, op := range ops {
		in := op.Input.(Input)
		in.Queued, in.After, in.Retried = false, 0, false
		op.Input = in
		out[i] = op
	}
	return out
}

// orderGrants returns one lock id's operations with Input.After set on each
// owner's first acquire answered 200: the highest fence below its own that
// another owner's first grant showed. Fences rise in grant order, so that
// grant came first, and a linearization that has not yet taken it cannot
// take this one. The model would find that out anyway, once the lower fence
// came up; saying it at once spares the search every order of the
// operations between (which, where many shared leases are granted while
// their acquires overlap, is most of it).
func orderGrants(ops []porcupine.Operation) []porcupine.Operation {
	// owner: index of its first acquire that may have taken effect. If that
	// one's outcome is unknown, the owner's grant answered 200 may have been
	// the lease it took, whose fence the search learns only later: such an
	// owner is left out.
	first := map[string]int{}
	for i, op := range ops {
		in, out := op.Input.(Input), op.Output.(Output)
		if in.Kind != Acquire || out.Result != OK && out.Result != Unknown {
			continue
		}
		if j, ok := first[in.Owner]; !ok || in.Call < ops[j].Input.(Input).Call {
			first[in.Owner] = i
		}
	}
	for owner, i := range first {
		if ops[i].Output.(Output).Result != OK {
			delete(first, owner)
		}
	}
	if len(first) < 2 {
		return ops
	}
	idx := make([]int, 0, len(first))
	for _, i := range first {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(a, b int) bool { return ops[idx[a]].Output.(Output).Fence < ops[idx[b]].Output.(Output).Fence })
	out := append([]porcupine.Operation(nil), ops...)
	var prev int64
	for _, i := range idx {
		f := ops[i].Output.(Output).Fence
		in := out[i].Input.(Input)
		in.After = prev
		out[i].Input = in
		if f > prev {
			prev = f
		}
	}
	return out
}

// markRetried returns one lock id's operations with Input.Retried set on
// each release whose owner calls another release of the id after it.
func markRetried(ops []porcupine.Operation) []porcupine.Operation {
	last := map[string]int64{} // owner: the call of its last release
	for _, op := range ops {
		if in := op.Input.(Input); in.Kind == Release {
			if c, ok := last[in.Owner]; !ok || in.Call > c {
				last[in.Owner] = in.Call
			}
		}
	}
	out := ops
	copied := false
	for i, op := range ops {
		in := op.Input.(Input)
		if in.Kind != Release || in.Call >= last[in.Owner] {
			continue
		}
		if !copied {
			out, copied = append([]porcupine.Operation(nil), ops...), true
		}
		in.Retried = true
		out[i].Input = in
	}
	return out
}
