package watch

import (
	"encoding/json"

	"handler/function/function/lock"
)

// This file is the JSON of the events: the lease fields of the API's
// answers, never an owner, and the kind, so that one data line says
// everything.

// leaseFields are the fields of every lease in an event.
type leaseFields struct {
	ID     string `json:"id"`
	State  int    `json:"state"`
	Fence  int64  `json:"fence"`
	TTLms  int64  `json:"ttl_ms"`
	Holder string `json:"holder,omitempty"`
	Mode   string `json:"mode,omitempty"`
}

// changeData is a change of one lease: the lease it names, with state 1
// while that lease lives. Another lease of a semaphore or of shared leases
// may still hold the lock after one's "released".
type changeData struct {
	Event string `json:"event"`
	leaseFields
}

// lockData is a lock with every live lease: a state event, and each lock
// of a snapshot.
type lockData struct {
	leaseFields
	Limit       int         `json:"limit,omitempty"`
	Holders     int         `json:"holders"`
	Waiters     int         `json:"waiters"`
	DelayLeftMs int64       `json:"delay_left_ms,omitempty"`
	Leases      []leaseData `json:"leases,omitempty"`
}

// leaseData is one live lease of a lock.
type leaseData struct {
	Fence  int64  `json:"fence"`
	TTLms  int64  `json:"ttl_ms"`
	Holder string `json:"holder,omitempty"`
	Mode   string `json:"mode,omitempty"`
}

type stateData struct {
	Event string `json:"event"`
	lockData
}

type snapshotData struct {
	Event     string     `json:"event"`
	Prefix    string     `json:"prefix"`
	Locks     []lockData `json:"locks"`
	Truncated bool       `json:"truncated,omitempty"`
}

func newLeaseFields(l lock.Lease) leaseFields {
	d := leaseFields{ID: l.ID, Fence: l.Fence, Holder: l.Holder, Mode: l.Mode}
	if l.Held {
		d.State, d.TTLms = 1, l.TTL.Milliseconds()
	}
	return d
}

// newLockData is l with its leases: those the store listed, or the single
// one in l's own fields. Holders counts them when the store did not.
func newLockData(l lock.Lease) lockData {
	d := lockData{leaseFields: newLeaseFields(l), Waiters: l.Waiters, DelayLeftMs: l.DelayLeft.Milliseconds()}
	if !l.Held {
		return d
	}
	d.Limit = l.Limit
	for _, info := range leasesOf(l) {
		d.Leases = append(d.Leases, leaseData{Fence: info.Fence, TTLms: info.TTL.Milliseconds(), Holder: info.Holder, Mode: info.Mode})
	}
	d.Holders = max(l.Holders, len(d.Leases))
	return d
}

// encode renders e as one SSE event for watcher w.
func (f *Feed) encode(e Event, w *watcher) []byte {
	var data any
	switch e.Kind {
	case KindSnapshot:
		s := snapshotData{Event: e.Kind, Prefix: w.prefix, Locks: make([]lockData, 0, len(e.Locks)), Truncated: e.Truncated}
		for _, l := range e.Locks {
			s.Locks = append(s.Locks, newLockData(l))
		}
		data = s
	case KindState:
		data = stateData{Event: e.Kind, lockData: newLockData(e.Lease)}
	default:
		data = changeData{Event: e.Kind, leaseFields: newLeaseFields(e.Lease)}
	}
	b, _ := json.Marshal(data) // plain structs always encode
	return []byte("id: " + f.eventID(e.Seq) + "\nevent: " + e.Kind + "\ndata: " + string(b) + "\n\n")
}
