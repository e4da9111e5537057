package events_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"handler/function/function/events"
)

// BenchmarkCycle compares acquire→release cycles as plain HTTP calls and as
// binary-mode CloudEvents, through the same server (the whole Service on
// miniredis). One op is one full cycle: two round trips.
func BenchmarkCycle(b *testing.B) {
	srv, _ := newServer(b, nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.Cleanup(client.CloseIdleConnections)

	post := func(req *http.Request) (owner string) {
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("%s %s: %d %s %v", req.Method, req.URL, resp.StatusCode, body, err)
		}
		var env struct {
			Success bool
			Data    struct{ Owner string }
		}
		if err := json.Unmarshal(body, &env); err != nil || !env.Success {
			b.Fatalf("%s: %s %v", req.URL, body, err)
		}
		return env.Data.Owner
	}

	b.Run("http", func(b *testing.B) {
		for b.Loop() {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/acquire/bench/http?ttl=30s", nil)
			owner := post(req)
			req, _ = http.NewRequest(http.MethodPost, srv.URL+"/release/bench/http?owner="+owner, nil)
			post(req)
		}
	})

	b.Run("cloudevent_binary", func(b *testing.B) {
		n := 0
		event := func(typ, body string) *http.Request {
			n++
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(body))
			h := req.Header
			h["Ce-Specversion"] = []string{"1.0"}
			h["Ce-Id"] = []string{strconv.Itoa(n)}
			h["Ce-Source"] = []string{"/bench"}
			h["Ce-Type"] = []string{typ}
			h["Ce-Subject"] = []string{"bench/ce"}
			h["Content-Type"] = []string{"application/json"}
			return req
		}
		for b.Loop() {
			owner := post(event(events.TypeAcquire, `{"ttl":"30s"}`))
			post(event(events.TypeRelease, fmt.Sprintf(`{"owner":%q}`, owner)))
		}
	})
}
