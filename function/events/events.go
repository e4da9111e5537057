// Package events maps CloudEvents 1.0 over HTTP onto Candado's lock
// operations: the second thin mapping next to httpapi, over the same
// api.Limits.Resolve and api.Request.Do, so both share one set of semantics.
//
// # Requests
//
// A CloudEvent is a POST to "/" in binary mode (a Ce-Specversion header),
// structured mode (Content-Type application/cloudevents+json) or batch mode
// (application/cloudevents-batch+json). Its type names the operation
// (TypeAcquire, TypeRelease, TypeHeartbeat); its data is a JSON object with
// the parameters of the HTTP call (owner, ttl, wait, holder, limit, mode,
// lock_delay, and optionally id) under the same rules (api.ParseParams); the
// lock id is the event's subject or "id" in its data (both given and
// different is a 400). The whole HTTP body is capped at api.MaxBody.
//
// # Replies
//
// The reply comes back in the same HTTP response and content mode: binary in,
// binary out; structured in, structured out; a batch in, a batch of
// structured replies out, in the order of the requests. A reply's type is
// TypeAcquired, TypeReleased or TypeExtended on success and TypeRejected on a
// refusal (held, not_held, limit_mismatch), always with HTTP 200 so that a
// broker does not retry a refusal; its subject is the lock id, its data the
// api.Envelope of the HTTP routes (application/json), its source
// Handler.Source and its id a fresh UUID.
//
// What cannot be answered with an event is answered with the bare JSON
// envelope, as on the HTTP routes: a malformed event (no or unknown type,
// bad data, no lock id, a spec version other than 1.0, an invalid attribute)
// is a 400 bad_request, a parameter this CANDADO_REDIS_MODE cannot honour a
// 400 unsupported, a body over api.MaxBody a 413 too_large, and backend
// trouble a 503 unavailable with Retry-After: 1, which a broker retries.
//
// # Batches
//
// A batch is all or nothing at the HTTP level, since a broker can only
// retry a whole delivery:
//   - every event is decoded before any is carried out; one malformed event
//     makes the whole batch a 400 (or 413) naming the event's index, and
//     nothing is carried out;
//   - events are then carried out one after the other, in order; a refusal
//     is a rejected event in its place in the batch;
//   - the first event that meets backend trouble stops the batch: the answer
//     is a 503 for the whole batch, naming the event's index, so the broker
//     redelivers it. Events before it have taken effect; on redelivery an
//     acquire without an explicit owner is idempotent (see below), a
//     heartbeat extends again, and a release repeated by its owner succeeds
//     again while the lock layer remembers it (its tombstone), else it
//     answers rejected (not_held).
//
// An empty batch ([]) is answered with an empty batch.
//
// # Derived owners
//
// An acquire event whose data names no owner gets one derived from the
// event's source and id, so a redelivered event (at-least-once delivery,
// possibly to another replica) is an idempotent re-acquire by the same
// owner: it keeps the fence and gets the same answer. With Handler.Owners
// set (the service always sets it) the derivation is access.DeriveOwner:
// HMAC-SHA256 keyed by a secret every replica shares, over the sender's
// identity, the source and the id, so nobody without the key can compute it
// and two senders reusing one source and id are two owners. Without it, the
// derivation is DeriveOwner keyed by OwnerKey, a fixed function of
// Handler.Source and Handler.OwnerSecret. The derived owner is returned in
// data.owner like a minted one.
//
// # Access
//
// Authentication happens before the handler (access.Middleware), which puts
// the sender's identity in the request's context. With Handler.Access set,
// each event is checked against that identity's rights: its type's verb on
// its lock id. An event outside them is a 403 forbidden; in a batch, the
// whole batch is refused before anything is carried out, naming the event.
// Binding owners to identities and capping waiters per identity happen in
// Handler.Locks (see access.OwnerKey.Bind and access.Waiters.Wrap).
package events

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"handler/function/function/access"
	"handler/function/function/api"
	"handler/function/function/lock"
)

// Request event types.
const (
	TypeAcquire   = "dev.candado.lock.acquire"
	TypeRelease   = "dev.candado.lock.release"
	TypeHeartbeat = "dev.candado.lock.heartbeat"
)

