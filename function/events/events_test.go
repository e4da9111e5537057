package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"handler/function/function"
	"handler/function/function/api"
	"handler/function/function/events"
)

const source = "/test/producer"

// newServer serves the whole Service (HTTP routes and CloudEvents) on
// miniredis through a real HTTP server.
func newServer(tb testing.TB, edit func(*function.Config)) (*httptest.Server, *miniredis.Miniredis) {
	tb.Helper()
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		tb.Fatal(err)
	}
	cfg := function.Config{RedisURL: "redis://" + m.Addr(), Port: 8080, KeyPrefix: "candado:",
		DefaultTTL: 30 * time.Second, MaxTTL: time.Hour, MaxWait: 2 * time.Second,
		EventSource: "/candado", BackendTimeout: 300 * time.Millisecond}
	if edit != nil {
		edit(&cfg)
	}
	svc, err := function.NewService(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	tb.Cleanup(func() { srv.Close(); _ = svc.Close(); m.Close() })
	return srv, m
}

// envelope is the reply data, or the body of an error answer.
type envelope struct {
	Error   string `json:"error"`
	Code    string `json:"code"`
	Success bool   `json:"success"`
	Data    struct {
		ID    string `json:"id"`
		State int    `json:"state"`
		Owner string `json:"owner"`
		Fence int64  `json:"fence"`
		TTLms int64  `json:"ttl_ms"`
	} `json:"data"`
}

var seq struct {
	sync.Mutex
	n int
}

func nextID() string {
	seq.Lock()
	defer seq.Unlock()
	seq.n++
	return fmt.Sprintf("ev-%d", seq.n)
}

// newEvent builds a request event; data "" sends none.
func newEvent(typ, subject, data string) event.Event {
	e := event.New()
	e.SetID(nextID())
	e.SetSource(source)
	e.SetType(typ)
	if subject != "" {
		e.SetSubject(subject)
	}
	if data != "" {
		e.SetDataContentType(event.ApplicationJSON)
		e.DataEncoded = []byte(data)
	}
	return e
}

func dataOf(t *testing.T, e *event.Event) envelope {
	t.Helper()
	var env envelope
	if err := json.Unmarshal(e.Data(), &env); err != nil {
		t.Fatalf("reply data %q: %v", e.Data(), err)
	}
	return env
}

// checkReply checks a reply event's attributes and returns its envelope.
func checkReply(t *testing.T, e *event.Event, typ, subject string) envelope {
	t.Helper()
	if e == nil {
		t.Fatal("no reply event")
	}
	if err := e.Validate(); err != nil {
		t.Errorf("reply is not a valid CloudEvent: %v", err)
	}
	if e.Type() != typ || e.Subject() != subject || e.Source() != "/candado" || e.DataContentType() != event.ApplicationJSON || e.ID() == "" {
		t.Errorf("reply: type %q subject %q source %q datacontenttype %q id %q; want type %q subject %q",
			e.Type(), e.Subject(), e.Source(), e.DataContentType(), e.ID(), typ, subject)
	}
	env := dataOf(t, e)
	if env.Data.ID != subject {
		t.Errorf("reply data id %q, want %q", env.Data.ID, subject)
	}
	return env
}

// send posts e in binary or structured mode and returns the raw response,
// its body and the reply event read from it (nil if none).
func send(t *testing.T, url string, e event.Event, structured bool) (*http.Response, []byte, *event.Event) {
	t.Helper()
	ctx := context.Background()
	if structured {
		ctx = binding.WithForceStructured(ctx)
	}
	req, err := cehttp.NewHTTPRequestFromEvent(ctx, url, e)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte, *event.Event) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || (resp.Header.Get("Ce-Specversion") == "" && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/cloudevents")) {
		return resp, body, nil
	}
	reply, err := binding.ToEvent(context.Background(), cehttp.NewMessage(resp.Header, io.NopCloser(bytes.NewReader(body))))
	if err != nil {
		t.Fatalf("reply (%s, %q) is no CloudEvent: %v", resp.Header.Get("Content-Type"), body, err)
	}
	return resp, body, reply
}

