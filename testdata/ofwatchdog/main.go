// Command ofwatchdog stands in for OpenFaaS's of-watchdog in mode=http, the
// version the golang-middleware template's image copies (0.11.3), with its
// behaviour and none of its code. It starts fprocess (the function's server)
// with its own environment, and proxies every request on port (8080) to
// upstream_url, in one of two ways, chosen by the request alone:
//
//   - a request whose Accept header contains text/event-stream or
//     application/x-ndjson, or that asks to upgrade to a websocket, goes
//     through the standard library's reverse proxy, which writes each chunk
//     of a text/event-stream answer through at once; exec_timeout does not
//     apply to it;
//   - any other request is sent with a client whose context ends at
//     exec_timeout (or the shorter X-Timeout header), and its answer is
//     copied to the caller without flushing: the caller gets the status and
//     the body only when the function's answer ends (or when kilobytes of it
//     have piled up).
//
// Its server cuts reading at read_timeout and writing at write_timeout
// (30 s each when unset: the watchdog's default, longer than the template's
// 10 s). With max_inflight > 0 a request past that many in flight is
// answered 429, and /_/ready answers 429 while the count is at the limit;
// the count goes down only when a request's handling returns normally, so a
// proxied stream whose caller leaves before it ends (the reverse proxy then
// aborts with http.ErrAbortHandler) keeps its slot for good, as the
// watchdog's concurrency limiter (faas-middleware v1.2.5) does.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

const defaultTimeout = 30 * time.Second

func main() {
	readTimeout := durationEnv("read_timeout", defaultTimeout)
	writeTimeout := durationEnv("write_timeout", defaultTimeout)
	execTimeout := durationEnv("exec_timeout", defaultTimeout)
	healthInterval := durationEnv("healthcheck_interval", writeTimeout)
	port := intEnv("port", 8080)
	maxInflight := intEnv("max_inflight", 0)
	upstream, err := url.Parse(override("upstream_url", "http_upstream_url"))
	if err != nil || upstream.Host == "" {
		log.Fatalf(`mode=http needs a valid "upstream_url": %v`, err)
	}
	process := strings.Fields(override("fprocess", "function_process"))
	if len(process) == 0 {
		log.Fatal(`provide a "function_process" or "fprocess" environment variable`)
	}
	if writeTimeout == 0 {
		log.Fatal("write_timeout must be over 0s")
	}

	child := exec.Command(process[0], process[1:]...)
	child.Stdout, child.Stderr = os.Stdout, os.Stderr
	if err := child.Start(); err != nil {
		log.Fatalf("starting %s: %v", process[0], err)
	}
	go func() {
		err := child.Wait()
		log.Fatalf("forked function has terminated: %v", err)
	}()

	p := &proxy{upstream: upstream, execTimeout: execTimeout, client: &http.Client{
		Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, IdleConnTimeout: 500 * time.Millisecond},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
	p.stream = &httputil.ReverseProxy{
		// The watchdog's proxy only points the URL at upstream: the
		// caller's Host header and headers go through.
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", upstream.Host
		},
		ErrorHandler: func(http.ResponseWriter, *http.Request, error) {}, // as the watchdog: nothing written
		ErrorLog:     log.New(io.Discard, "", 0),
	}
	lim := &limiter{max: uint64(max(0, maxInflight)), next: p}

	mux := http.NewServeMux()
	mux.Handle("/", lim)
	mux.HandleFunc("/_/health", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "OK") })
	mux.HandleFunc("/_/ready", func(w http.ResponseWriter, _ *http.Request) {
		if lim.full() {
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	srv := &http.Server{
		Addr:           ":" + strconv.Itoa(port),
		Handler:        mux,
		ReadTimeout:    readTimeout,
		WriteTimeout:   writeTimeout,
		MaxHeaderBytes: 1 << 20,
	}
	log.Printf("Timeouts: read: %s write: %s hard: %s health: %s", readTimeout, writeTimeout, execTimeout, healthInterval)

	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		<-sig
		_ = child.Process.Signal(syscall.SIGTERM)
		time.Sleep(healthInterval)
		ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		defer cancel()
		_ = srv.Shutdown(ctx)
		os.Exit(0)
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatalf("listening on %d: %v", port, err)
	}
	select {}
}

type proxy struct {
	upstream    *url.URL
	execTimeout time.Duration
	client      *http.Client
	stream      *httputil.ReverseProxy
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if streaming(r) {
		p.stream.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	ctx := r.Context()
	if d := timeoutOf(r, p.execTimeout); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, p.upstream.String()+r.RequestURI, r.Body)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	req.Header = r.Header.Clone()
	req.Host = r.Host
	res, err := p.client.Do(req)
	if err != nil {
		w.Header().Set("X-Duration-Seconds", fmt.Sprintf("%f", time.Since(start).Seconds()))
		w.Header().Add("X-OpenFaaS-Internal", "of-watchdog")
		if ctx.Err() != nil {
			w.WriteHeader(http.StatusGatewayTimeout)
		} else {
			w.WriteHeader(http.StatusInternalServerError)
		}
		return
	}
	defer res.Body.Close()
	for k, v := range res.Header {
		w.Header()[k] = append([]string(nil), v...)
	}
	w.Header().Set("X-Duration-Seconds", fmt.Sprintf("%f", time.Since(start).Seconds()))
	w.WriteHeader(res.StatusCode)
	if _, err := io.Copy(w, res.Body); err != nil {
		log.Printf("copying the answer of %s: %v", r.RequestURI, err)
	}
}

// streaming reports whether the watchdog sends r through its reverse proxy.
func streaming(r *http.Request) bool {
	accept := strings.ToLower(r.Header.Get("Accept"))
	return strings.Contains(accept, "text/event-stream") || strings.Contains(accept, "application/x-ndjson") ||
		r.Header.Get("Upgrade") == "websocket"
}

// timeoutOf is exec_timeout, or the X-Timeout header when it is shorter.
func timeoutOf(r *http.Request, d time.Duration) time.Duration {
	if v, err := time.ParseDuration(r.Header.Get("X-Timeout")); err == nil && v <= d {
		return v
	}
	return d
}

// limiter answers 429 past max requests in flight (0: no limit). done is
// counted only when next returns normally: a panic (http.ErrAbortHandler
// from the reverse proxy) leaves the request counted.
type limiter struct {
	max           uint64
	started, done atomic.Uint64
	next          http.Handler
}

func (l *limiter) full() bool { return l.max > 0 && l.started.Load()-l.done.Load() >= l.max }

func (l *limiter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if l.max == 0 {
		l.next.ServeHTTP(w, r)
		return
	}
	if l.started.Add(1)-l.done.Load() > l.max {
		l.done.Add(1)
		w.Header().Add("Content-Type", "text/plain")
		w.Header().Add("X-OpenFaaS-Internal", "faas-middleware")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprintf(w, "Concurrent request limit exceeded. Max concurrent requests: %d\n", l.max)
		return
	}
	l.next.ServeHTTP(w, r)
	l.done.Add(1)
}

// durationEnv reads a timeout as the watchdog does: a non-negative whole
// number is seconds, otherwise a Go duration, otherwise fallback.
func durationEnv(name string, fallback time.Duration) time.Duration {
	v, ok := os.LookupEnv(name)
	if !ok {
		return fallback
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	return fallback
}

func intEnv(name string, fallback int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return fallback
}

// override is the value of overriding when it is set, else of name: the
// watchdog lets function_process override fprocess, and http_upstream_url
// upstream_url.
func override(name, overriding string) string {
	if v, ok := os.LookupEnv(overriding); ok {
		return v
	}
	return os.Getenv(name)
}
