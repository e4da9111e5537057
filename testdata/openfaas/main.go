// Command handler stands in for the OpenFaaS golang-middleware template's
// server, with the template's behaviour and none of its code: it mounts
// function.Handle at "/", takes the server's read and write timeouts from
// read_timeout and write_timeout (whole seconds or a Go duration, 10 s when
// unset or unreadable, as the template reads them), and on SIGTERM stops
// accepting and lets requests in flight finish within the write timeout.
// It listens where of-watchdog sends requests: the host and port of
// upstream_url (the template's Dockerfile sets http://127.0.0.1:8082).
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"handler/function"
)

const defaultTimeout = 10 * time.Second

func main() {
	readTimeout := timeoutFromEnv("read_timeout")
	writeTimeout := timeoutFromEnv("write_timeout")
	addr := "127.0.0.1:8082"
	if u, err := url.Parse(os.Getenv("upstream_url")); err == nil && u.Host != "" {
		addr = u.Host
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", function.Handle)
	srv := &http.Server{
		Addr:           addr,
		Handler:        mux,
		ReadTimeout:    readTimeout,
		WriteTimeout:   writeTimeout,
		MaxHeaderBytes: 1 << 20,
	}

	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	select {
	case err := <-served:
		log.Fatalf("serving %s: %v", addr, err)
	case <-sigs:
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Printf("shutdown: %v", err)
	}
}

// timeoutFromEnv reads a timeout as the template does: a non-negative whole
// number is seconds, otherwise a Go duration, otherwise the 10 s default.
func timeoutFromEnv(name string) time.Duration {
	v := os.Getenv(name)
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	return defaultTimeout
}