// Reply event types.
const (
	TypeAcquired = "dev.candado.lock.acquired"
	TypeReleased = "dev.candado.lock.released"
	TypeExtended = "dev.candado.lock.extended"
	TypeRejected = "dev.candado.lock.rejected"
)

// opOf is the operation of each request type.
func opOf(typ string) (api.Op, bool) {
	switch typ {
	case TypeAcquire:
		return api.Acquire, true
	case TypeRelease:
		return api.Release, true
	case TypeHeartbeat:
		return api.Heartbeat, true
	}
	return "", false
}

// successType is the reply type of a successful op.
func successType(op api.Op) string {
	switch op {
	case api.Acquire:
		return TypeAcquired
	case api.Release:
		return TypeReleased
	}
	return TypeExtended
}

// IsCloudEvent reports whether r is meant for the CloudEvents mapping: a
// request to "/" marked as a CloudEvent by its headers (Ce-Specversion, or a
// Content-Type of application/cloudevents...). It reads only headers.
func IsCloudEvent(r *http.Request) bool {
	if r.URL.Path != "/" {
		return false
	}
	if len(r.Header.Values("Ce-Specversion")) > 0 {
		return true
	}
	ct := strings.TrimSpace(r.Header.Get("Content-Type"))
	const prefix = "application/cloudevents"
	return len(ct) >= len(prefix) && strings.EqualFold(ct[:len(prefix)], prefix)
}

// Handler serves CloudEvents. Authentication and the choice between it and
// the HTTP routes happen before it (see function.Service); the rights of
// each event are checked here.
type Handler struct {
	Locks  api.Locks
	Limits api.Limits
	// Source is the source attribute of reply events (CANDADO_EVENT_SOURCE).
	Source string
	// OwnerSecret, when set, is mixed into the key of derived owners, so that
	// only this deployment can compute them. Empty keys them by Source alone:
	// then anyone who knows an event's source and id can compute its owner.
	// Changing it (or Source) changes the owners of events redelivered later.
	// Owners, when set, replaces it.
	OwnerSecret string
	// Owners, when set, is the secret key of derived owners, which then also
	// bind the sender's identity (see access.DeriveOwner). Binding the
	// owners an event names to its sender is Locks' job (access.OwnerKey.Bind).
	Owners *access.OwnerKey
	// Access, when set, checks each event's lock id against its sender's
	// rights (the identity access.Middleware put in the request's context).
	Access *access.Authorizer

	keyOnce sync.Once
	key     []byte
}

// ServeHTTP answers one CloudEvent, or a batch of them, with reply events in
// the same content mode.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		api.Write(w, http.StatusMethodNotAllowed, api.Envelope{
			Error: fmt.Sprintf("method %s is not allowed for CloudEvents; use POST", r.Method),
			Code:  api.CodeMethodNotAllowed,
		})
		return
	}
	body, err := readBody(r)
	if err != nil {
		h.answer(api.Request{}, lock.Lease{}, err).writeError(w)
		return
	}
	ctx := r.Context()
	msg := newHTTPMessage(r.Header, body)
	switch enc := msg.ReadEncoding(); enc {
	case binding.EncodingBinary, binding.EncodingStructured:
		a := h.single(ctx, msg)
		if a.reply == nil {
			a.writeError(w)
			return
		}
		if enc == binding.EncodingStructured {
			ctx = binding.WithForceStructured(ctx)
		} else {
			ctx = binding.WithForceBinary(ctx)
		}
		w.Header().Set("Cache-Control", "no-store")
		_ = writeResponse(ctx, binding.ToMessage(a.reply), http.StatusOK, w) // the client is gone
	case binding.EncodingBatch:
		h.batch(ctx, w, body)
	default:
		h.answer(api.Request{}, lock.Lease{}, unknownEncoding(r.Header)).writeError(w)
	}
}

// single answers one binary or structured event.
func (h *Handler) single(ctx context.Context, msg binding.MessageReader) answer {
	e, err := binding.ToEvent(ctx, msg)
	if err != nil {
		return h.answer(api.Request{}, lock.Lease{}, fmt.Errorf("%w: malformed CloudEvent: %w", lock.ErrInvalid, err))
	}
	req, err := h.sender(ctx).decode(*e)
	var lease lock.Lease
	if err == nil {
		lease, err = req.Do(ctx, h.Locks)
	}
	return h.answer(req, lease, err)
}

