package watch

import (
	"cmp"
	"context"
	"slices"
	"time"

	"handler/function/function/lock"
)

// This file keeps the live leases of the watched locks and finds their
// expiries, which Redis never announces. Every lease is tracked on its own
// (a semaphore or a lock of shared leases has several, each with its own
// fence and end), and each lock has one timer, armed for the earliest end
// among its leases, so that many leases ending together cost one Inspect.

// trackedLease is a live lease as the Feed last heard of it.
type trackedLease struct {
	fence int64
	// ends is when the lease runs out on the Feed's clock, expirySlack
	// included. It is never earlier than the end in Redis: it counts the
	// TTL from when the Feed heard it, after Redis counted it.
	ends   time.Time
	holder string
	mode   string
}

// tracked is the live leases of one watched lock, by fence, and the timer
// of the earliest end.
type tracked struct {
	leases map[int64]*trackedLease
	timer  *time.Timer
	due    time.Time // what timer is armed for
	gen    uint64    // counts the timers armed; a stopped one that fired anyway is stale
	// checking is set while an expiry check waits for the store; the check
	// arms the timer again when it is done.
	checking bool
}

// leasesOf is l's live leases: l.Leases when the store filled it, else the
// single lease in l's own fields, as a mutex store may give it.
func leasesOf(l lock.Lease) []lock.LeaseInfo {
	if len(l.Leases) > 0 {
		return l.Leases
	}
	if l.Held {
		return []lock.LeaseInfo{{Fence: l.Fence, TTL: l.TTL, Holder: l.Holder, Mode: l.Mode}}
	}
	return nil
}

// trackedLocked is id's tracked leases, created on first use.
func (f *Feed) trackedLocked(id string) *tracked {
	t, ok := f.locks[id]
	if !ok {
		t = &tracked{leases: map[int64]*trackedLease{}}
		f.locks[id] = t
	}
	return t
}

// heardLocked applies change c of a watched lock to its tracked leases and
// returns c's lease as watchers see it. A message of the previous
// version's format names no holder or mode; the tracked lease still knows
// them.
func (f *Feed) heardLocked(c lock.Change) lock.Lease {
	l := lock.Lease{ID: c.ID, Held: c.Held(), Fence: c.Fence, TTL: c.TTL, Holder: c.Holder, Mode: c.Mode}
	t := f.trackedLocked(c.ID)
	if known, ok := t.leases[c.Fence]; ok && c.Mode == "" {
		l.Holder, l.Mode = known.holder, known.mode
	}
	if l.Held {
		t.leases[c.Fence] = &trackedLease{fence: c.Fence, ends: f.now().Add(c.TTL + expirySlack), holder: l.Holder, mode: l.Mode}
	} else {
		delete(t.leases, c.Fence)
	}
	f.armLocked(c.ID, t)
	return l
}

// overdueLocked reports the expiry of every lease of id but fence whose
// TTL has run out on the Feed's clock: a change of id came after it, on
// the same channel, so no extension of it is still on its way, and it
// ended in Redis before it did so on this clock. Watchers hear it expire
// before they hear of the change (such as a mutex's next grant), without
// waiting for the timer and the store.
func (f *Feed) overdueLocked(id string, fence int64) {
	t, ok := f.locks[id]
	if !ok {
		return
	}
	now := f.now()
	overdue := func(l *trackedLease) bool { return l.fence != fence && !now.Before(l.ends.Add(-expirySlack)) }
	found := false
	for _, l := range t.leases {
		found = found || overdue(l)
	}
	if !found {
		return // the common case, without sorting many leases
	}
	for _, l := range sortedLeases(t) {
		if overdue(l) {
			f.expireLocked(id, t, l)
		}
	}
}

// sawLocked tracks the live leases of lock l, read from the store after
// the Feed's event seq since, that the Feed does not track yet; a lease
// whose end was published after since is not live any more.
func (f *Feed) sawLocked(l lock.Lease, since uint64) {
	if !f.watchedLocked(l.ID) {
		return
	}
	live := leasesOf(l)
	if len(live) == 0 {
		return
	}
	ended := f.endedSinceLocked(since)
	t := f.trackedLocked(l.ID)
	now := f.now()
	for _, info := range live {
		if _, ok := t.leases[info.Fence]; ok || ended[leaseKey{l.ID, info.Fence}] {
			continue // the messages since are newer than the store's answer
		}
		t.leases[info.Fence] = &trackedLease{fence: info.Fence, ends: now.Add(info.TTL + expirySlack), holder: info.Holder, mode: info.Mode}
	}
	f.armLocked(l.ID, t)
}

