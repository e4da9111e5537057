package events_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"handler/function/function"
	"handler/function/function/api"
	"handler/function/function/events"
)

func sha(token string) string {
	d := sha256.Sum256([]byte(token))
	return hex.EncodeToString(d[:])
}

// tokensServer serves the Service with a tokens file: team-a and team-b may
// do everything on their own prefix and on shared/, reader may only read.
func tokensServer(t *testing.T, edit func(*function.Config)) (string, *miniredis.Miniredis) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokens.json")
	file := `{"tokens":[
	 {"name":"team-a","sha256":"` + sha("tok-a") + `","prefixes":["team-a/","shared/"],"verbs":["acquire","release","heartbeat","read"]},
	 {"name":"team-b","sha256":"` + sha("tok-b") + `","prefixes":["team-b/","shared/"],"verbs":["acquire","release","heartbeat","read"]},
	 {"name":"reader","sha256":"` + sha("tok-r") + `","prefixes":[""],"verbs":["read"]}]}`
	if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, m := newServer(t, func(c *function.Config) {
		c.TokensFile = p
		if edit != nil {
			edit(c)
		}
	})
	return srv.URL, m
}

// sendAs posts e in binary mode with a bearer token ("" sends none).
func sendAs(t *testing.T, url string, e event.Event, token string) (*http.Response, []byte, *event.Event) {
	t.Helper()
	req, err := cehttp.NewHTTPRequestFromEvent(context.Background(), url, e)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

func errorOf(t *testing.T, body []byte) envelope {
	t.Helper()
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	return env
}

// TestEventsAreCheckedAgainstTheSendersScope: an event on a lock outside the
// sender's prefixes is a 403 (not retried by a broker); a missing or unknown
// token a 401.
func TestEventsAreCheckedAgainstTheSendersScope(t *testing.T) {
	url, _ := tokensServer(t, nil)
	resp, body, _ := sendAs(t, url, newEvent(events.TypeAcquire, "team-b/x", ""), "tok-a")
	if env := errorOf(t, body); resp.StatusCode != http.StatusForbidden || env.Code != api.CodeForbidden || !strings.Contains(env.Error, "team-a") {
		t.Fatalf("team-a on team-b/x: %d %s", resp.StatusCode, body)
	}
	resp, body, _ = sendAs(t, url, newEvent(events.TypeAcquire, "team-a/x", ""), "tok-r")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("reader acquiring: %d %s", resp.StatusCode, body)
	}
	for _, token := range []string{"", "tok-nobody"} {
		resp, body, _ = sendAs(t, url, newEvent(events.TypeAcquire, "team-a/x", ""), token)
		if env := errorOf(t, body); resp.StatusCode != http.StatusUnauthorized || env.Code != api.CodeUnauthorized {
			t.Fatalf("token %q: %d %s", token, resp.StatusCode, body)
		}
	}
	_, _, reply := sendAs(t, url, newEvent(events.TypeAcquire, "team-a/x", ""), "tok-a")
	checkReply(t, reply, events.TypeAcquired, "team-a/x")
}

// TestBatchIsCheckedEventByEvent: one event outside the sender's scope makes
// the whole batch a 403 naming it, and nothing in it is carried out.
func TestBatchIsCheckedEventByEvent(t *testing.T) {
	url, _ := tokensServer(t, nil)
	req := batchRequest(t, url, newEvent(events.TypeAcquire, "team-a/1", ""), newEvent(events.TypeAcquire, "team-b/1", ""))
	req.Header.Set("Authorization", "Bearer tok-a")
	resp, body, _ := do(t, req)
	if env := errorOf(t, body); resp.StatusCode != http.StatusForbidden || env.Code != api.CodeForbidden || !strings.Contains(env.Error, "batch event 1") {
		t.Fatalf("batch with team-b/1: %d %s", resp.StatusCode, body)
	}
	// team-a/1 was not taken: team-b... cannot see it, but team-a can take
	// it with another owner.
	_, _, reply := sendAs(t, url, newEvent(events.TypeAcquire, "team-a/1", ""), "tok-a")
	checkReply(t, reply, events.TypeAcquired, "team-a/1")
}

// Threat 1: a derived owner keyed by public data. Whoever sees an acquire
// event computes DeriveOwner(OwnerKey(source, ""), ...) and releases; with
// the owner key (here made once in Redis) that owner is not the lease's.
func TestThreatDerivedOwnerFromPublicData(t *testing.T) {
	srv, _ := newServer(t, nil)
	acq := newEvent(events.TypeAcquire, "jobs/1", "")
	_, _, reply := sendAs(t, srv.URL, acq, "")
	checkReply(t, reply, events.TypeAcquired, "jobs/1")
	guess := events.DeriveOwner(events.OwnerKey("/candado", ""), acq.Source(), acq.ID())
	_, _, reply = sendAs(t, srv.URL, newEvent(events.TypeRelease, "jobs/1", `{"owner":"`+guess+`"}`), "")
	if env := checkReply(t, reply, events.TypeRejected, "jobs/1"); env.Code != api.CodeNotHeld {
		t.Fatalf("release with the owner computed from public data: %+v, want not_held", env)
	}
}