// batch answers a batch: all events decoded first, then carried out in
// order; see the package documentation.
func (h *Handler) batch(ctx context.Context, w http.ResponseWriter, body []byte) {
	var evs []event.Event
	if err := json.Unmarshal(body, &evs); err != nil {
		h.answer(api.Request{}, lock.Lease{}, fmt.Errorf("%w: batch is not a JSON array of CloudEvents: %w", lock.ErrInvalid, err)).writeError(w)
		return
	}
	s := h.sender(ctx)
	reqs := make([]api.Request, len(evs))
	for i, e := range evs {
		req, err := s.decode(e)
		if err != nil {
			h.answer(req, lock.Lease{}, err).inBatch(i).writeError(w)
			return
		}
		reqs[i] = req
	}
	replies := make([]*event.Event, len(reqs))
	for i, req := range reqs {
		lease, err := req.Do(ctx, h.Locks)
		a := h.answer(req, lease, err)
		if a.reply == nil {
			a.inBatch(i).writeError(w)
			return
		}
		replies[i] = a.reply
	}
	out, err := json.Marshal(replies)
	if err != nil {
		h.answer(api.Request{}, lock.Lease{}, fmt.Errorf("encoding replies: %w", err)).writeError(w)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", event.ApplicationCloudEventsBatchJSON)
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out) // the client is gone
}

// answer is the reply to one event: a reply event with HTTP 200, or, when
// no event can answer it, status and env to write as they are.
type answer struct {
	status int
	env    api.Envelope
	reply  *event.Event
}

// answer is the one place where an outcome becomes an HTTP status and a
// reply type: success and refusals (held, not_held, limit_mismatch) are
// reply events with a 200; everything else is the bare envelope with the
// HTTP routes' status (400 bad_request or unsupported, 413, 503).
func (h *Handler) answer(req api.Request, lease lock.Lease, err error) answer {
	id := api.EchoID(req.ID)
	env := req.Envelope(id, lease, err)
	var typ string
	switch env.Code {
	case "":
		typ = successType(req.Op)
	case api.CodeHeld, api.CodeNotHeld, api.CodeLimitMismatch:
		typ = TypeRejected
	default:
		return answer{status: api.StatusOf(env.Code), env: env}
	}
	reply := event.New()
	reply.SetID(uuid.NewString())
	reply.SetSource(h.Source)
	reply.SetType(typ)
	reply.SetSubject(id)
	_ = reply.SetData(event.ApplicationJSON, env) // an Envelope always encodes
	return answer{status: http.StatusOK, env: env, reply: &reply}
}

// inBatch names the batch position i in an error answer.
func (a answer) inBatch(i int) answer {
	a.env.Error = fmt.Sprintf("batch event %d: %s", i, a.env.Error)
	return a
}

func (a answer) writeError(w http.ResponseWriter) {
	api.Write(w, a.status, a.env)
}

// Decode maps a CloudEvent onto the lock request it asks for, validated and
// with defaults applied by lim; key derives the owner of an acquire that
// names none (see OwnerKey). On error the Request carries what was parsed,
// the lock id in particular, and the error wraps lock.ErrInvalid or
// api.ErrTooLarge. It does no I/O.
func Decode(e event.Event, lim api.Limits, key []byte) (api.Request, error) {
	return decode(e, lim, func(source, id string) string { return DeriveOwner(key, source, id) })
}

