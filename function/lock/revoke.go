package lock

import (
	"context"
	_ "embed"
)

var (
	//go:embed revoke.lua
	revokeLua    string
	revokeScript = newLua(revokeLua)
)

// Revoker ends a lease whoever holds it. Operators use it on a holder that
// hangs; it is not a way to take a lock.
type Revoker interface {
	// Revoke ends the lease on id now, as an expiry would: the fence stays
	// the floor of the next grant, the next waiter is woken, and the
	// holder's later heartbeat or release is refused (ErrNotHeld). It
	// returns the ended lease (Held false), or ErrNotHeld when nobody held
	// the lock.
	Revoke(ctx context.Context, id string) (Lease, error)
}

// Revoke ends the lease on id; see Revoker.
func (s *RedisStore) Revoke(ctx context.Context, id string) (Lease, error) {
	l, status, err := s.run(ctx, revokeScript.get(), id, []string{s.Key(id), s.channel(id), s.changes(id), s.leasesKey(id), s.leaseInfoKey(id)},
		ms(s.opts.Tombstone), s.publishCmd(), changesCmd)
	if err != nil {
		return l, err
	}
	if status != 1 {
		return l, ErrNotHeld
	}
	return l, nil
}
