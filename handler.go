package function

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	impl "handler/function/function"
	"handler/function/function/api"
)

// Function is the Knative Functions instance.
type Function struct {
	svc atomic.Pointer[impl.Service]
}

// New is called by the func-go runtime; it does no work.
func New() *Function { return &Function{} }

// FuncGoTimeout is the WriteTimeout (and ReadTimeout) of the func-go
// runtime's HTTP server (knative.dev/func-go v0.22.0): an answer still being
// written after it is cut. It is this entry's request deadline, so waits end
// api.Margin(FuncGoTimeout) = 5s before it: CANDADO_MAX_WAIT above 25s is
// cut to 25s here.
const FuncGoTimeout = 30 * time.Second

// Start builds the Service from the environment. The runtime calls it while
// already serving, so Ready is false until it returns. It never runs an
// in-process Redis: without a Redis URL the Service is never ready and
// answers every lock call 503 (see impl.NewService).
func (f *Function) Start(ctx context.Context, _ map[string]string) error {
	cfg, err := impl.LoadConfig()
	if err != nil {
		return err
	}
	cfg.Deadline = FuncGoTimeout
	svc, err := impl.NewService(cfg, nil)
	if err != nil {
		return err
	}
	f.svc.Store(svc)
	// Dial Redis and load the scripts while the first request is on its
	// way; Ready and Handle do not wait for it.
	go func() { _ = svc.Warm(context.WithoutCancel(ctx)) }()
	return nil
}

// Stop ends waiters with a 503 and closes the connections.
func (f *Function) Stop(ctx context.Context) error {
	if svc := f.svc.Load(); svc != nil {
		svc.Shutdown()
		return svc.Close()
	}
	return nil
}

var errStarting = errors.New("starting")

// Ready is true once Start is done and Redis answers.
func (f *Function) Ready(ctx context.Context) (bool, error) {
	svc := f.svc.Load()
	if svc == nil {
		return false, errStarting
	}
	if err := svc.Ready(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// Alive is true while the process serves; it touches no backend.
func (f *Function) Alive(context.Context) (bool, error) { return true, nil }

// Handle serves every route of the contract.
func (f *Function) Handle(w http.ResponseWriter, r *http.Request) {
	svc := f.svc.Load()
	if svc == nil {
		api.Write(w, http.StatusServiceUnavailable, api.Envelope{Error: "starting", Code: api.CodeUnavailable})
		return
	}
	svc.ServeHTTP(w, r)
}
