package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"handler/function/function/api"
	"handler/function/function/events"
	"handler/function/function/lock"
)

var decodeLimits = api.Limits{DefaultTTL: 30 * time.Second, MaxTTL: time.Hour, MaxWait: time.Minute}

// The event data takes holder, limit, mode and lock_delay as the HTTP
// routes do.
func TestDecodeAcquireParameters(t *testing.T) {
	key := events.OwnerKey("/candado", "")
	for data, want := range map[string]api.Request{
		`{"holder":"w-3 pid 9","limit":3,"lock_delay":1500}`: {Holder: "w-3 pid 9", Limit: 3, LockDelay: 1500 * time.Millisecond},
		`{"mode":"shared","lock_delay":"2s"}`:                {Mode: lock.Shared, LockDelay: 2 * time.Second},
		`{"mode":"exclusive","limit":1000,"holder":null}`:    {Mode: lock.Exclusive, Limit: 1000},
	} {
		req, err := events.Decode(newEvent(events.TypeAcquire, "pool", data), decodeLimits, key)
		if err != nil {
			t.Errorf("%s: %v", data, err)
			continue
		}
		if req.Holder != want.Holder || req.Limit != want.Limit || req.Mode != want.Mode || req.LockDelay != want.LockDelay {
			t.Errorf("%s: %+v, want %+v", data, req, want)
		}
	}
}

func TestDecodeRefusesBadAcquireParameters(t *testing.T) {
	key := events.OwnerKey("/candado", "")
	for _, tc := range []struct{ typ, data, want string }{
		{events.TypeAcquire, `{"limit":0}`, "limit must be a whole number 1-1000"},
		{events.TypeAcquire, `{"limit":"2"}`, "limit must be a whole number"},
		{events.TypeAcquire, `{"lock_delay":"3h"}`, "over the maximum"},
		{events.TypeAcquire, `{"mode":"shared","limit":4}`, "a shared acquire takes no limit"},
		{events.TypeAcquire, `{"holder":"\u00e9"}`, "printable ASCII"},
		{events.TypeAcquire, `{"lockDelay":"1s"}`, "lockDelay"},
		{events.TypeRelease, `{"owner":"me","holder":"w"}`, "holder applies only to acquire"},
		{events.TypeHeartbeat, `{"owner":"me","limit":2}`, "limit applies only to acquire"},
		{events.TypeHeartbeat, `{"owner":"me","lock_delay":"1s"}`, "lock_delay applies only to acquire"},
	} {
		_, err := events.Decode(newEvent(tc.typ, "pool", tc.data), decodeLimits, key)
		if !errors.Is(err, lock.ErrInvalid) || api.CodeOf(err) != api.CodeBadRequest || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: %v; want a bad request saying %q", tc.typ, tc.data, err, tc.want)
		}
	}
}

// refusingLocks grants "ok", refuses "pool" with limit_mismatch and
// "quorum" as a mode that cannot honour the request.
type refusingLocks struct{ api.Locks }

func (refusingLocks) Acquire(_ context.Context, req lock.AcquireRequest) (lock.Lease, error) {
	switch req.ID {
	case "pool":
		return lock.Lease{ID: req.ID, Held: true, Fence: 5, TTL: time.Second, Mode: lock.Exclusive, Limit: 2, Holders: 2,
				Leases: []lock.LeaseInfo{{Fence: 4, TTL: time.Second, Holder: "a", Mode: lock.Exclusive}, {Fence: 5, TTL: time.Second, Holder: "b", Mode: lock.Exclusive}}},
			fmt.Errorf("%w: held with limit 2", lock.ErrLimitMismatch)
	case "quorum":
		return lock.Lease{ID: req.ID}, fmt.Errorf("%w: limit %d", lock.ErrModeCannot, req.Limit)
	}
	return lock.Lease{ID: req.ID, Held: true, Owner: req.Owner, Fence: 1, TTL: req.TTL, Holder: req.Holder, Mode: lock.Exclusive, Limit: req.Limit, Holders: 1}, nil
}

