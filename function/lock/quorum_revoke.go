package lock

import "context"

// Revoke ends the lease on id on every master, whoever holds it (see
// Revoker); each master keeps the fence as a tombstone and wakes its
// waiters. It succeeds when a majority ended a lease, and is ErrNotHeld
// when a majority had none; anything in between is undecided,
// ErrUnavailable. A partial grant on a minority is ended too, as an undo
// would.
func (q *QuorumStore) Revoke(ctx context.Context, id string) (Lease, error) {
	m0 := q.masters[0]
	revoked := answer.ok
	rs := q.fanout(ctx, script(revokeScript, []string{m0.Key(id), m0.channel(id), m0.changes(id)},
		ms(q.opts.Tombstone), m0.publishCmd(), changesCmd),
		func(rs []reply) bool { return q.decided(rs, revoked) }, nil)
	switch yes, no, _ := tally(rs, revoked); {
	case yes >= q.quorum:
	case no >= q.quorum:
		return Lease{ID: id}, ErrNotHeld
	default:
		return Lease{ID: id}, q.unavailable(ctx, "revoke", rs)
	}
	l := Lease{ID: id}
	for _, r := range rs {
		if r.err == nil && revoked(r.ans) {
			l.Fence = max(l.Fence, r.ans.fence)
		}
	}
	return l, nil
}
