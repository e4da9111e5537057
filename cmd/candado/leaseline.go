package main

import (
	"github.com/candado-dev/candado/client"
)

// leaseLine is how the client commands print a lock: the names and shape of
// the envelope's data on the wire (docs/API.md), owner only in answers to
// the owner. The fields of issue 15 are left out when empty or zero, so a
// plain mutex prints as it always did.
type leaseLine struct {
	ID          string      `json:"id"`
	State       int         `json:"state"`
	Owner       string      `json:"owner,omitempty"`
	Fence       int64       `json:"fence"`
	TTLms       int64       `json:"ttl_ms"`
	Holder      string      `json:"holder,omitempty"`
	Mode        string      `json:"mode,omitempty"`
	Limit       int         `json:"limit,omitempty"`
	Holders     int         `json:"holders,omitempty"`
	Waiters     int         `json:"waiters,omitempty"`
	DelayLeftMs int64       `json:"delay_left_ms,omitempty"`
	Leases      []leaseInfo `json:"leases,omitempty"`
}

// leaseInfo is one live lease of a semaphore or of shared holders.
type leaseInfo struct {
	Fence  int64  `json:"fence"`
	TTLms  int64  `json:"ttl_ms"`
	Holder string `json:"holder,omitempty"`
	Mode   string `json:"mode,omitempty"`
}

func toLine(st client.Status) leaseLine {
	w := leaseLine{ID: st.ID, Owner: st.Owner, Fence: st.Fence, TTLms: st.TTL.Milliseconds(),
		Holder: st.Holder, Mode: st.Mode, Limit: st.Limit, Holders: st.Holders, Waiters: st.Waiters,
		DelayLeftMs: st.DelayLeft.Milliseconds()}
	if st.Held {
		w.State = 1
	}
	for _, l := range st.Leases {
		w.Leases = append(w.Leases, leaseInfo{Fence: l.Fence, TTLms: l.TTL.Milliseconds(), Holder: l.Holder, Mode: l.Mode})
	}
	return w
}

// leaseStatus is a granted lease as the acquire's answer showed it.
func leaseStatus(l *client.Lease) client.Status {
	return client.Status{ID: l.ID(), Held: true, Owner: l.Owner(), Fence: l.Fence(), TTL: l.TTL(),
		Holder: l.Holder(), Mode: l.Mode(), Limit: l.Limit()}
}
