package function

import (
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
)

// In quorum mode listing and watch are refused with a 503 that says why,
// rather than answering from one master's view; revoke works (by majority).
func TestQuorumRefusesListRevokeAndWatchClearly(t *testing.T) {
	var urls []string
	for range 3 {
		urls = append(urls, "redis://"+miniredis.RunT(t).Addr())
	}
	srv, _ := newTestService(t, func(c *Config) {
		c.RedisURL, c.RedisMode, c.RedisURLs, c.AuthToken = "", ModeQuorum, urls, "tok"
	})
	for _, rq := range []struct{ method, path string }{
		{"GET", "/locks?prefix=a"},
		{"GET", "/watch/a"},
		{"GET", "/watch?prefix=a"},
	} {
		a := call(t, srv, rq.method, rq.path, "", "Authorization", "Bearer tok").want(t, 503, "unavailable")
		if !strings.Contains(a.Env.Error, "not supported in this CANDADO_REDIS_MODE") {
			t.Errorf("%s %s: error %q does not say quorum mode cannot do it", rq.method, rq.path, a.Env.Error)
		}
	}
	call(t, srv, "POST", "/locks/a/revoke", "", "Authorization", "Bearer tok").want(t, 409, "not_held")
	call(t, srv, "GET", "/acquire/a?ttl=1m", "", "Authorization", "Bearer tok").want(t, 200, "")
	call(t, srv, "POST", "/locks/a/revoke", "", "Authorization", "Bearer tok").want(t, 200, "")
}

// The operations page loads without the token; the API behind it does not.
func TestUIIsServedWithoutTheToken(t *testing.T) {
	srv, _ := newTestService(t, func(c *Config) { c.AuthToken = "tok" })
	resp, err := srv.Client().Get(srv.URL + "/ui")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /ui without a token: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	call(t, srv, "GET", "/locks", "").want(t, 401, "unauthorized")
	call(t, srv, "GET", "/watch/a", "").want(t, 401, "unauthorized")
}