type leaseKey struct {
	id    string
	fence int64
}

// endedSinceLocked is the leases whose end (released, revoked, expired)
// the Feed published after its event seq since, as far as the ring
// remembers.
func (f *Feed) endedSinceLocked(since uint64) map[leaseKey]bool {
	ended := map[leaseKey]bool{}
	for i := len(f.ring) - 1; i >= 0 && f.ring[i].Seq > since; i-- {
		if e := f.ring[i]; !e.Lease.Held {
			ended[leaseKey{e.Lease.ID, e.Lease.Fence}] = true
		}
	}
	return ended
}

// armLocked sets id's timer for the earliest end of its leases, and
// forgets id when none is left.
func (f *Feed) armLocked(id string, t *tracked) {
	if t.checking {
		return // the check arms it when the store has answered
	}
	var due time.Time
	for _, l := range t.leases {
		if due.IsZero() || l.ends.Before(due) {
			due = l.ends
		}
	}
	if due.Equal(t.due) && t.timer != nil {
		return
	}
	if t.timer != nil {
		t.timer.Stop()
		t.timer = nil
	}
	t.due = due
	if due.IsZero() {
		if f.locks[id] == t {
			delete(f.locks, id)
		}
		return
	}
	t.gen++
	gen := t.gen
	t.timer = f.checkAfter(max(0, due.Sub(f.now())), func() { f.checkExpiry(id, t, gen) })
}

// untrackLocked stops id's timer and forgets its leases.
func (f *Feed) untrackLocked(id string) {
	if t, ok := f.locks[id]; ok {
		if t.timer != nil {
			t.timer.Stop()
		}
		delete(f.locks, id)
	}
}

// checkExpiry runs when a tracked lease of id should have run out. Each
// lease due that the store no longer has is reported "expired"; one it
// still has (clocks apart, or an extension whose message is late) is due
// again at the TTL the store reports. Live leases the Feed did not track
// yet (a grant whose message is still on its way) are tracked.
func (f *Feed) checkExpiry(id string, t *tracked, gen uint64) {
	f.mu.Lock()
	if f.locks[id] != t || t.gen != gen || t.checking {
		f.mu.Unlock()
		return // forgotten or re-armed meanwhile
	}
	t.checking = true
	t.timer = nil // it fired
	since := f.seq
	f.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	lease, err := f.src.Inspect(ctx, id)
	cancel()

	f.mu.Lock()
	defer f.mu.Unlock()
	t.checking = false
	if f.locks[id] != t {
		return // no watcher needs it any more
	}
	now := f.now()
	live := map[int64]lock.LeaseInfo{}
	for _, info := range leasesOf(lease) {
		live[info.Fence] = info
	}
	for _, l := range sortedLeases(t) {
		switch info, ok := live[l.fence]; {
		case now.Before(l.ends):
			// Not due, or extended meanwhile.
		case err != nil:
			// The store did not answer: look again shortly.
			l.ends = now.Add(retryCheck)
		case ok:
			l.ends = now.Add(info.TTL + expirySlack)
		default:
			f.expireLocked(id, t, l)
		}
	}
	if err == nil {
		f.sawLocked(lease, since)
	}
	f.armLocked(id, t)
}

// retryCheck is how soon an expiry check that the store did not answer
// runs again.
const retryCheck = 100 * time.Millisecond

// expireLocked forgets lease l of id and tells the watchers it expired.
func (f *Feed) expireLocked(id string, t *tracked, l *trackedLease) {
	delete(t.leases, l.fence)
	f.publishLocked(Event{Kind: lock.ChangeExpired, Lease: lock.Lease{ID: id, Fence: l.fence, Holder: l.holder, Mode: l.mode}})
}

// sortedLeases is t's leases by fence, so that leases that expire
// together are reported in the order they were granted.
func sortedLeases(t *tracked) []*trackedLease {
	ls := make([]*trackedLease, 0, len(t.leases))
	for _, l := range t.leases {
		ls = append(ls, l)
	}
	slices.SortFunc(ls, func(a, b *trackedLease) int { return cmp.Compare(a.fence, b.fence) })
	return ls
}
