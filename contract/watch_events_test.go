//go:build integration

package contract

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pb33f/libopenapi-validator/schema_validation"
)

// The stream's events are a string to the answer's schema; their data
// lines are described by components.schemas.WatchEvent and WatchSnapshot.
// Every data line of a stream that saw a grant, an extension, a release,
// an expiry and a revoke satisfies its schema, and none names an owner.
func TestWatchEventsMatchTheirSchemas(t *testing.T) {
	_, model, _ := loadSpec(t)
	schema := func(name string) string {
		if _, ok := model.Components.Schemas.Get(name); !ok {
			t.Fatalf("%s has no components.schemas.%s", specFile, name)
		}
		return name
	}
	events, snapshots := schema("WatchEvent"), schema("WatchSnapshot")
	// A 2 s request deadline ends each stream after 1 s.
	srv := startServerWith(t, token, 2*time.Second)
	call := func(method, path, body string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.Client().Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s %s: %v %v", method, path, resp, err)
		}
		resp.Body.Close()
	}
	call("POST", "/acquire/c-we/held", `{"owner":"o1","ttl":"1m"}`)
	read := func(path string, during func()) string {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.Client().Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, resp, err)
		}
		defer resp.Body.Close()
		during()
		b, _ := io.ReadAll(resp.Body) // the stream ends by itself
		return string(b)
	}
	body := read("/watch?prefix=c-we/", func() {
		call("POST", "/acquire/c-we/a", `{"owner":"o2","ttl":"30s"}`)
		call("POST", "/heartbeat/c-we/a", `{"owner":"o2","ttl":"40s"}`)
		call("POST", "/release/c-we/a", `{"owner":"o2"}`)
		call("POST", "/acquire/c-we/short", `{"owner":"o3","ttl":"100ms"}`)
		call("POST", "/acquire/c-we/gone", `{"owner":"o4","ttl":"30s"}`)
		call("POST", "/locks/c-we/gone/revoke", ``)
		time.Sleep(300 * time.Millisecond) // the short lease expires
	})
	body += read("/watch/c-we/held", func() {})

	v := schema_validation.NewSchemaValidator()
	kinds := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		name := events
		if strings.HasPrefix(data, `{"event":"snapshot"`) {
			name = snapshots
		}
		s, _ := model.Components.Schemas.Get(name)
		if ok, errs := v.ValidateSchemaStringWithVersion(s.Schema(), data, 3.1); !ok {
			t.Errorf("%s does not satisfy components.schemas.%s:%s", data, name, describe(errs))
		}
		if strings.Contains(data, `"owner"`) {
			t.Errorf("%s names an owner", data)
		}
		kind, _, _ := strings.Cut(strings.TrimPrefix(data, `{"event":"`), `"`)
		kinds[kind] = true
	}
	for _, kind := range []string{"snapshot", "state", "acquired", "extended", "released", "expired", "revoked"} {
		if !kinds[kind] {
			t.Errorf("no %s event in the streams:\n%s", kind, body)
		}
	}
}