// checkMode checks that resp is in the content mode asked for.
func checkMode(t *testing.T, resp *http.Response, structured bool) {
	t.Helper()
	ct := resp.Header.Get("Content-Type")
	if structured {
		if !strings.HasPrefix(ct, event.ApplicationCloudEventsJSON) || resp.Header.Get("Ce-Specversion") != "" {
			t.Errorf("structured request got a reply with Content-Type %q, Ce-Specversion %q", ct, resp.Header.Get("Ce-Specversion"))
		}
		return
	}
	if ct != event.ApplicationJSON || resp.Header.Get("Ce-Specversion") != "1.0" || resp.Header.Get("Ce-Type") == "" {
		t.Errorf("binary request got a reply with Content-Type %q, Ce-Specversion %q, Ce-Type %q",
			ct, resp.Header.Get("Ce-Specversion"), resp.Header.Get("Ce-Type"))
	}
}

// TestClientRoundTrip drives every request type with the sdk-go client, in
// binary and structured mode.
func TestClientRoundTrip(t *testing.T) {
	srv, _ := newServer(t, nil)
	c, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	for _, structured := range []bool{false, true} {
		t.Run(fmt.Sprintf("structured=%v", structured), func(t *testing.T) {
			ctx := context.Background()
			if structured {
				ctx = cloudevents.WithEncodingStructured(ctx)
			}
			id := fmt.Sprintf("orders/%v", structured)
			request := func(e event.Event) *event.Event {
				t.Helper()
				reply, res := c.Request(ctx, e)
				if !cloudevents.IsACK(res) {
					t.Fatalf("%s: %v", e.Type(), res)
				}
				return reply
			}

			acq := checkReply(t, request(newEvent(events.TypeAcquire, id, `{"ttl":"10s"}`)), events.TypeAcquired, id)
			if !acq.Success || acq.Data.State != 1 || acq.Data.Fence <= 0 || len(acq.Data.Owner) != 32 || acq.Data.TTLms != 10000 {
				t.Fatalf("acquired: %+v", acq)
			}
			held := checkReply(t, request(newEvent(events.TypeAcquire, id, "")), events.TypeRejected, id)
			if held.Success || held.Code != api.CodeHeld || held.Data.Owner != "" || held.Data.Fence != acq.Data.Fence {
				t.Fatalf("held: %+v", held)
			}
			ext := checkReply(t, request(newEvent(events.TypeHeartbeat, "", fmt.Sprintf(`{"id":%q,"owner":%q,"ttl":20000}`, id, acq.Data.Owner))), events.TypeExtended, id)
			if !ext.Success || ext.Data.Fence != acq.Data.Fence || ext.Data.Owner != acq.Data.Owner || ext.Data.TTLms != 20000 {
				t.Fatalf("extended: %+v", ext)
			}
			rel := checkReply(t, request(newEvent(events.TypeRelease, id, fmt.Sprintf(`{"owner":%q}`, acq.Data.Owner))), events.TypeReleased, id)
			if !rel.Success || rel.Data.State != 0 || rel.Data.Fence != acq.Data.Fence {
				t.Fatalf("released: %+v", rel)
			}
			// A retried release is idempotent (the lock layer's tombstone); a
			// stranger's is refused.
			again := checkReply(t, request(newEvent(events.TypeRelease, id, fmt.Sprintf(`{"owner":%q}`, acq.Data.Owner))), events.TypeReleased, id)
			if !again.Success || again.Data.Fence != acq.Data.Fence {
				t.Fatalf("second release: %+v", again)
			}
			stranger := checkReply(t, request(newEvent(events.TypeRelease, id, `{"owner":"stranger"}`)), events.TypeRejected, id)
			if stranger.Success || stranger.Code != api.CodeNotHeld || stranger.Data.Owner != "" {
				t.Fatalf("stranger's release: %+v", stranger)
			}
			beat := checkReply(t, request(newEvent(events.TypeHeartbeat, id, fmt.Sprintf(`{"owner":%q}`, acq.Data.Owner))), events.TypeRejected, id)
			if beat.Code != api.CodeNotHeld {
				t.Fatalf("late heartbeat: %+v", beat)
			}
			next := checkReply(t, request(newEvent(events.TypeAcquire, id, "")), events.TypeAcquired, id)
			if next.Data.Fence <= acq.Data.Fence {
				t.Fatalf("fence did not increase: %d then %d", acq.Data.Fence, next.Data.Fence)
			}
		})
	}
}

