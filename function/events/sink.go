package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"handler/function/function/api"
	"handler/function/function/lock"
)

// Sink tuning.
const (
	// SinkQueue is how many notifications wait for the sender; when the
	// queue is full, Notify drops the notification and counts it.
	SinkQueue = 1024
	// SinkTimeout bounds each POST to the sink.
	SinkTimeout = 2 * time.Second
	// sinkLogEvery is the least time between two log lines about failed or
	// dropped notifications.
	sinkLogEvery = 10 * time.Second
)

// Sink emits notifications of lock changes to an observer's URL
// (CANDADO_EVENT_SINK) as binary-mode CloudEvents, POSTed one by one:
//
//   - TypeAcquired after every granted acquire, a re-acquire by the holder
//     included (it keeps the fence; observers tell it by the fence);
//   - TypeReleased after every successful release, a release repeated by its
//     owner included (the lock layer answers it from its tombstone).
//
// Each event's subject is the lock id, its source the service's event source
// (CANDADO_EVENT_SOURCE), its id a fresh UUID, its time when the lock call
// succeeded, and its data (application/json) {"id", "fence", "ttl_ms"}: never
// the owner token, which would let any observer release the lock.
//
// Expiries are not notified: a lease expires inside Redis, by its TTL, with
// no request passing through the service, and observing it would need Redis
// keyspace notifications (off by default, not available on every managed
// Redis, and lossy by design). The service does not fake them. Observers
// infer an expiry from an acquired notification with a higher fence and no
// released notification for the previous fence, or from an acquired
// notification whose ttl_ms ran out without a release.
//
// Delivery is fire and forget, at most once: Notify never blocks a lock call.
// It puts the notification on a bounded queue (SinkQueue) and returns; when
// the queue is full the notification is dropped and counted (Dropped). One
// sender goroutine, started by the first Notify (none, and no I/O, before,
// so a cold start pays nothing), POSTs them in order, each bounded by
// SinkTimeout and tried once: a failure (a transport error or a non-2xx
// answer) is counted (Failed) and logged at most once per 10s, never retried.
// Close stops the sender; a Notify racing with Close may be lost. Observers
// must treat the notifications as hints and read the truth from
// GET /locks/{id}.
type Sink struct {
	url    string
	source string
	log    *slog.Logger
	logURL string // url with any password redacted

	startOnce sync.Once
	started   bool              // set inside startOnce
	queue     chan notification // made inside startOnce; nil if Close came first
	stop      chan struct{}
	done      chan struct{}
	ctx       context.Context // the sender's; canceled when Close gives up
	cancel    context.CancelFunc
	client    *http.Client
	closeOnce sync.Once
	closed    atomic.Bool

	sent, failed, dropped atomic.Uint64

	// Sender-owned: when failures and drops were last logged, and the
	// counts then.
	failLogged, dropLogged time.Time
	failSeen, dropSeen     uint64
}

// notification is one queued lock change.
type notification struct {
	kind  string
	id    string
	fence int64
	ttl   time.Duration
	at    time.Time
}

// sinkData is the data of a notification event. It has no owner field by
// construction.
type sinkData struct {
	ID    string `json:"id"`
	Fence int64  `json:"fence"`
	TTLms int64  `json:"ttl_ms"`
}

// NewSink returns a Sink that POSTs to url, with source as the events'
// source. It starts no goroutine and does no I/O. A nil log discards.
func NewSink(url, source string, log *slog.Logger) *Sink {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sink{url: url, source: source, log: log, logURL: redact(url)}
}

// Notify queues a notification of kind (TypeAcquired or TypeReleased) about
// lease, without blocking: when the queue is full, or the Sink is closed, it
// drops the notification and counts it. Only the lease's id, fence and TTL
// are sent.
func (s *Sink) Notify(kind string, lease lock.Lease) {
	if s.closed.Load() {
		s.dropped.Add(1)
		return
	}
	s.startOnce.Do(s.start)
	n := notification{kind: kind, id: lease.ID, fence: lease.Fence, ttl: lease.TTL, at: time.Now()}
	select {
	case s.queue <- n: // a nil queue (Close won the race) drops
	default:
		s.dropped.Add(1)
	}
}

