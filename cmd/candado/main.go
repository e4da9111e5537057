// Command candado serves Candado's lock API over HTTP (with no arguments, or
// "serve"), and is its command-line client: "candado lock NAME -- COMMAND"
// runs a command while holding a lock; acquire, release, heartbeat and status
// are for scripts. Run "candado --help" for usage and exit codes.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"handler/function/function"
)

func main() {
	args := os.Args[1:]
	if len(args) == 0 || args[0] == "serve" {
		if len(args) > 1 {
			if a := args[1]; a == "-h" || a == "-help" || a == "--help" {
				fmt.Print(serveUsage)
				os.Exit(exitOK)
			}
			fmt.Fprintf(os.Stderr, "candado serve: takes no arguments (it is configured by CANDADO_* environment variables)\n")
			os.Exit(exitUsage)
		}
		if os.Getenv("GOGC") == "" {
			// The live heap is a few MB: at the default 100 the collector
			// ran every few hundred requests (see the README's Configuration).
			debug.SetGCPercent(400)
		}
		os.Exit(serve())
	}
	os.Exit(newCLI().run(args))
}

// shutdownBudget bounds the wait for requests in flight; with the event
// sink's 2 s drain in Service.Close the process exits within the 10 s the
// contract promises.
const shutdownBudget = 7 * time.Second

// timeouts are the standalone server's.
type timeouts struct {
	// readHeader bounds reading a request's headers; read bounds reading
	// the whole request, so a body trickled in slowly is cut off (400) and
	// frees its goroutine; write bounds the time from the end of the headers
	// to the end of the answer.
	readHeader, read, write time.Duration
}

// serverTimeouts fit the server's timeouts to maxWait: write leaves room for
// reading the request, the longest wait and the margin api.Margin keeps, so
// the wait cap that write implies (see api.Limits) never cuts maxWait.
func serverTimeouts(maxWait time.Duration) timeouts {
	t := timeouts{readHeader: 5 * time.Second, read: 10 * time.Second}
	t.write = maxWait + t.read + 10*time.Second
	return t
}

// inKubernetes reports whether this process runs in a Kubernetes pod, where
// an unset Redis URL is a mistake, never a local run.
func inKubernetes() bool {
	_, ok := os.LookupEnv("KUBERNETES_SERVICE_HOST")
	return ok
}

func serve() int {
	log := function.NewLogger(os.Stderr)
	cfg, err := function.LoadConfig()
	if err != nil {
		log.Error("candado cannot start", slog.Any("err", err))
		return 2
	}
	// Only a local run with no Redis configured at all gets an in-process
	// one. A URL set to an empty value or file, or any pod, gets none: the
	// service then is not ready and answers 503 (see function.NewService).
	var local *localRedis
	if cfg.RedisUnset() && !inKubernetes() {
		if local, err = startLocalRedis(); err != nil {
			log.Error("candado cannot start", slog.Any("err", err))
			return 1
		}
		defer local.Close()
		cfg.RedisURL = "redis://" + local.Addr()
		log.Warn("CANDADO_REDIS_URL is not set: using an in-process Redis; locks live only as long as this process", "addr", local.Addr())
	}
	to := serverTimeouts(cfg.MaxWait)
	cfg.Deadline = to.write
	svc, err := function.NewService(cfg, log)
	if err != nil {
		log.Error("candado cannot start", slog.Any("err", err))
		return 2
	}
	defer svc.Close()
	// Dial Redis and load the scripts while the server starts listening;
	// nothing waits for it (see function.Service.Warm).
	go func() { _ = svc.Warm(context.Background()) }()

	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		log.Error("candado cannot listen", slog.Int("port", cfg.Port), slog.Any("err", err))
		return 1
	}
	srv := &http.Server{Handler: svc, ReadHeaderTimeout: to.readHeader, ReadTimeout: to.read, WriteTimeout: to.write, IdleTimeout: 2 * time.Minute}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("candado listening", slog.String("addr", ln.Addr().String()), slog.Bool("in_process_redis", local != nil), slog.Duration("write_timeout", to.write))

	select {
	case err := <-serveErr:
		log.Error("candado stopped serving", slog.Any("err", err))
		return 1
	case <-ctx.Done():
	}
	log.Info("candado shutting down")
	svc.Shutdown() // waiters answer 503 now, so Shutdown below does not wait on them
	sctx, cancel := context.WithTimeout(context.Background(), shutdownBudget)
	defer cancel()
	// Shutdown's only errors are the context's: requests still in flight.
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("candado shutdown incomplete", slog.Any("err", err))
		return 1
	}
	return 0
}
