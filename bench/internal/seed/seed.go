// Package seed is the seed-like baseline: the lock routes done the way the
// project's seed did them, one SETNX to acquire and one DEL to release, with
// no TTL, no owner and no fence. It is what Candado's extra guarantees are
// measured against; it is not a lock anyone should use (a crashed holder
// keeps its lock forever, and anyone can release it).
package seed

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/redis/go-redis/v9"
)

// envelope is the seed's answer.
type envelope struct {
	Error   string `json:"error"`
	Code    string `json:"code"`
	Success bool   `json:"success"`
	Data    data   `json:"data"`
}

type data struct {
	ID    string `json:"id"`
	State int    `json:"state"`
}

// Handler serves /acquire/{id} and /release/{id} on rdb.
func Handler(rdb *redis.Client) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, id, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if route == "healthz" {
			write(w, http.StatusOK, envelope{Success: true})
			return
		}
		if id == "" {
			write(w, http.StatusNotFound, envelope{Error: "not found", Code: "not_found"})
			return
		}
		key := "seed:" + id
		switch route {
		case "acquire":
			ok, err := rdb.SetNX(r.Context(), key, 1, 0).Result()
			switch {
			case err != nil:
				write(w, http.StatusServiceUnavailable, envelope{Error: err.Error(), Code: "unavailable", Data: data{ID: id}})
			case !ok:
				write(w, http.StatusConflict, envelope{Error: "held", Code: "held", Data: data{ID: id, State: 1}})
			default:
				write(w, http.StatusOK, envelope{Success: true, Data: data{ID: id, State: 1}})
			}
		case "release":
			n, err := rdb.Del(r.Context(), key).Result()
			switch {
			case err != nil:
				write(w, http.StatusServiceUnavailable, envelope{Error: err.Error(), Code: "unavailable", Data: data{ID: id}})
			case n == 0:
				write(w, http.StatusConflict, envelope{Error: "not held", Code: "not_held", Data: data{ID: id}})
			default:
				write(w, http.StatusOK, envelope{Success: true, Data: data{ID: id}})
			}
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
