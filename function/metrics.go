package function

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"handler/function/function/api"
	"handler/function/function/httpapi"
	"handler/function/function/lock"
	"handler/function/function/promtext"
)

// metrics are the service's Prometheus series, in a registry of its own so
// that several Services can live in one process (tests).
type metrics struct {
	registry    *promtext.Registry
	requests    *promtext.Vec[promtext.Counter]
	latency     *promtext.Vec[promtext.Histogram]
	acquires    *promtext.Vec[promtext.Counter]
	waits       *promtext.Vec[promtext.Counter]
	waitTime    *promtext.Vec[promtext.Histogram]
	holdTime    *promtext.Vec[promtext.Histogram]
	handoffs    *promtext.Counter
	refusals    *promtext.Counter
	backendErrs *promtext.Vec[promtext.Counter]
}

// newMetrics registers the series; waiters reads how many acquires wait now.
func newMetrics(waiters func() int) *metrics {
	r := promtext.NewRegistry()
	r.NewGaugeFunc("candado_waiters", "Acquires waiting for a held lock now, in this instance.",
		func() float64 { return float64(waiters()) })
	return &metrics{
		registry: r,
		requests: r.NewCounterVec("candado_http_requests_total", "HTTP requests by route and status code.", "route", "code"),
		latency: r.NewHistogramVec("candado_http_request_duration_seconds", "HTTP request latency by route, waits included.",
			[]float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30, 60}, "route"),
		acquires: r.NewCounterVec("candado_acquires_total", "Acquire outcomes: granted, held, limit_mismatch, invalid or error.", "result"),
		waits: r.NewCounterVec("candado_waits_total",
			"Acquires that waited for a held lock, by outcome: granted, held, limit_mismatch, contended, cancelled, shutdown or error.", "result"),
		waitTime: r.NewHistogramVec("candado_wait_duration_seconds", "Time acquires spent waiting for a held lock, by the same outcomes as candado_waits_total.",
			promtext.ExponentialBuckets(.001, 4, 10), "result"),
		holdTime: newHoldTime(r),
		handoffs: r.NewCounter("candado_handoffs_total", "Acquires granted to a waiter woken by a release or expiry."),
		refusals: r.NewCounter("candado_waiters_refused_total",
			"Waiting acquires answered 503 at once because CANDADO_MAX_WAITERS acquires were already waiting."),
		backendErrs: r.NewCounterVec("candado_backend_errors_total", "Lock operations the backend did not answer, by operation.", "op"),
	}
}

func (m *metrics) handler() http.Handler { return m.registry }

// instrument counts requests and their latency by route and status code.
func (m *metrics) instrument(next http.Handler, route func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		rt := route(r)
		m.requests.WithLabelValues(rt, strconv.Itoa(sw.status)).Inc()
		m.latency.WithLabelValues(rt).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observed wraps the lock layer to count outcomes and log backend errors, so
// both mappings are measured in one place.
type observed struct {
	api.Locks
	m   *metrics
	log *slog.Logger
}

func (o observed) Acquire(ctx context.Context, req lock.AcquireRequest) (lock.Lease, error) {
	lease, err := o.Locks.Acquire(ctx, req)
	result := outcome(err)
	o.m.acquires.WithLabelValues(result).Inc()
	if req.Wait > 0 && lease.Waited > 0 {
		o.m.waits.WithLabelValues(waitOutcome(err)).Inc()
		o.m.waitTime.WithLabelValues(waitOutcome(err)).Observe(lease.Waited.Seconds())
	}
	if errors.Is(err, lock.ErrTooManyWaiters) {
		o.m.refusals.Inc()
	}
	if err == nil && lease.Woken {
		o.m.handoffs.Inc()
	}
	o.backendError(ctx, "acquire", req.ID, err)
	return lease, err
}

func (o observed) Release(ctx context.Context, id, owner string) (lock.Lease, error) {
	lease, err := o.Locks.Release(ctx, id, owner)
	if err == nil {
		o.m.observeHold("released", lease)
	}
	o.backendError(ctx, "release", id, err)
	return lease, err
}

func (o observed) Heartbeat(ctx context.Context, id, owner string, ttl time.Duration) (lock.Lease, error) {
	lease, err := o.Locks.Heartbeat(ctx, id, owner, ttl)
	o.backendError(ctx, "heartbeat", id, err)
	return lease, err
}

func (o observed) Inspect(ctx context.Context, id string) (lock.Lease, error) {
	lease, err := o.Locks.Inspect(ctx, id)
	o.backendError(ctx, "inspect", id, err)
	return lease, err
}

func (o observed) backendError(ctx context.Context, op, id string, err error) {
	if !errors.Is(err, lock.ErrUnavailable) || errors.Is(err, lock.ErrClosed) || errors.Is(err, lock.ErrContended) ||
		errors.Is(err, lock.ErrTooManyWaiters) {
		return
	}
	o.m.backendErrs.WithLabelValues(op).Inc()
	o.log.LogAttrs(ctx, slog.LevelError, "backend error", slog.String("op", op), slog.String("id", id), slog.Any("err", err))
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "granted"
	case errors.Is(err, lock.ErrHeld):
		return "held"
	case errors.Is(err, lock.ErrLimitMismatch):
		return "limit_mismatch"
	case errors.Is(err, lock.ErrInvalid):
		return "invalid"
	}
	return "error"
}

// waitOutcome is the result label of a wait that ended with err; its
// values are a fixed few.
func waitOutcome(err error) string {
	switch {
	case err == nil:
		return "granted"
	case errors.Is(err, lock.ErrHeld):
		return "held" // the wait ran out
	case errors.Is(err, lock.ErrLimitMismatch):
		return "limit_mismatch" // the lock was taken with another limit meanwhile
	case errors.Is(err, lock.ErrContended):
		return "contended"
	case errors.Is(err, lock.ErrClosed):
		return "shutdown"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "cancelled" // the caller gave up, or its own deadline passed
	}
	return "error"
}

// routeOf names the route of r for metrics; CloudEvents arrive on "/".
func routeOf(r *http.Request) string {
	if r.URL.Path == "/" && r.Method == http.MethodPost {
		return "cloudevents"
	}
	return httpapi.Route(r.URL.Path)
}