// start makes the queue and starts the sender.
func (s *Sink) start() {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 1
	s.client = &http.Client{
		Transport: t,
		// A redirect would repeat the POST elsewhere; an observer's URL is
		// configured, so take it as it is.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	s.queue = make(chan notification, SinkQueue)
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.started = true
	go s.run()
}

// run is the sender: it POSTs what is queued until stop, then drains the
// queue until its context ends.
func (s *Sink) run() {
	defer close(s.done)
	for {
		select {
		case n := <-s.queue:
			s.deliver(n)
		case <-s.stop:
			s.drain()
			s.report(true)
			return
		}
	}
}

// drain sends what is queued until the queue is empty or the sender's
// context ends.
func (s *Sink) drain() {
	for s.ctx.Err() == nil {
		select {
		case n := <-s.queue:
			s.deliver(n)
		default:
			return
		}
	}
}

// deliver POSTs one notification, once.
func (s *Sink) deliver(n notification) {
	if err := s.post(n); err != nil {
		s.failed.Add(1)
		if now := time.Now(); now.Sub(s.failLogged) >= sinkLogEvery {
			f := s.failed.Load()
			s.log.Warn("event sink: notification not delivered", "sink", s.logURL, "type", n.kind, "id", n.id,
				"err", err, "failed_since_last_log", f-s.failSeen, "failed_total", f)
			s.failLogged, s.failSeen = now, f
		}
	} else {
		s.sent.Add(1)
	}
	s.report(false)
}

// report logs new drops, at most once per sinkLogEvery unless final.
func (s *Sink) report(final bool) {
	d := s.dropped.Load()
	if d == s.dropSeen {
		return
	}
	if now := time.Now(); final || now.Sub(s.dropLogged) >= sinkLogEvery {
		s.log.Warn("event sink: notifications dropped (queue full or closing)", "sink", s.logURL,
			"dropped_since_last_log", d-s.dropSeen, "dropped_total", d)
		s.dropLogged, s.dropSeen = now, d
	}
}

// post sends n as a binary-mode CloudEvent.
func (s *Sink) post(n notification) error {
	e := event.New()
	e.SetID(uuid.NewString())
	e.SetSource(s.source)
	e.SetType(n.kind)
	e.SetSubject(n.id)
	e.SetTime(n.at)
	if err := e.SetData(event.ApplicationJSON, sinkData{ID: n.id, Fence: n.fence, TTLms: n.ttl.Milliseconds()}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, SinkTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, nil)
	if err != nil {
		return err
	}
	if err := writeRequest(binding.WithForceBinary(ctx), binding.ToMessage(&e), req); err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its URL may hold a password
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // keep the connection reusable
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("sink answered %s", resp.Status)
	}
	return nil
}

// Close stops the sender after it has sent what is queued, or when ctx
// ends, whichever comes first; then the POST in flight is canceled and what
// is still queued is dropped and counted. It returns ctx's error in the
// latter case. Notify after Close drops. Close is safe to call more than
// once and on a Sink that never started.
func (s *Sink) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.startOnce.Do(func() {}) // a later Notify starts nothing
		if !s.started {
			return
		}
		close(s.stop)
		select {
		case <-s.done:
		case <-ctx.Done():
			err = ctx.Err()
			s.cancel()
			<-s.done
		}
		s.cancel()
		if left := len(s.queue); left > 0 {
			s.dropped.Add(uint64(left))
			if err == nil {
				err = context.Canceled
			}
		}
		s.client.CloseIdleConnections()
		if err != nil {
			err = fmt.Errorf("event sink: closing: %w", err)
		}
	})
	return err
}

// Sent, Failed and Dropped count notifications delivered, failed (tried
// once and not accepted) and dropped (queue full, or the Sink closing).
func (s *Sink) Sent() uint64    { return s.sent.Load() }
func (s *Sink) Failed() uint64  { return s.failed.Load() }
func (s *Sink) Dropped() uint64 { return s.dropped.Load() }

// Wrap returns l with notifications: a granted acquire notifies
// TypeAcquired and a successful release TypeReleased, whichever mapping
// (HTTP or CloudEvents) made the call. Heartbeats and inspects pass through.
func (s *Sink) Wrap(l api.Locks) api.Locks {
	return notifying{Locks: l, sink: s}
}

type notifying struct {
	api.Locks
	sink *Sink
}

func (n notifying) Acquire(ctx context.Context, req lock.AcquireRequest) (lock.Lease, error) {
	lease, err := n.Locks.Acquire(ctx, req)
	if err == nil {
		if lease.ID == "" {
			lease.ID = req.ID
		}
		n.sink.Notify(TypeAcquired, lease)
	}
	return lease, err
}

func (n notifying) Release(ctx context.Context, id, owner string) (lock.Lease, error) {
	lease, err := n.Locks.Release(ctx, id, owner)
	if err == nil {
		if lease.ID == "" {
			lease.ID = id
		}
		n.sink.Notify(TypeReleased, lease)
	}
	return lease, err
}

// redact returns u with any password masked, for logs.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}
