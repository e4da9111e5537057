package function

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"time"

	"handler/function/function/access"
	"handler/function/function/api"
	"handler/function/function/events"
	"handler/function/function/httpapi"
	"handler/function/function/lock"
	"handler/function/function/ui"
	"handler/function/function/watch"
)

// Service is the lock service: configuration, the lock store, the HTTP and
// CloudEvents mappings and metrics behind one http.Handler.
type Service struct {
	cfg     Config
	log     *slog.Logger
	store   lock.Store // nil while unusable
	locker  *lock.Locker
	sink    *events.Sink
	feed    *watch.Feed // nil when the store cannot stream changes
	handler http.Handler
	// unusable, when set, is why the configuration cannot serve locks (an
	// empty Redis URL, say): Ready fails with it and every lock call
	// answers 503 with its text.
	unusable *api.Unusable
}

// NewService builds a Service from cfg. It does no network I/O: Redis is
// dialled by the first request. It never starts a Redis of its own: with no
// Redis URL in single mode (unset, or set to an empty value or file), it
// logs why once and serves a Service
// that is never ready and answers every lock call 503 unavailable with an
// error naming the variable. cfg.Notices are logged once, as warnings.
func NewService(cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = NewLogger(os.Stderr)
	}
	for _, n := range cfg.Notices {
		log.Warn(n)
	}
	s := &Service{cfg: cfg, log: log}
	m := newMetrics(s.waiters)
	authz, err := newAuthorizer(cfg, log, m.registry)
	if err != nil {
		return nil, err
	}
	var locks api.Locks
	ready := s.Ready
	if why := cfg.unusable(); why != "" {
		s.unusable = &api.Unusable{Reason: why}
		log.Error("candado cannot serve locks: " + why)
		locks = unusableLocks{s.unusable}
	} else {
		store, notifier, err := newBackend(cfg)
		if err != nil {
			return nil, err
		}
		s.store = store
		s.locker = lock.NewLocker(store, notifier, lock.WithMaxWaiters(cfg.MaxWaiters))
		locks = observed{Locks: s.locker, m: m, log: log}
	}
	if cfg.EventSink != "" {
		s.sink = events.NewSink(cfg.EventSink, cfg.EventSource, log)
		locks = s.sink.Wrap(locks)
	}
	// Owners are scoped to the identity that named them, and each identity
	// has its own cap of waiting acquires, in both mappings.
	owners := ownerKey(cfg, s.store, s.unusable)
	locks = access.NewWaiters(cfg.MaxWaitersPerIdentity).Wrap(owners.Bind(locks))
	limits := api.Limits{DefaultTTL: cfg.DefaultTTL, MaxTTL: cfg.MaxTTL, MaxWait: cfg.MaxWait, Deadline: cfg.Deadline}
	httpHandler := &httpapi.Handler{Locks: locks, Limits: limits, Ready: ready, Metrics: m.handler()}
	if s.store != nil {
		s.wireAdmin(httpHandler, s.store, m)
	}
	watchHandler := s.newWatch(cfg, limits, m)
	ev := &events.Handler{Locks: locks, Limits: limits, Source: cfg.EventSource, Owners: owners, Access: authz}
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Waits are cut to end before the entry's request deadline, counted
		// from here (see api.Request.Do).
		r = r.WithContext(api.WithArrival(r.Context(), time.Now()))
		if ui.IsUI(r.URL.Path) {
			ui.Handler{}.ServeHTTP(w, r)
			return
		}
		if isWatch(r.URL.Path) {
			watchHandler.ServeHTTP(w, r)
			return
		}
		if events.IsCloudEvent(r) {
			ev.ServeHTTP(w, r)
			return
		}
		httpHandler.ServeHTTP(w, r)
	})
	guard := access.Middleware{Authorizer: authz, Public: public, Right: right, Deny: httpapi.Deny}
	s.handler = m.instrument(guard.Wrap(route), routeOf)
	return s, nil
}

// waiters is how many acquires wait now in this instance.
func (s *Service) waiters() int {
	if s.locker == nil {
		return 0
	}
	return s.locker.Waiters()
}

// ServeHTTP serves every route of the contract.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// Ready reports whether the backend answers; an unusable configuration is
// never ready, and the error says why.
func (s *Service) Ready(ctx context.Context) error {
	if s.unusable != nil {
		return s.unusable
	}
	return s.store.Ping(ctx)
}

// WarmTimeout bounds Warm: it gives up after this long whatever its context.
const WarmTimeout = 2 * time.Second

// Warm gets the backend ready for the first lock call ahead of it: it dials
// Redis and loads the lock scripts, so the first acquire finds a connection
// in the pool and sends no script source. It is for a goroutine started with
// the process: it never blocks start-up or readiness, and a failure (Redis
// down, say) changes nothing but the first call's cost, which dials and
// answers as it would have. It returns within WarmTimeout, each round trip
// within CANDADO_BACKEND_TIMEOUT. An unusable configuration has nothing to
// warm.
func (s *Service) Warm(ctx context.Context) error {
	w, ok := s.store.(lock.Warmer)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, WarmTimeout)
	defer cancel()
	return w.Warm(ctx)
}

// Unusable returns why the configuration cannot serve locks, or nil.
func (s *Service) Unusable() error {
	if s.unusable == nil {
		return nil
	}
	return s.unusable
}

// Shutdown ends every waiting acquire with a 503 and refuses new acquires;
// releases and heartbeats still work, so holders can let go. Call it before
// the HTTP server's Shutdown, then Close.
func (s *Service) Shutdown() {
	if s.feed != nil {
		s.feed.Close()
	}
	if s.locker != nil {
		s.locker.Shutdown()
	}
}

// Close frees the connections, then gives the event sink, if any, up to 2s to send what is queued.
func (s *Service) Close() error {
	var err error
	if s.feed != nil {
		s.feed.Close()
	}
	if s.locker != nil {
		s.locker.Shutdown()
		err = s.store.Close()
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

// public reports the paths served with no credential: httpapi's, and the
// operations page's static files (the page sends the credential itself).
func public(path string) bool { return httpapi.Public(path) || ui.IsUI(path) }
