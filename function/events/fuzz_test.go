package events_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"handler/function/function/api"
	"handler/function/function/events"
	"handler/function/function/lock"
)

// FuzzEventToRequest checks the CloudEvent to lock request mapping: it never
// panics, every request it returns is one the lock layer accepts and within
// the limits (holder, limit, mode and lock_delay on acquires only), and
// every error is a 400 or 413 (never a 503 or a success).
func FuzzEventToRequest(f *testing.F) {
	f.Add("1.0", events.TypeAcquire, "/src", "e1", "orders/42", "application/json", []byte(`{"ttl":"30s","wait":"1s"}`))
	f.Add("1.0", events.TypeAcquire, "/src", "e2", "", "", []byte(`{"id":"orders/42","owner":"me","ttl":30000}`))
	f.Add("1.0", events.TypeRelease, "/src", "e3", "a", "application/json; charset=utf-8", []byte(`{"owner":"me"}`))
	f.Add("1.0", events.TypeHeartbeat, "urn:x", "e4", "a/b/c", "application/cloudevents+json", []byte(`{"owner":"me","ttl":"1ms"}`))
	f.Add("1.0", events.TypeRelease, "/src", "e5", "a", "", []byte(`{"owner":"me","ttl":"1s"}`))
	f.Add("1.0", events.TypeAcquire, "/src", "e6", "x", "text/plain", []byte("hello"))
	f.Add("1.0", events.TypeAcquire, "/src", "e7", "x", "", []byte(`{"id":"y"}`))
	f.Add("1.0", events.TypeAcquire, "/src", "e8", "../x", "", []byte(nil))
	f.Add("1.0", events.TypeAcquire, "", "", "x", "", []byte(nil))
	f.Add("0.3", events.TypeAcquire, "/src", "e9", "x", "", []byte(nil))
	f.Add("1.0", "dev.candado.lock.steal", "/src", "e10", "x", "", []byte(`{}`))
	f.Add("1.0", "", "/src", "e11", "x", "", []byte(`{}`))
	f.Add("1.0", events.TypeAcquire, "/src", "e12", "x", "", []byte(`{"ttl":"99999999999999999999","wait":-1}`))
	f.Add("1.0", events.TypeAcquire, "/src", "e13", "x", "", []byte(`{"ttl":"2h"} {}`))
	f.Add("1.0", events.TypeHeartbeat, "/src", "e14", "x", "", []byte(`{"owner":"`+strings.Repeat("o", 129)+`"}`))
	f.Add("1.0", events.TypeAcquire, "/src", "e15", "pool", "", []byte(`{"holder":"w-3 pid 42","limit":3,"lock_delay":"2s"}`))
	f.Add("1.0", events.TypeAcquire, "/src", "e16", "rw", "", []byte(`{"mode":"shared","lock_delay":1500}`))
	f.Add("1.0", events.TypeAcquire, "/src", "e17", "rw", "", []byte(`{"mode":"shared","limit":2}`))
	f.Add("1.0", events.TypeAcquire, "/src", "e18", "pool", "", []byte(`{"limit":"3","holder":"\n"}`))
	f.Add("1.0", events.TypeAcquire, "/src", "e19", "pool", "", []byte(`{"limit":1001,"lock_delay":"2h"}`))
	f.Add("1.0", events.TypeRelease, "/src", "e20", "pool", "", []byte(`{"owner":"me","limit":3}`))
	f.Add("1.0", events.TypeHeartbeat, "/src", "e21", "pool", "", []byte(`{"owner":"me","holder":"w"}`))

	lim := api.Limits{DefaultTTL: 30 * time.Second, MaxTTL: time.Hour, MaxWait: time.Minute}
	key := events.OwnerKey("/candado", "")
	f.Fuzz(func(t *testing.T, specversion, typ, source, id, subject, contentType string, data []byte) {
		e := event.New()
		e.SetSpecVersion(specversion)
		e.SetType(typ)
		e.SetSource(source)
		e.SetID(id)
		if subject != "" {
			e.SetSubject(subject)
		}
		if contentType != "" {
			e.SetDataContentType(contentType)
		}
		if len(data) > 0 {
			e.DataEncoded = data
		}

		req, err := events.Decode(e, lim, key)
		if err != nil {
			if !errors.Is(err, lock.ErrInvalid) && !errors.Is(err, api.ErrTooLarge) {
				t.Fatalf("error %v is neither invalid nor too large", err)
			}
			if code := api.CodeOf(err); code != api.CodeBadRequest && code != api.CodeTooLarge {
				t.Fatalf("error %v has code %q", err, code)
			}
			return
		}
		if err := lock.ValidateID(req.ID); err != nil {
			t.Fatalf("request id: %v", err)
		}
		if err := lock.ValidateOwner(req.Owner); err != nil {
			t.Fatalf("request owner: %v", err)
		}
		if req.ID != e.Subject() && e.Subject() != "" {
			t.Fatalf("id %q is not the subject %q", req.ID, e.Subject())
		}
		switch req.Op {
		case api.Acquire, api.Heartbeat:
			if req.TTL < time.Millisecond || req.TTL > lim.MaxTTL {
				t.Fatalf("ttl %s out of bounds", req.TTL)
			}
		case api.Release:
			if req.TTL != 0 {
				t.Fatalf("release with ttl %s", req.TTL)
			}
		default:
			t.Fatalf("unknown op %q", req.Op)
		}
		if req.Wait < 0 || req.Wait > lim.MaxWait || (req.Op != api.Acquire && req.Wait != 0) {
			t.Fatalf("wait %s out of bounds for %s", req.Wait, req.Op)
		}
		ar := lock.AcquireRequest{Holder: req.Holder, Limit: req.Limit, Mode: req.Mode, LockDelay: req.LockDelay}
		if req.Op != api.Acquire && ar != (lock.AcquireRequest{}) {
			t.Fatalf("%s carries acquire parameters %+v", req.Op, ar)
		}
		if err := lock.ValidateAcquire(ar); err != nil || req.LockDelay > lim.MaxTTL {
			t.Fatalf("accepted %+v: %v", ar, err)
		}
		if again, err := events.Decode(e, lim, key); err != nil || again != req {
			t.Fatalf("not deterministic: %+v then %+v, %v", req, again, err)
		}
	})
}
