package access

import "net/http"

// Middleware authenticates every request before routing and checks the
// right its route needs, so a 401 comes before a 404, 405 or 400, and a 403
// before a 400. The identity goes into the request's context (WithIdentity)
// for the mappings behind it: the CloudEvents mapping checks each event.
type Middleware struct {
	Authorizer *Authorizer
	// Public reports the paths served with no credential (probes, scraper).
	Public func(path string) bool
	// Right is the right a request needs: a verb on a lock id ("" for a
	// route that names none). ok false means authentication only, for
	// requests whose rights are checked behind (CloudEvents) and routes that
	// need none.
	Right func(r *http.Request) (verb Verb, id string, ok bool)
	// Deny writes the answer to a refused request; err wraps
	// ErrUnauthorized, ErrForbidden or ErrUnavailable.
	Deny func(w http.ResponseWriter, r *http.Request, err error)
}

// Wrap returns next behind m.
func (m Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.Public != nil && m.Public(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		ident, err := m.Authorizer.Authenticate(r)
		if err == nil && m.Right != nil {
			if verb, id, ok := m.Right(r); ok {
				err = m.Authorizer.Check(ident, verb, id)
			}
		}
		if err != nil {
			m.Deny(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), ident)))
	})
}
