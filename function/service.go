// Package function is Candado, a lock service on Redis: one http.Handler
// served unchanged as an OpenFaaS function (Handle), a Knative Function (the
// module root's New) and a standalone binary (cmd/candado).
package function

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/alicebob/miniredis/v2"

	"handler/function/function/access"
	"handler/function/function/api"
	"handler/function/function/events"
	"handler/function/function/httpapi"
	"handler/function/function/lock"
)

// Service is the lock service: configuration, the lock store, the HTTP and
// CloudEvents mappings and metrics behind one http.Handler.
type Service struct {
	cfg     Config
	log     *slog.Logger
	store   lock.Store
	locker  *lock.Locker
	local   *localRedis
	sink    *events.Sink
	handler http.Handler
}

// NewService builds a Service from cfg. It does no network I/O: Redis is
// dialled by the first request. An empty cfg.RedisURL starts an in-process
// Redis, for local use only.
func NewService(cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = NewLogger(os.Stderr)
	}
	s := &Service{cfg: cfg, log: log}
	url := cfg.RedisURL
	if url == "" && cfg.mode() == ModeSingle {
		l, err := startLocalRedis()
		if err != nil {
			return nil, err
		}
		s.local = l
		url = "redis://" + l.Addr()
		log.Warn("CANDADO_REDIS_URL is empty: using an in-process Redis; locks live only as long as this process", "addr", l.Addr())
	}
	bcfg := cfg
	bcfg.RedisURL = url
	store, notifier, err := newBackend(bcfg)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.store = store
	s.locker = lock.NewLocker(store, notifier, lock.WithMaxWaiters(cfg.MaxWaiters))

	m := newMetrics(s.locker.Waiters)
	authz, err := newAuthorizer(cfg, log, m.registry)
	if err != nil {
		s.Close()
		return nil, err
	}
	owners := ownerKey(cfg, store)
	var locks api.Locks = observed{Locks: s.locker, m: m, log: log}
	if cfg.EventSink != "" {
		s.sink = events.NewSink(cfg.EventSink, cfg.EventSource, log)
		locks = s.sink.Wrap(locks)
	}
	// Owners are scoped to the identity that named them, and each identity
	// has its own cap of waiting acquires, in both mappings.
	locks = access.NewWaiters(cfg.MaxWaitersPerIdentity).Wrap(owners.Bind(locks))
	limits := api.Limits{DefaultTTL: cfg.DefaultTTL, MaxTTL: cfg.MaxTTL, MaxWait: cfg.MaxWait}
	httpHandler := &httpapi.Handler{Locks: locks, Limits: limits, Ready: s.Ready, Metrics: m.handler()}
	ev := &events.Handler{Locks: locks, Limits: limits, Source: cfg.EventSource, Owners: owners, Access: authz}
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if events.IsCloudEvent(r) {
			ev.ServeHTTP(w, r)
			return
		}
		httpHandler.ServeHTTP(w, r)
	})
	guard := access.Middleware{Authorizer: authz, Public: httpapi.Public, Right: right, Deny: httpapi.Deny}
	s.handler = m.instrument(guard.Wrap(route), routeOf)
	return s, nil
}

// ServeHTTP serves every route of the contract.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// Ready reports whether the backend answers.
func (s *Service) Ready(ctx context.Context) error {
	return s.store.Ping(ctx)
}

// Shutdown ends every waiting acquire with a 503 and refuses new acquires;
// releases and heartbeats still work, so holders can let go. Call it before
// the HTTP server's Shutdown, then Close.
func (s *Service) Shutdown() {
	s.locker.Shutdown()
}

// Close frees the connections (and the in-process Redis, if any), then
// gives the event sink, if any, up to 2s to send what is queued.
func (s *Service) Close() error {
	var err error
	if s.locker != nil {
		s.locker.Shutdown()
		err = s.store.Close()
	}
	if s.local != nil {
		s.local.Close()
	}
	if s.sink != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if serr := s.sink.Close(ctx); serr != nil {
			s.log.Warn("event sink not drained", "err", serr, "dropped", s.sink.Dropped())
		}
		cancel()
	}
	return err
}

// right is the right a request needs before routing: none for
// CloudEvents, whose events are each checked by the mapping, else the HTTP
// route's (httpapi.Right).
func right(r *http.Request) (access.Verb, string, bool) {
	if events.IsCloudEvent(r) {
		return "", "", false
	}
	return httpapi.Right(r)
}

// NewLogger logs JSON unless w is a terminal.
func NewLogger(w *os.File) *slog.Logger {
	if fi, err := w.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

// localRedis is an in-process Redis whose TTLs run down with the wall clock
// (miniredis only moves them when told).
type localRedis struct {
	*miniredis.Miniredis
	stop chan struct{}
	done chan struct{}
}

func startLocalRedis() (*localRedis, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("starting the in-process Redis: %w", err)
	}
	l := &localRedis{Miniredis: m, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case now := <-t.C:
				m.FastForward(now.Sub(last))
				last = now
			case <-l.stop:
				return
			}
		}
	}()
	return l, nil
}

func (l *localRedis) Close() {
	close(l.stop)
	<-l.done
	l.Miniredis.Close()
}
