// Package httpapi maps Candado's HTTP routes onto lock operations: paths and
// methods, parameters from the query string or a JSON body, and the status
// code of every outcome.
package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"handler/function/function/api"
	"handler/function/function/lock"
)

// Handler serves the lock routes, /locks, /healthz, /readyz, /metrics and
// /openapi.yaml. Auth and CloudEvents are told apart before it (see
// function.Service).
type Handler struct {
	Locks  api.Locks
	Limits api.Limits
	// Ready reports whether the backend answers, for /readyz.
	Ready func(context.Context) error
	// Metrics serves /metrics; nil answers 404.
	Metrics http.Handler
	// List serves GET /locks (see list.go); nil answers 503 unsupported.
	List func(context.Context, lock.ListRequest) (lock.ListPage, error)
	// Revoke serves POST /locks/{id}/revoke; nil answers 503 unsupported.
	Revoke func(context.Context, string) (lock.Lease, error)
}

// Route names a request's route for metrics: the first path segment of a
// known route, else "other".
func Route(path string) string {
	seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	switch seg {
	case "acquire", "release", "heartbeat", "locks", "healthz", "readyz", "metrics", "watch", "ui":
		return seg
	}
	return "other"
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		if allow(w, r, http.MethodGet) {
			api.Write(w, http.StatusOK, api.Envelope{Success: true})
		}
		return
	case "/readyz":
		if allow(w, r, http.MethodGet) {
			h.readyz(w, r)
		}
		return
	case "/openapi.yaml":
		serveOpenAPI(w, r)
		return
	case "/locks":
		if allow(w, r, http.MethodGet) {
			h.list(w, r)
		}
		return
	case "/metrics":
		if h.Metrics != nil { // else no such route: 404 below
			if allow(w, r, http.MethodGet) {
				h.Metrics.ServeHTTP(w, r)
			}
			return
		}
	}
	route, id, found := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch op := api.Op(route); {
	case found && (op == api.Acquire || op == api.Release || op == api.Heartbeat):
		if allow(w, r, http.MethodGet, http.MethodPost) {
			h.operate(w, r, op, id)
		}
	case found && route == "locks" && r.Method == http.MethodPost && strings.HasSuffix(id, "/revoke"):
		h.revoke(w, r, strings.TrimSuffix(id, "/revoke"))
	case found && route == "locks":
		if allow(w, r, http.MethodGet) {
			h.inspect(w, r, id)
		}
	default:
		api.Write(w, http.StatusNotFound, api.Envelope{Error: fmt.Sprintf("no route %s", r.URL.Path), Code: api.CodeNotFound})
	}
}

func (h *Handler) operate(w http.ResponseWriter, r *http.Request, op api.Op, id string) {
	p, err := params(r, id)
	if err == nil {
		var req api.Request
		if req, err = h.Limits.Resolve(op, p); err == nil {
			lease, err := req.Do(r.Context(), h.Locks)
			env := req.Envelope(id, lease, err)
			api.Write(w, api.StatusOf(env.Code), env)
			return
		}
	}
	api.WriteResult(w, api.EchoID(id), lock.Lease{}, err)
}

func (h *Handler) inspect(w http.ResponseWriter, r *http.Request, id string) {
	if err := lock.ValidateID(id); err != nil {
		api.WriteResult(w, "", lock.Lease{}, err)
		return
	}
	lease, err := h.Locks.Inspect(r.Context(), id)
	lease.Owner = "" // anyone may inspect: like revoke, never show an owner, whatever the store filled
	env := api.Counted(id, lease, err)
	api.Write(w, api.StatusOf(env.Code), env)
}

func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	if err := h.Ready(r.Context()); err != nil {
		api.WriteResult(w, "", lock.Lease{}, err)
		return
	}
	api.Write(w, http.StatusOK, api.Envelope{Success: true})
}

// params gathers the parameters of a lock route from the path, the query
// string and, on POST, the JSON body.
func params(r *http.Request, id string) (api.Params, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return api.Params{}, fmt.Errorf("%w: query string: %w", lock.ErrInvalid, err)
	}
	var fromQuery api.Params
	fields := map[string]*string{
		"owner": &fromQuery.Owner, "ttl": &fromQuery.TTL, "wait": &fromQuery.Wait,
		"holder": &fromQuery.Holder, "limit": &fromQuery.Limit, "mode": &fromQuery.Mode, "lock_delay": &fromQuery.LockDelay,
	}
	for name, vals := range q {
		field, ok := fields[name]
		if !ok {
			return api.Params{}, fmt.Errorf("%w: unknown parameter %q", lock.ErrInvalid, name)
		}
		for _, v := range vals[1:] {
			if v != vals[0] {
				return api.Params{}, fmt.Errorf("%w: %s is given twice with different values", lock.ErrInvalid, name)
			}
		}
		*field = vals[0]
	}
	fromQuery.ID = id
	if r.Method != http.MethodPost {
		return fromQuery, nil
	}
	fromBody, err := api.DecodeParams(r.Body)
	if err != nil {
		return api.Params{}, err
	}
	return api.Merge(fromQuery, fromBody)
}

// allow answers 405 unless r uses one of methods.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	api.Write(w, http.StatusMethodNotAllowed, api.Envelope{
		Error: fmt.Sprintf("method %s is not allowed here; use %s", r.Method, strings.Join(methods, " or ")),
		Code:  api.CodeMethodNotAllowed,
	})
	return false
}
