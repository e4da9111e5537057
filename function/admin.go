package function

import (
	"context"

	"handler/function/function/access"
	"handler/function/function/httpapi"
	"handler/function/function/lock"
)

// wireAdmin gives h the listing and revoke of store, when store has them
// (the quorum store cannot list: h answers that 503 unsupported).
//
// Revoke is an operator's act: access (httpapi.Right) lets it through only
// with the admin verb on the lock id.
func (s *Service) wireAdmin(h *httpapi.Handler, store lock.Store, m *metrics) {
	if l, ok := store.(lock.Lister); ok {
		h.List = l.List
	}
	rv, ok := store.(lock.Revoker)
	if !ok {
		return
	}
	h.Revoke = func(ctx context.Context, id string) (lock.Lease, error) {
		lease, err := rv.Revoke(ctx, id)
		if err == nil {
			who := "anonymous"
			if ident, ok := access.FromContext(ctx); ok {
				who = ident.Principal()
			}
			s.log.Info("lease revoked", "id", id, "fence", lease.Fence, "by", who)
			m.observeHold("revoked", lease)
		}
		return lease, err
	}
}