// TestContentMode checks on the raw HTTP response that a reply comes back
// in the request's content mode.
func TestContentMode(t *testing.T) {
	srv, _ := newServer(t, nil)
	for _, structured := range []bool{false, true} {
		for _, typ := range []string{events.TypeAcquire, events.TypeRelease} {
			id := fmt.Sprintf("mode/%v", structured)
			resp, body, reply := send(t, srv.URL+"/", newEvent(typ, id, `{"owner":"me"}`), structured)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s structured=%v: %d %s", typ, structured, resp.StatusCode, body)
			}
			checkMode(t, resp, structured)
			want := events.TypeAcquired
			if typ == events.TypeRelease {
				want = events.TypeReleased
			}
			env := checkReply(t, reply, want, id)
			if env.Data.Owner != "me" {
				t.Errorf("owner %q, want me", env.Data.Owner)
			}
			if structured {
				var raw map[string]any
				if err := json.Unmarshal(body, &raw); err != nil || raw["specversion"] != "1.0" || raw["type"] != want {
					t.Errorf("structured body %s (%v)", body, err)
				}
			}
		}
	}
}

func batchRequest(t *testing.T, url string, evs ...event.Event) *http.Request {
	t.Helper()
	req, err := cehttp.NewHTTPRequestFromEvents(context.Background(), url, evs)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestBatch(t *testing.T) {
	srv, _ := newServer(t, nil)
	_, body, held := send(t, srv.URL, newEvent(events.TypeAcquire, "batch/b", `{"owner":"other"}`), false)
	if held == nil {
		t.Fatalf("setup: %s", body)
	}
	req := batchRequest(t, srv.URL,
		newEvent(events.TypeAcquire, "batch/a", ""),
		newEvent(events.TypeAcquire, "batch/b", ""),
		newEvent(events.TypeAcquire, "", `{"id":"batch/c","ttl":"5s"}`),
	)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != event.ApplicationCloudEventsBatchJSON {
		t.Fatalf("batch: %d %q", resp.StatusCode, ct)
	}
	replies, err := cehttp.NewEventsFromHTTPResponse(resp)
	if err != nil || len(replies) != 3 {
		t.Fatalf("batch replies: %d, %v", len(replies), err)
	}
	a := checkReply(t, &replies[0], events.TypeAcquired, "batch/a")
	b := checkReply(t, &replies[1], events.TypeRejected, "batch/b")
	c := checkReply(t, &replies[2], events.TypeAcquired, "batch/c")
	if !a.Success || b.Code != api.CodeHeld || b.Data.Owner != "" || !c.Success || c.Data.TTLms != 5000 {
		t.Fatalf("batch: %+v %+v %+v", a, b, c)
	}
	if replies[0].ID() == replies[2].ID() {
		t.Error("replies share an id")
	}

	// An empty batch gets an empty batch.
	resp2, err := http.Post(srv.URL, event.ApplicationCloudEventsBatchJSON, strings.NewReader("[]"))
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusOK || strings.TrimSpace(string(b2)) != "[]" {
		t.Fatalf("empty batch: %d %s", resp2.StatusCode, b2)
	}
}

// TestBatchMalformed: one bad event makes the whole batch a 400 and
// nothing in it is carried out.
func TestBatchMalformed(t *testing.T) {
	srv, _ := newServer(t, nil)
	body := fmt.Sprintf(`[%s,{"specversion":"1.0","id":"x","source":"/s","type":"dev.candado.lock.acquire"}]`,
		mustJSON(t, newEvent(events.TypeAcquire, "batch/first", "")))
	resp, err := http.Post(srv.URL, event.ApplicationCloudEventsBatchJSON, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	env := readEnvelope(t, resp)
	if resp.StatusCode != http.StatusBadRequest || env.Code != api.CodeBadRequest || !strings.Contains(env.Error, "batch event 1") || !strings.Contains(env.Error, "no lock id") {
		t.Fatalf("malformed batch: %d %+v", resp.StatusCode, env)
	}
	// batch/first was not acquired.
	_, _, reply := send(t, srv.URL, newEvent(events.TypeAcquire, "batch/first", `{"owner":"x"}`), false)
	checkReply(t, reply, events.TypeAcquired, "batch/first")

	resp, err = http.Post(srv.URL, event.ApplicationCloudEventsBatchJSON, strings.NewReader(`{"not":"an array"}`))
	if err != nil {
		t.Fatal(err)
	}
	if env := readEnvelope(t, resp); resp.StatusCode != http.StatusBadRequest || env.Code != api.CodeBadRequest {
		t.Fatalf("object as batch: %d %+v", resp.StatusCode, env)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readEnvelope(t *testing.T, resp *http.Response) envelope {
	t.Helper()
	defer resp.Body.Close()
	var env envelope
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error answer has Content-Type %q: %s", ct, b)
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("answer %q: %v", b, err)
	}
	return env
}

// TestRedelivery: an acquire without an owner, delivered again (in turn or
// at once), is one lease with one fence and one owner.
func TestRedelivery(t *testing.T) {
	srv, _ := newServer(t, nil)
	for _, structured := range []bool{false, true} {
		id := fmt.Sprintf("redelivery/%v", structured)
		e := newEvent(events.TypeAcquire, id, "")
		_, _, r1 := send(t, srv.URL, e, structured)
		_, _, r2 := send(t, srv.URL, e, structured)
		a1 := checkReply(t, r1, events.TypeAcquired, id)
		a2 := checkReply(t, r2, events.TypeAcquired, id)
		if a1.Data.Owner == "" || a1.Data.Owner != a2.Data.Owner || a1.Data.Fence != a2.Data.Fence {
			t.Fatalf("sequential redelivery: %+v then %+v", a1, a2)
		}
		if public := events.DeriveOwner(events.OwnerKey("/candado", ""), source, e.ID()); a1.Data.Owner == public {
			t.Errorf("owner %q is computable from the event and the public source alone", a1.Data.Owner)
		}
		if r1.ID() == r2.ID() {
			t.Error("two replies share an id")
		}
		// Another event is another owner, and is refused.
		_, _, other := send(t, srv.URL, newEvent(events.TypeAcquire, id, ""), structured)
		checkReply(t, other, events.TypeRejected, id)
	}

	// The same event delivered 16 times at once: one lease.
	const n = 16
	e := newEvent(events.TypeAcquire, "redelivery/concurrent", "")
	envs := make([]envelope, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := cehttp.NewHTTPRequestFromEvent(context.Background(), srv.URL, e)
			if err != nil {
				t.Error(err)
				return
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			reply, err := cehttp.NewEventFromHTTPResponse(resp)
			if err != nil || reply.Type() != events.TypeAcquired {
				t.Errorf("delivery %d: %v %v", i, reply, err)
				return
			}
			_ = json.Unmarshal(reply.Data(), &envs[i])
		}()
	}
	wg.Wait()
	for i := range envs {
		if envs[i].Data.Fence != envs[0].Data.Fence || envs[i].Data.Owner != envs[0].Data.Owner || envs[i].Data.Owner == "" {
			t.Fatalf("concurrent deliveries disagree: %+v vs %+v", envs[i], envs[0])
		}
	}
	// The lock shows that one fence.
	resp, err := http.Get(srv.URL + "/locks/redelivery/concurrent")
	if err != nil {
		t.Fatal(err)
	}
	if env := readEnvelope(t, resp); env.Data.State != 1 || env.Data.Fence != envs[0].Data.Fence {
		t.Fatalf("inspect: %+v, want fence %d", env, envs[0].Data.Fence)
	}
}

// TestMalformed: malformed events are 4xx with the envelope and a clear
// error, and the server keeps serving.
func TestMalformed(t *testing.T) {
	srv, _ := newServer(t, nil)
	binary := func(hdr map[string]string, body string) func() *http.Request {
		return func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(body))
			base := map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "1", "Ce-Source": "/s", "Ce-Type": events.TypeAcquire, "Ce-Subject": "m", "Content-Type": "application/json"}
			for k, v := range hdr {
				base[k] = v
			}
			for k, v := range base {
				if v != "" {
					req.Header.Set(k, v)
				}
			}
			return req
		}
	}
	structured := func(body string) func() *http.Request {
		return func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(body))
			req.Header.Set("Content-Type", event.ApplicationCloudEventsJSON)
			return req
		}
	}
	big := `{"owner":"` + strings.Repeat("x", api.MaxBody) + `"}`
	cases := []struct {
		name   string
		req    func() *http.Request
		status int
		code   string
		want   string
	}{
		{"missing type", binary(map[string]string{"Ce-Type": ""}, ""), 400, api.CodeBadRequest, "no type"},
		{"unknown type", binary(map[string]string{"Ce-Type": "dev.candado.lock.steal"}, ""), 400, api.CodeBadRequest, "unknown CloudEvent type"},
		{"reply type", binary(map[string]string{"Ce-Type": events.TypeAcquired}, ""), 400, api.CodeBadRequest, "unknown CloudEvent type"},
		{"bad data json", binary(nil, `{"ttl":`), 400, api.CodeBadRequest, "JSON"},
		{"data not an object", binary(nil, `"hello"`), 400, api.CodeBadRequest, "JSON"},
		{"unknown parameter", binary(nil, `{"tll":"1s"}`), 400, api.CodeBadRequest, "tll"},
		{"missing lock id", binary(map[string]string{"Ce-Subject": ""}, `{"ttl":"1s"}`), 400, api.CodeBadRequest, "no lock id"},
		{"subject and data id differ", binary(nil, `{"id":"other"}`), 400, api.CodeBadRequest, "different locks"},
		{"bad lock id", binary(map[string]string{"Ce-Subject": "a//b"}, ""), 400, api.CodeBadRequest, "segment"},
		{"bad ttl", binary(nil, `{"ttl":"2h"}`), 400, api.CodeBadRequest, "maximum"},
		{"release without owner", binary(map[string]string{"Ce-Type": events.TypeRelease}, ""), 400, api.CodeBadRequest, "owner is required"},
		{"missing id", binary(map[string]string{"Ce-Id": ""}, ""), 400, api.CodeBadRequest, "id"},
		{"bad spec version", binary(map[string]string{"Ce-Specversion": "2.0"}, ""), 400, api.CodeBadRequest, "specversion"},
		{"old spec version", binary(map[string]string{"Ce-Specversion": "0.3"}, ""), 400, api.CodeBadRequest, "specversion"},
		{"not json data", binary(map[string]string{"Content-Type": "text/plain"}, "hi"), 400, api.CodeBadRequest, "datacontenttype"},
		{"oversize binary", binary(nil, big), 413, api.CodeTooLarge, "64 KiB"},
		{"structured bad json", structured(`{"specversion":`), 400, api.CodeBadRequest, "malformed CloudEvent"},
		{"structured spec version", structured(`{"specversion":"0.3","id":"1","source":"/s","type":"dev.candado.lock.acquire","subject":"m"}`), 400, api.CodeBadRequest, "specversion"},
		{"structured missing type", structured(`{"specversion":"1.0","id":"1","source":"/s","subject":"m"}`), 400, api.CodeBadRequest, "no type"},
		{"oversize structured", structured(`{"specversion":"1.0","id":"1","source":"/s","type":"dev.candado.lock.acquire","subject":"m","data":` + big + `}`), 413, api.CodeTooLarge, "64 KiB"},
		{"unknown format", func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader("<x/>"))
			req.Header.Set("Content-Type", "application/cloudevents+xml")
			return req
		}, 400, api.CodeBadRequest, "format"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.DefaultClient.Do(tc.req())
			if err != nil {
				t.Fatal(err)
			}
			env := readEnvelope(t, resp)
			if resp.StatusCode != tc.status || env.Code != tc.code || env.Success || !strings.Contains(env.Error, tc.want) {
				t.Fatalf("got %d %+v; want %d %s with %q", resp.StatusCode, env, tc.status, tc.code, tc.want)
			}
		})
	}
	// Still serving.
	resp, body, reply := send(t, srv.URL, newEvent(events.TypeAcquire, "m", ""), false)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after malformed events: %d %s", resp.StatusCode, body)
	}
	checkReply(t, reply, events.TypeAcquired, "m")
}

