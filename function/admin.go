package function

import (
	"context"
	"fmt"

	"handler/function/function/api"
	"handler/function/function/httpapi"
	"handler/function/function/lock"
)

// wireAdmin gives h the listing and revoke of store, when store has them
// (the quorum store has neither: h answers 503 unsupported).
//
// Revoke is an operator's act. Until scoped tokens with an admin verb
// exist, it needs CANDADO_AUTH_TOKEN configured (and, as for every route,
// presented): with no token every caller is anonymous, and revoke answers
// 403 forbidden.
func (s *Service) wireAdmin(h *httpapi.Handler, store lock.Store, m *metrics) {
	if l, ok := store.(lock.Lister); ok {
		h.List = l.List
	}
	rv, ok := store.(lock.Revoker)
	if !ok {
		return
	}
	h.Revoke = func(ctx context.Context, id string) (lock.Lease, error) {
		if s.cfg.AuthToken == "" {
			return lock.Lease{ID: id}, fmt.Errorf("%w: revoke needs CANDADO_AUTH_TOKEN to be configured and presented", api.ErrForbidden)
		}
		lease, err := rv.Revoke(ctx, id)
		if err == nil {
			s.log.Info("lease revoked", "id", id, "fence", lease.Fence)
			m.observeHold("revoked", lease)
		}
		return lease, err
	}
}
