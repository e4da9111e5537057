package access

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"time"

	"handler/function/function/api"
	"handler/function/function/lock"
)

// bindDomain separates bound owners from every other use of the key.
const bindDomain = "candado/owner-binding/v1"

// BindOwner is the owner stored for owner when identity principal asks:
// "b1." and the hex of HMAC-SHA256(key, domain, principal, owner), each
// length-prefixed. Another principal naming the same owner gets another
// stored owner, so it cannot release or extend the lease, and nobody without
// the key can compute it.
func BindOwner(key []byte, principal, owner string) string {
	m := hmac.New(sha256.New, key)
	writeLP(m, bindDomain)
	writeLP(m, principal)
	writeLP(m, owner)
	return "b1." + hex.EncodeToString(m.Sum(nil))
}

func writeLP(w io.Writer, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	_, _ = w.Write(n[:])        // hash writes never fail
	_, _ = io.WriteString(w, s) // hash writes never fail
}

// BindOwners returns locks with every owner bound to ident (BindOwner): an
// owner named by ident is stored as ident's, and answers give ident back the
// owner it named. Anonymous identities are not bound (there is nobody to
// tell apart), so locks is returned as it is.
func BindOwners(locks api.Locks, key []byte, ident Identity) api.Locks {
	if ident.Principal() == "" {
		return locks
	}
	return boundLocks{Locks: locks, key: key, principal: ident.Principal()}
}

// Bind returns locks with every owner bound to the identity in each call's
// context (see WithIdentity and BindOwners), in both mappings, so an owner
// is scoped to the identity that named it whichever way it comes back.
// Anonymous calls (and calls with no identity) are not bound. A bound call
// whose key cannot be read fails with an error wrapping lock.ErrUnavailable.
func (k *OwnerKey) Bind(locks api.Locks) api.Locks {
	return contextBound{Locks: locks, k: k}
}

type contextBound struct {
	api.Locks
	k *OwnerKey
}

// bound is the locks of the identity in ctx.
func (c contextBound) bound(ctx context.Context) (api.Locks, error) {
	ident, _ := FromContext(ctx)
	if ident.Principal() == "" {
		return c.Locks, nil
	}
	key, err := c.k.Get(ctx)
	if err != nil {
		return nil, err
	}
	return BindOwners(c.Locks, key, ident), nil
}

func (c contextBound) Acquire(ctx context.Context, req lock.AcquireRequest) (lock.Lease, error) {
	l, err := c.bound(ctx)
	if err != nil {
		return lock.Lease{ID: req.ID}, err
	}
	return l.Acquire(ctx, req)
}

func (c contextBound) Release(ctx context.Context, id, owner string) (lock.Lease, error) {
	l, err := c.bound(ctx)
	if err != nil {
		return lock.Lease{ID: id}, err
	}
	return l.Release(ctx, id, owner)
}

func (c contextBound) Heartbeat(ctx context.Context, id, owner string, ttl time.Duration) (lock.Lease, error) {
	l, err := c.bound(ctx)
	if err != nil {
		return lock.Lease{ID: id}, err
	}
	return l.Heartbeat(ctx, id, owner, ttl)
}

type boundLocks struct {
	api.Locks
	key       []byte
	principal string
}

func (b boundLocks) bind(owner string) string { return BindOwner(b.key, b.principal, owner) }

// unbind shows the caller its own owner in place of the stored one.
func unbind(lease lock.Lease, stored, named string) lock.Lease {
	if lease.Owner == stored {
		lease.Owner = named
	}
	return lease
}

func (b boundLocks) Acquire(ctx context.Context, req lock.AcquireRequest) (lock.Lease, error) {
	named := req.Owner
	req.Owner = b.bind(named)
	lease, err := b.Locks.Acquire(ctx, req)
	return unbind(lease, req.Owner, named), err
}

func (b boundLocks) Release(ctx context.Context, id, owner string) (lock.Lease, error) {
	stored := b.bind(owner)
	lease, err := b.Locks.Release(ctx, id, stored)
	return unbind(lease, stored, owner), err
}

func (b boundLocks) Heartbeat(ctx context.Context, id, owner string, ttl time.Duration) (lock.Lease, error) {
	stored := b.bind(owner)
	lease, err := b.Locks.Heartbeat(ctx, id, stored, ttl)
	return unbind(lease, stored, owner), err
}

// deriveDomain separates derived owners from every other use of the key.
const deriveDomain = "candado/derived-owner/v2"

// DeriveOwner is the owner of an acquire event that names none: the hex of
// HMAC-SHA256(key, domain, principal, source, id), each length-prefixed,
// cut to 128 bits. The same sender redelivering the same event (same source
// and id) gets the same owner, on any replica sharing the key; another
// sender reusing that source and id gets another owner; and without the key
// nobody can compute it from the event.
func DeriveOwner(key []byte, principal, source, id string) string {
	m := hmac.New(sha256.New, key)
	writeLP(m, deriveDomain)
	writeLP(m, principal)
	writeLP(m, source)
	writeLP(m, id)
	return hex.EncodeToString(m.Sum(nil)[:16])
}
