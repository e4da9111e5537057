package events

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"handler/function/function/access"
	"handler/function/function/api"
)

// sender is what the mapping needs of one request's sender: who it is and
// how its acquires without an owner get one.
type sender struct {
	h      *Handler
	ident  access.Identity
	derive func(source, id string) string
	// err is why derive could not work (the owner key could not be read);
	// the event that needed it is answered with it.
	err error
}

// sender sets up the request's sender from the identity that
// access.Middleware put in ctx (none counts as Anonymous). With
// Handler.Owners set, derived owners are keyed by the owner key and the
// sender's principal (access.DeriveOwner); the key is read on the first
// derivation.
func (h *Handler) sender(ctx context.Context) *sender {
	ident, _ := access.FromContext(ctx)
	s := &sender{h: h, ident: ident}
	if h.Owners == nil {
		key := h.ownerKey()
		s.derive = func(source, id string) string { return DeriveOwner(key, source, id) }
		return s
	}
	principal := ident.Principal()
	s.derive = func(source, id string) string {
		secret, err := h.Owners.Get(ctx)
		if err != nil {
			s.err = err
			return "unavailable" // never used: s.err answers the event
		}
		return access.DeriveOwner(secret, principal, source, id)
	}
	return s
}

// decode is Decode for this sender, checked against its rights.
func (s *sender) decode(e event.Event) (api.Request, error) {
	req, err := decode(e, s.h.Limits, s.derive)
	if err == nil {
		err = s.err
	}
	if err == nil {
		err = s.check(req)
	}
	return req, err
}

// check reports whether the sender may carry out req: the event's lock id
// against the sender's rights, when Handler.Access is set. Its error wraps
// access.ErrForbidden (403, which a broker does not retry).
func (s *sender) check(req api.Request) error {
	if s.h.Access == nil {
		return nil
	}
	return s.h.Access.Check(s.ident, verbOf(req.Op), req.ID)
}

// verbOf is the access verb of an operation.
func verbOf(op api.Op) access.Verb {
	switch op {
	case api.Acquire:
		return access.Acquire
	case api.Release:
		return access.Release
	}
	return access.Heartbeat
}