// A limit mismatch is a refusal, answered with a rejected event (a broker
// must not retry it); what the mode cannot do is a bare 400 unsupported.
func TestIssue15RefusalsAsEvents(t *testing.T) {
	srv := httptest.NewServer(&events.Handler{Locks: refusingLocks{}, Limits: decodeLimits, Source: "/candado"})
	t.Cleanup(srv.Close)
	for _, structured := range []bool{false, true} {
		resp, body, reply := send(t, srv.URL, newEvent(events.TypeAcquire, "pool", `{"limit":3}`), structured)
		if resp.StatusCode != 200 || reply == nil || reply.Type() != events.TypeRejected {
			t.Fatalf("limit mismatch (structured %v): %d %s", structured, resp.StatusCode, body)
		}
		var env struct {
			Code  string `json:"code"`
			Error string `json:"error"`
			Data  struct {
				Limit   int              `json:"limit"`
				Holders int              `json:"holders"`
				Leases  []map[string]any `json:"leases"`
			} `json:"data"`
		}
		if err := json.Unmarshal(reply.Data(), &env); err != nil {
			t.Fatal(err)
		}
		if env.Code != api.CodeLimitMismatch || !strings.Contains(env.Error, "held with limit 2") ||
			env.Data.Limit != 2 || env.Data.Holders != 2 || len(env.Data.Leases) != 2 || env.Data.Leases[1]["holder"] != "b" {
			t.Errorf("limit mismatch reply data %s", reply.Data())
		}

		resp, body, reply = send(t, srv.URL, newEvent(events.TypeAcquire, "quorum", `{"limit":3}`), structured)
		if resp.StatusCode != 400 || reply != nil {
			t.Fatalf("unsupported (structured %v): %d %s, reply %v", structured, resp.StatusCode, body, reply)
		}
		var bare api.Envelope
		if err := json.Unmarshal(body, &bare); err != nil || bare.Code != api.CodeUnsupported || !strings.Contains(bare.Error, "not supported in this CANDADO_REDIS_MODE: limit 3") {
			t.Errorf("unsupported: %s (%v)", body, err)
		}
	}

	resp, body, reply := send(t, srv.URL, newEvent(events.TypeAcquire, "ok", `{"holder":"w-1","limit":4}`), false)
	if resp.StatusCode != 200 || reply == nil || reply.Type() != events.TypeAcquired {
		t.Fatalf("grant: %d %s", resp.StatusCode, body)
	}
	var granted struct {
		Data struct {
			Holder  string `json:"holder"`
			Limit   int    `json:"limit"`
			Holders int    `json:"holders"`
		} `json:"data"`
	}
	if err := json.Unmarshal(reply.Data(), &granted); err != nil || granted.Data.Holder != "w-1" || granted.Data.Limit != 4 || granted.Data.Holders != 1 {
		t.Errorf("granted reply data %s (%v)", reply.Data(), err)
	}
}

// A batch with a limit mismatch in it is carried out whole: the refusal is
// a rejected event in its place.
func TestBatchWithLimitMismatch(t *testing.T) {
	srv := httptest.NewServer(&events.Handler{Locks: refusingLocks{}, Limits: decodeLimits, Source: "/candado"})
	t.Cleanup(srv.Close)
	req := batchRequest(t, srv.URL, newEvent(events.TypeAcquire, "ok", `{"limit":2}`), newEvent(events.TypeAcquire, "pool", `{"limit":3}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	replies, err := cehttp.NewEventsFromHTTPResponse(resp)
	if err != nil || resp.StatusCode != 200 || len(replies) != 2 {
		t.Fatalf("%d, %d replies (%v)", resp.StatusCode, len(replies), err)
	}
	if replies[0].Type() != events.TypeAcquired || replies[1].Type() != events.TypeRejected {
		t.Errorf("reply types %s, %s", replies[0].Type(), replies[1].Type())
	}
}
