package function

import (
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"handler/function/function/api"
)

var (
	openfaasOnce    sync.Once
	openfaasService *Service
	openfaasErr     error
)

// Handle is the OpenFaaS golang-middleware entry. OpenFaaS has no start-up
// hook, so the Service is built on the first request, from the environment,
// with the request deadline of OpenFaaSDeadline. It never runs an in-process
// Redis: without a Redis URL every lock call answers 503 (see NewService).
func Handle(w http.ResponseWriter, r *http.Request) {
	openfaasOnce.Do(func() {
		log := NewLogger(os.Stderr)
		cfg, err := LoadConfig()
		if err == nil {
			cfg.Deadline = OpenFaaSDeadline(os.Getenv)
			openfaasService, err = NewService(cfg, log)
		}
		if err != nil {
			openfaasErr = err
			log.Error("candado cannot start", slog.Any("err", err))
		}
	})
	if openfaasErr != nil {
		api.Write(w, http.StatusServiceUnavailable, api.Envelope{Error: "service misconfigured; see its log", Code: api.CodeUnavailable})
		return
	}
	if r.Method == http.MethodGet && isWatch(r.URL.Path) && !streamsThroughOpenFaaS(r) {
		api.Write(w, http.StatusBadRequest, api.Envelope{Error: errWatchAccept, Code: api.CodeBadRequest})
		return
	}
	openfaasService.ServeHTTP(w, r)
}

// errWatchAccept explains the 400 to a watch that OpenFaaS would not stream.
const errWatchAccept = "a watch through OpenFaaS needs the header Accept: text/event-stream (first, as EventSource sends it): " +
	"without it of-watchdog and the gateway hold the whole stream back until it ends"

// streamsThroughOpenFaaS reports whether OpenFaaS passes the answer to r on
// as it is written. of-watchdog (mode=http) streams only a request whose
// Accept contains text/event-stream, and the gateway only one whose Accept
// starts with it; any other answer they copy without flushing, so a watcher
// would see nothing until its stream ends.
func streamsThroughOpenFaaS(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Accept"), "text/event-stream")
}

// OpenFaaSDefaultTimeout is what the golang-middleware template's server and
// of-watchdog use for write_timeout and exec_timeout when they are unset.
const OpenFaaSDefaultTimeout = 10 * time.Second

// OpenFaaSDeadline is the request deadline of the OpenFaaS entry: the
// shorter of write_timeout (the template's server, and the watchdog's, cut
// the answer there) and exec_timeout (the watchdog cuts the call there),
// each read as the template reads it: whole seconds or a Go duration, 10s
// when unset or unreadable; 0 or less turns that timeout off. 0 means
// neither cuts.
func OpenFaaSDeadline(getenv func(string) string) time.Duration {
	var d time.Duration
	for _, name := range []string{"write_timeout", "exec_timeout"} {
		t := openfaasDuration(getenv(name), OpenFaaSDefaultTimeout)
		if t > 0 && (d == 0 || t < d) {
			d = t
		}
	}
	return d
}

// openfaasDuration reads val as the OpenFaaS template does: a whole number
// of seconds, else a Go duration, else fallback.
func openfaasDuration(val string, fallback time.Duration) time.Duration {
	if n, err := strconv.Atoi(val); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if d, err := time.ParseDuration(val); err == nil {
		return d
	}
	return fallback
}