// TestUnavailable: backend trouble is a 503 with Retry-After, for single
// events and for a whole batch.
func TestUnavailable(t *testing.T) {
	srv, m := newServer(t, nil)
	m.Close()
	for _, structured := range []bool{false, true} {
		resp, body, _ := send(t, srv.URL, newEvent(events.TypeAcquire, "down", ""), structured)
		var env envelope
		_ = json.Unmarshal(body, &env)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || env.Code != api.CodeUnavailable || env.Data.ID != "down" {
			t.Fatalf("structured=%v: %d %q %s", structured, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	resp, err := http.DefaultClient.Do(batchRequest(t, srv.URL, newEvent(events.TypeAcquire, "down", ""), newEvent(events.TypeAcquire, "down2", "")))
	if err != nil {
		t.Fatal(err)
	}
	env := readEnvelope(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || env.Code != api.CodeUnavailable || !strings.Contains(env.Error, "batch event 0") {
		t.Fatalf("batch: %d %+v", resp.StatusCode, env)
	}
}

// TestRouting: CloudEvents only on "/", behind auth; other requests are the
// HTTP routes'.
func TestRouting(t *testing.T) {
	srv, _ := newServer(t, func(c *function.Config) { c.AuthToken = "s3cret"; c.EventSource = "/custom" })
	e := newEvent(events.TypeAcquire, "r", "")
	req, _ := cehttp.NewHTTPRequestFromEvent(context.Background(), srv.URL, e)
	resp, _, _ := do(t, req)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("event without token: %d", resp.StatusCode)
	}
	req, _ = cehttp.NewHTTPRequestFromEvent(context.Background(), srv.URL, e)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, body, reply := do(t, req)
	if resp.StatusCode != http.StatusOK || reply == nil || reply.Source() != "/custom" || reply.Type() != events.TypeAcquired {
		t.Fatalf("event with token: %d %s", resp.StatusCode, body)
	}
	// A CloudEvent header on a lock route is a plain HTTP call.
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/acquire/r2", nil)
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, body, _ = do(t, req)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Ce-Type") != "" || !strings.Contains(string(body), `"success":true`) {
		t.Fatalf("HTTP route with Ce- header: %d %s", resp.StatusCode, body)
	}
	// A plain POST to / is no route; a GET with CloudEvent headers is 405.
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer s3cret")
	if resp, _, _ = do(t, req); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("plain POST /: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	req.Header.Set("Ce-Specversion", "1.0")
	if resp, _, _ = do(t, req); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
		t.Fatalf("GET / with Ce-Specversion: %d %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestIsCloudEvent(t *testing.T) {
	cases := []struct {
		path string
		hdr  map[string]string
		want bool
	}{
		{"/", map[string]string{"Ce-Specversion": "1.0"}, true},
		{"/", map[string]string{"Content-Type": "application/cloudevents+json; charset=utf-8"}, true},
		{"/", map[string]string{"Content-Type": "Application/CloudEvents-Batch+JSON"}, true},
		{"/", map[string]string{"Content-Type": "application/json"}, false},
		{"/", nil, false},
		{"/acquire/x", map[string]string{"Ce-Specversion": "1.0"}, false},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(http.MethodPost, tc.path, nil)
		for k, v := range tc.hdr {
			r.Header.Set(k, v)
		}
		if got := events.IsCloudEvent(r); got != tc.want {
			t.Errorf("IsCloudEvent(%s %v) = %v, want %v", tc.path, tc.hdr, got, tc.want)
		}
	}
}

func TestDeriveOwner(t *testing.T) {
	key := events.OwnerKey("/candado", "")
	a := events.DeriveOwner(key, "a", "bc")
	if len(a) != 32 || strings.Trim(a, "0123456789abcdef") != "" {
		t.Fatalf("owner %q is not 128 bits of hex", a)
	}
	if a != events.DeriveOwner(key, "a", "bc") {
		t.Fatal("not deterministic")
	}
	if a == events.DeriveOwner(key, "ab", "c") || a == events.DeriveOwner(key, "", "abc") {
		t.Fatal("source/id boundary is ambiguous")
	}
	if a == events.DeriveOwner(events.OwnerKey("/other", ""), "a", "bc") || a == events.DeriveOwner(events.OwnerKey("/candado", "k"), "a", "bc") {
		t.Fatal("owner does not depend on the deployment key")
	}
	if string(events.OwnerKey("/candado", "")) != string(events.OwnerKey("/candado", "")) {
		t.Fatal("key is not fixed")
	}
}
