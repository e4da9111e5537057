package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"handler/function/function/api"
	"handler/function/function/lock"
)

// ListData is the data of an answer to GET /locks: held locks, owners
// never included, and the cursor of the next page ("" on the last).
type ListData struct {
	Locks  []ListedLock `json:"locks"`
	Cursor string       `json:"cursor"`
}

// ListedLock is one row of a listing: what a table of held locks shows. It
// has no owner field, so a row cannot leak one; each lease of a semaphore
// or of shared leases is /locks/{id}'s to show.
type ListedLock struct {
	ID      string `json:"id"`
	State   int    `json:"state"`
	Fence   int64  `json:"fence"`
	TTLms   int64  `json:"ttl_ms"`
	Holder  string `json:"holder,omitempty"`
	Mode    string `json:"mode,omitempty"`
	Limit   int    `json:"limit,omitempty"`
	Holders *int   `json:"holders,omitempty"`
	Waiters *int   `json:"waiters,omitempty"`
}

// listedLock is the row of l; like api.LeaseData, mode and limit only
// while held, and the counts where the store counted them.
func listedLock(l lock.Lease) ListedLock {
	row := ListedLock{ID: l.ID, Fence: l.Fence, TTLms: l.TTL.Milliseconds(), Holder: l.Holder}
	row.Holders, row.Waiters = api.Counts(l)
	if l.Held {
		row.State, row.Mode, row.Limit = 1, l.Mode, l.Limit
	}
	return row
}

// list serves GET /locks?prefix=P&limit=N&cursor=C.
func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	req, err := listRequest(r)
	if err == nil && h.List == nil {
		err = fmt.Errorf("%w: listing", lock.ErrUnsupported)
	}
	if err != nil {
		api.WriteResult(w, "", lock.Lease{}, err)
		return
	}
	page, err := h.List(r.Context(), req)
	if err != nil {
		api.WriteResult(w, "", lock.Lease{}, err)
		return
	}
	data := ListData{Locks: make([]ListedLock, 0, len(page.Locks)), Cursor: page.Cursor}
	for _, l := range page.Locks {
		data.Locks = append(data.Locks, listedLock(l))
	}
	api.Write(w, http.StatusOK, api.Envelope{Success: true, Data: data})
}

// listRequest reads the query of GET /locks; unknown or repeated parameters
// are refused.
func listRequest(r *http.Request) (lock.ListRequest, error) {
	var req lock.ListRequest
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return req, fmt.Errorf("%w: query string: %w", lock.ErrInvalid, err)
	}
	for name, vals := range q {
		if len(vals) > 1 {
			return req, fmt.Errorf("%w: %s is given more than once", lock.ErrInvalid, name)
		}
		switch v := vals[0]; name {
		case "prefix":
			req.Prefix = v
		case "cursor":
			req.Cursor = v
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > lock.MaxListLimit {
				return req, fmt.Errorf("%w: limit must be a whole number 1-%d, got %q", lock.ErrInvalid, lock.MaxListLimit, v)
			}
			req.Limit = n
		default:
			return req, fmt.Errorf("%w: unknown parameter %q", lock.ErrInvalid, name)
		}
	}
	return lock.ValidateList(req)
}

// revoke serves POST /locks/{id}/revoke: the lease ends now, whoever holds
// it (see lock.Revoker). The answer is the ended lease, or 409 not_held.
func (h *Handler) revoke(w http.ResponseWriter, r *http.Request, id string) {
	if err := lock.ValidateID(id); err != nil {
		api.WriteResult(w, "", lock.Lease{}, err)
		return
	}
	if h.Revoke == nil {
		api.WriteResult(w, id, lock.Lease{}, fmt.Errorf("%w: revoke", lock.ErrUnsupported))
		return
	}
	lease, err := h.Revoke(r.Context(), id)
	lease.Owner = ""
	api.WriteResult(w, id, lease, err)
}
