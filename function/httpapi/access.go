package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"handler/function/function/access"
	"handler/function/function/api"
	"handler/function/function/lock"
)

// Public reports the paths served without a credential: the probes', the
// scraper's and the API description's.
func Public(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics", "/openapi.yaml":
		return true
	}
	return false
}

// Right is the right an HTTP request needs (see access.Middleware): the
// operation's verb on /acquire, /release and /heartbeat/{id}; read on
// /locks/{id} and /watch/{id}, and on the prefix of /locks?prefix=P and
// /watch?prefix=P; admin on {id} for POST /locks/{id}/revoke; admin, on no
// lock, under /admin. Any other route needs read
// (GET, HEAD) or admin (other methods) on no lock, so a route added later
// is closed to scoped tokens until it says otherwise here. The root path is
// left to the CloudEvents mapping, which checks each event.
func Right(r *http.Request) (access.Verb, string, bool) {
	route, id, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch route {
	case "":
		return "", "", false
	case string(api.Acquire):
		return access.Acquire, id, true
	case string(api.Release):
		return access.Release, id, true
	case string(api.Heartbeat):
		return access.Heartbeat, id, true
	case "locks":
		if id == "" { // the listing: read on its prefix
			return access.Read, r.URL.Query().Get("prefix"), true
		}
		if lockID, ok := strings.CutSuffix(id, "/revoke"); ok && r.Method == http.MethodPost {
			return access.Admin, lockID, true
		}
		return access.Read, id, true
	case "watch":
		if id == "" {
			return access.Read, r.URL.Query().Get("prefix"), true
		}
		return access.Read, id, true
	case "admin":
		return access.Admin, "", true
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return access.Read, "", true
	}
	return access.Admin, "", true
}

// Deny answers a request that access refused: 401 unauthorized (with
// WWW-Authenticate), 403 forbidden, or 503 unavailable when the credential
// cannot be checked now.
func Deny(w http.ResponseWriter, r *http.Request, err error) {
	env := api.Result("", lock.Lease{}, err)
	if _, id, ok := Right(r); ok && errors.Is(err, access.ErrForbidden) && lock.ValidateID(id) == nil {
		env.Data = api.IDData{ID: id}
	}
	if errors.Is(err, lock.ErrUnavailable) {
		env.Error = "cannot check the credential now, retry later"
	}
	api.Write(w, api.StatusOf(env.Code), env)
}
