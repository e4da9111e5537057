// Package floor is the HTTP floor: the lock routes answered from memory
// (a map under a mutex, owners, fences and waiting included, no TTL), so a cycle
// costs the HTTP exchange and little else. Nothing over HTTP can be faster
// on the same machine with the same client.
package floor

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

type envelope struct {
	Error   string `json:"error"`
	Code    string `json:"code"`
	Success bool   `json:"success"`
	Data    data   `json:"data"`
}

type data struct {
	ID    string `json:"id"`
	State int    `json:"state"`
	Owner string `json:"owner,omitempty"`
	Fence int64  `json:"fence"`
	TTLms int64  `json:"ttl_ms"`
}

// lease is a held lock; released is closed when it is given back.
type lease struct {
	owner    string
	released chan struct{}
}

// Handler serves /acquire/{id}?owner=&wait= and /release/{id}?owner= from
// memory. A waiting acquire of a held lock sleeps until a release and tries
// again, until its wait (whole milliseconds) runs out.
func Handler() http.Handler {
	var (
		mu     sync.Mutex
		leases = map[string]*lease{}
		fence  int64
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, id, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		q := r.URL.Query()
		owner := q.Get("owner")
		switch route {
		case "acquire":
			waitMS, _ := strconv.Atoi(q.Get("wait"))
			timeout := time.After(time.Duration(waitMS) * time.Millisecond)
			for {
				mu.Lock()
				cur := leases[id]
				if cur == nil || cur.owner == owner {
					if cur == nil {
						leases[id] = &lease{owner: owner, released: make(chan struct{})}
					}
					fence++
					f := fence
					mu.Unlock()
					write(w, http.StatusOK, envelope{Success: true, Data: data{ID: id, State: 1, Owner: owner, Fence: f, TTLms: 10000}})
					return
				}
				mu.Unlock()
				select {
				case <-cur.released:
					continue
				case <-timeout:
				case <-r.Context().Done():
				}
				write(w, http.StatusConflict, envelope{Error: "held", Code: "held", Data: data{ID: id, State: 1}})
				return
			}
		case "release":
			mu.Lock()
			cur := leases[id]
			held := cur != nil && cur.owner == owner
			if held {
				delete(leases, id)
				close(cur.released)
			}
			mu.Unlock()
			if !held {
				write(w, http.StatusConflict, envelope{Error: "not held", Code: "not_held", Data: data{ID: id}})
				return
			}
			write(w, http.StatusOK, envelope{Success: true, Data: data{ID: id, Owner: owner}})
		case "healthz":
			write(w, http.StatusOK, envelope{Success: true})
		default:
			write(w, http.StatusNotFound, envelope{Error: "not found", Code: "not_found"})
		}
	})
}

func write(w http.ResponseWriter, status int, e envelope) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(e)
}
