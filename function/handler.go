package function

import (
	"log/slog"
	"net/http"
	"os"
	"sync"

	"handler/function/function/api"
	"handler/function/function/httpapi"
)

var (
	openfaasOnce    sync.Once
	openfaasService *Service
	openfaasErr     error
)

// Handle is the OpenFaaS golang-middleware entry. OpenFaaS has no start-up
// hook, so the Service is built on the first request, from the environment.
func Handle(w http.ResponseWriter, r *http.Request) {
	openfaasOnce.Do(func() {
		log := NewLogger(os.Stderr)
		cfg, err := LoadConfig()
		if err == nil {
			openfaasService, err = NewService(cfg, log)
		}
		if err != nil {
			openfaasErr = err
			log.Error("candado cannot start", slog.Any("err", err))
		}
	})
	if openfaasErr != nil {
		httpapi.Write(w, http.StatusServiceUnavailable, api.Envelope{Error: "service misconfigured; see its log", Code: api.CodeUnavailable})
		return
	}
	openfaasService.ServeHTTP(w, r)
}