// The owner key is made once and shared through Redis: a redelivery to
// another replica is the same owner and the same lease.
func TestDerivedOwnersAgreeAcrossReplicas(t *testing.T) {
	srv1, m := newServer(t, nil)
	srv2, _ := newServer(t, func(c *function.Config) { c.RedisURL = "redis://" + m.Addr() })
	e := newEvent(events.TypeAcquire, "jobs/r", "")
	_, _, r1 := sendAs(t, srv1.URL, e, "")
	_, _, r2 := sendAs(t, srv2.URL, e, "")
	a1, a2 := checkReply(t, r1, events.TypeAcquired, "jobs/r"), checkReply(t, r2, events.TypeAcquired, "jobs/r")
	if a1.Data.Owner != a2.Data.Owner || a1.Data.Fence != a2.Data.Fence {
		t.Fatalf("replica 1 %+v, replica 2 %+v: want one owner and fence", a1.Data, a2.Data)
	}
}

// Threat 2: success replies carry data.owner to every subscriber of the
// broker. Owners are bound to the identity that acquired, so another
// sender that read it cannot release or extend the lease, by event or HTTP.
func TestThreatOwnerSeenInAReply(t *testing.T) {
	url, _ := tokensServer(t, nil)
	_, _, reply := sendAs(t, url, newEvent(events.TypeAcquire, "shared/1", ""), "tok-a")
	owner := checkReply(t, reply, events.TypeAcquired, "shared/1").Data.Owner
	if owner == "" {
		t.Fatal("no owner in the reply")
	}
	for _, typ := range []string{events.TypeHeartbeat, events.TypeRelease} {
		_, _, reply = sendAs(t, url, newEvent(typ, "shared/1", `{"owner":"`+owner+`"}`), "tok-b")
		if env := checkReply(t, reply, events.TypeRejected, "shared/1"); env.Code != api.CodeNotHeld {
			t.Fatalf("team-b %s with team-a's owner: %+v, want not_held", typ, env)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/release/shared/1?owner="+owner, nil)
	req.Header.Set("Authorization", "Bearer tok-b")
	resp, body, _ := do(t, req)
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("team-b HTTP release with team-a's owner: %d %s, want 409", resp.StatusCode, body)
	}
	_, _, reply = sendAs(t, url, newEvent(events.TypeHeartbeat, "shared/1", `{"owner":"`+owner+`"}`), "tok-a")
	checkReply(t, reply, events.TypeExtended, "shared/1")
	_, _, reply = sendAs(t, url, newEvent(events.TypeRelease, "shared/1", `{"owner":"`+owner+`"}`), "tok-a")
	checkReply(t, reply, events.TypeReleased, "shared/1")
}

// Threat 3: two producers that reuse one source and id were one owner, and
// both got "acquired". Their identities make them two owners.
func TestThreatProducersReusingSourceAndID(t *testing.T) {
	url, _ := tokensServer(t, nil)
	e := newEvent(events.TypeAcquire, "shared/2", "")
	_, _, ra := sendAs(t, url, e, "tok-a")
	_, _, ra2 := sendAs(t, url, e, "tok-a") // team-a's redelivery
	_, _, rb := sendAs(t, url, e, "tok-b")
	a, a2 := checkReply(t, ra, events.TypeAcquired, "shared/2"), checkReply(t, ra2, events.TypeAcquired, "shared/2")
	if a.Data.Owner != a2.Data.Owner || a.Data.Fence != a2.Data.Fence {
		t.Fatalf("team-a's redelivery: %+v then %+v, want the same lease", a.Data, a2.Data)
	}
	if env := checkReply(t, rb, events.TypeRejected, "shared/2"); env.Code != api.CodeHeld {
		t.Fatalf("team-b reusing team-a's source and id: %+v, want held", env)
	}
}

// An owner key that cannot be read (Redis down) is a 503 the broker retries.
func TestOwnerKeyUnreadableIs503(t *testing.T) {
	srv, m := newServer(t, nil)
	m.Close()
	resp, body, _ := sendAs(t, srv.URL, newEvent(events.TypeAcquire, "jobs/down", ""), "")
	if env := errorOf(t, body); resp.StatusCode != http.StatusServiceUnavailable || env.Data.ID != "jobs/down" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}
