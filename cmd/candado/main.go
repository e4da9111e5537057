// Command candado serves Candado's lock API over HTTP (with no arguments, or
// "serve"), and is its command-line client: "candado lock NAME -- COMMAND"
// runs a command while holding a lock; acquire, release, heartbeat and status
// are for scripts. Run "candado --help" for usage and exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
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
		os.Exit(serve())
	}
	os.Exit(newCLI().run(args))
}

// shutdownBudget bounds the wait for requests in flight; with the event
// sink's 2 s drain in Service.Close the process exits within the 10 s the
// contract promises.
const shutdownBudget = 7 * time.Second

func serve() int {
	log := function.NewLogger(os.Stderr)
	cfg, err := function.LoadConfig()
	if err != nil {
		log.Error("candado cannot start", slog.Any("err", err))
		return 2
	}
	svc, err := function.NewService(cfg, log)
	if err != nil {
		log.Error("candado cannot start", slog.Any("err", err))
		return 2
	}
	defer svc.Close()

	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		log.Error("candado cannot listen", slog.Int("port", cfg.Port), slog.Any("err", err))
		return 1
	}
	srv := &http.Server{Handler: svc, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("candado listening", slog.String("addr", ln.Addr().String()), slog.Bool("in_process_redis", cfg.RedisURL == ""))

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
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("candado shutdown incomplete", slog.Any("err", err))
		return 1
	}
	return 0
}