// decode is Decode with derive making the owner of an acquire that names
// none from the event's source and id.
func decode(e event.Event, lim api.Limits, derive func(source, id string) string) (api.Request, error) {
	typ := e.Type()
	if typ == "" {
		return api.Request{}, fmt.Errorf("%w: CloudEvent has no type; want %s, %s or %s", lock.ErrInvalid, TypeAcquire, TypeRelease, TypeHeartbeat)
	}
	op, ok := opOf(typ)
	if !ok {
		return api.Request{}, fmt.Errorf("%w: unknown CloudEvent type %q; want %s, %s or %s", lock.ErrInvalid, typ, TypeAcquire, TypeRelease, TypeHeartbeat)
	}
	req := api.Request{Op: op}
	if v := e.SpecVersion(); v != event.CloudEventsVersionV1 {
		return req, fmt.Errorf("%w: CloudEvents specversion %q is not supported; want %s", lock.ErrInvalid, v, event.CloudEventsVersionV1)
	}
	if err := e.Validate(); err != nil {
		return req, fmt.Errorf("%w: invalid CloudEvent: %s", lock.ErrInvalid, validationMessage(err))
	}
	if !isJSON(e.DataContentType()) {
		return req, fmt.Errorf("%w: datacontenttype %q is not supported; send the parameters as application/json", lock.ErrInvalid, e.DataContentType())
	}
	data := e.Data()
	if len(data) > api.MaxBody {
		return req, api.ErrTooLarge
	}
	p, err := api.ParseParams(data)
	if err != nil {
		return req, fmt.Errorf("event data: %w", err)
	}
	subject := e.Subject()
	switch {
	case subject != "" && p.ID != "" && subject != p.ID:
		return req, fmt.Errorf("%w: subject %q and data id %q name different locks", lock.ErrInvalid, subject, p.ID)
	case subject != "":
		p.ID = subject
	case p.ID == "":
		return req, fmt.Errorf("%w: no lock id: set the event's subject or \"id\" in its data", lock.ErrInvalid)
	}
	if op == api.Acquire && p.Owner == "" {
		p.Owner = derive(e.Source(), e.ID())
	}
	return lim.Resolve(op, p)
}

// ownerDomain separates derived-owner keys from any other use of the same
// configuration values. Changing it changes every derived owner.
const ownerDomain = "candado/cloudevents/derived-owner/v1"

// OwnerKey is the HMAC key of derived owners for a deployment: a fixed
// function of its event source and optional secret, so every replica derives
// the same owner for a redelivered event.
func OwnerKey(source, secret string) []byte {
	k := sha256.New()
	writeLP(k, ownerDomain)
	writeLP(k, source)
	writeLP(k, secret)
	return k.Sum(nil)
}

// ownerKey is OwnerKey of h's configuration, computed on first use.
func (h *Handler) ownerKey() []byte {
	h.keyOnce.Do(func() { h.key = OwnerKey(h.Source, h.OwnerSecret) })
	return h.key
}

// DeriveOwner is the owner of an acquire event without one: the hex of
// HMAC-SHA256(key, len(source) || source || len(id) || id), truncated to 128
// bits (32 hex digits). The lengths (8 bytes, big-endian) keep distinct
// (source, id) pairs from sharing an input, since ("a", "bc") and ("ab",
// "c") concatenate alike.
func DeriveOwner(key []byte, source, id string) string {
	m := hmac.New(sha256.New, key)
	writeLP(m, source)
	writeLP(m, id)
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// writeLP writes s prefixed with its length.
func writeLP(w io.Writer, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	_, _ = w.Write(n[:])        // hash writes never fail
	_, _ = io.WriteString(w, s) // hash writes never fail
}

// isJSON reports whether a datacontenttype is JSON; an absent one is taken
// as JSON.
func isJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "" || mt == event.ApplicationJSON || mt == event.TextJSON || strings.HasSuffix(mt, "+json")
}

// readBody reads the whole body, up to api.MaxBody.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > api.MaxBody {
		return nil, api.ErrTooLarge
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, api.MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading body: %w", lock.ErrInvalid, err)
	}
	if len(b) > api.MaxBody {
		return nil, api.ErrTooLarge
	}
	return b, nil
}

// unknownEncoding explains why a request marked as a CloudEvent is none
// the SDK can read.
func unknownEncoding(hd http.Header) error {
	if v := hd.Values("Ce-Specversion"); len(v) > 0 {
		return fmt.Errorf("%w: CloudEvents specversion %q is not supported; want %s", lock.ErrInvalid, v[0], event.CloudEventsVersionV1)
	}
	return fmt.Errorf("%w: Content-Type %q is not a supported CloudEvents format; use %s or %s",
		lock.ErrInvalid, hd.Get("Content-Type"), event.ApplicationCloudEventsJSON, event.ApplicationCloudEventsBatchJSON)
}

// validationMessage renders an SDK validation error on one line, in a
// stable order.
func validationMessage(err error) string {
	var ve event.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	parts := make([]string, 0, len(ve))
	for k, v := range ve {
		parts = append(parts, k+": "+v.Error())
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}
