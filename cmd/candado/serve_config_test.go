package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"handler/function/function"
)

// TestNoInProcessRedisOutsideALocalRun: in a pod, or with the Redis URL
// configured to nothing, the server starts, is not ready, and answers every
// lock call 503 naming the variable; it never grants from a Redis of its own.
func TestNoInProcessRedisOutsideALocalRun(t *testing.T) {
	bin := buildCandado(t)
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"KUBERNETES_SERVICE_HOST=10.96.0.1"}, "CANDADO_REDIS_URL is not set"},
		{[]string{"CANDADO_REDIS_URL="}, "CANDADO_REDIS_URL is empty"},
		{[]string{"CANDADO_REDIS_URL_FILE=/dev/null"}, "CANDADO_REDIS_URL_FILE names /dev/null, which is empty"},
	} {
		t.Run(tc.env[0], func(t *testing.T) {
			s := startServer(t, bin, tc.env...)
			for _, p := range []string{"/readyz", "/acquire/x", "/locks/x"} {
				code, env := getJSON(t, s.base+p)
				if code != 503 || env["code"] != "unavailable" || !strings.Contains(fmt.Sprint(env["error"]), tc.want) {
					t.Fatalf("GET %s = %d %v, want 503 unavailable saying %q", p, code, env, tc.want)
				}
			}
			if n := strings.Count(s.stderr.String(), tc.want); n != 1 {
				t.Fatalf("logged %d times, want once:\n%s", n, s.stderr)
			}
			if strings.Contains(s.stderr.String(), "in-process") && !strings.Contains(s.stderr.String(), "only for a local run") {
				t.Fatalf("started an in-process Redis:\n%s", s.stderr)
			}
		})
	}
}

// TestLocalRunUsesInProcessRedis: with nothing set, outside a pod, locks
// work and their TTLs run down with the clock.
func TestLocalRunUsesInProcessRedis(t *testing.T) {
	s := startServer(t, buildCandado(t))
	if code, env := getJSON(t, s.base+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d %v", code, env)
	}
	if code, _ := getJSON(t, s.base+"/acquire/local?ttl=50ms"); code != 200 {
		t.Fatalf("acquire = %d", code)
	}
	if code, env := getJSON(t, s.base+"/acquire/local?wait=2s"); code != 200 { // woken by the expiry
		t.Fatalf("acquire after the TTL = %d %v", code, env)
	}
}

// TestServiceLinkPortDoesNotStopStartUp: a pod of the Service candado gets
// CANDADO_PORT=tcp://...; the server starts on PORT, which wins without a
// word (function's TestServiceLinkPort covers the notice without PORT).
func TestServiceLinkPortDoesNotStopStartUp(t *testing.T) {
	port := freePort(t)
	s := startServerEnv(t, buildCandado(t), port, "CANDADO_PORT=tcp://10.96.11.11:80", fmt.Sprintf("PORT=%d", port))
	if code, _ := getJSON(t, s.base+"/acquire/x"); code != 200 {
		t.Fatalf("acquire = %d", code)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(s.stderr.String(), fmt.Sprintf(":%d", port)); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not listening on PORT %d:\n%s", port, s.stderr)
		}
	}
}

// TestSlowBodyIsCutOff: a body trickled one byte a second does not hold its
// connection (and goroutine) beyond the server's read timeout.
func TestSlowBodyIsCutOff(t *testing.T) {
	s := startServer(t, buildCandado(t))
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /acquire/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
	start := time.Now()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			resp.Body.Close()
		}
	}()
	limit := serverTimeouts(0).read + 10*time.Second
	for {
		select {
		case <-closed:
			if d := time.Since(start); d > limit {
				t.Fatalf("connection ended after %s", d)
			}
			return
		case <-time.After(time.Second):
		}
		if time.Since(start) > limit {
			t.Fatalf("a trickled body still holds the connection after %s", time.Since(start))
		}
		if _, err := conn.Write([]byte(" ")); err != nil {
			return // the server closed it
		}
	}
}

// TestServerTimeoutsFitMaxWait: the standalone server's own write timeout
// never cuts a wait of CANDADO_MAX_WAIT.
func TestServerTimeoutsFitMaxWait(t *testing.T) {
	for _, mw := range []time.Duration{0, time.Second, time.Minute, time.Hour} {
		to := serverTimeouts(mw)
		if to.readHeader <= 0 || to.read <= 0 || to.read > 30*time.Second {
			t.Fatalf("MaxWait %s: read timeouts %+v", mw, to)
		}
		// The wait starts at the latest when the request is read, and ends
		// api.Margin (at most 5s) before write.
		if to.write-to.read-5*time.Second < mw {
			t.Fatalf("MaxWait %s: write timeout %s leaves no room for it", mw, to.write)
		}
	}
}

// TestServeHelpListsEveryVariable: every variable Config reads is in
// "candado serve --help".
func TestServeHelpListsEveryVariable(t *testing.T) {
	vars := function.Variables()
	for _, v := range vars {
		if !regexp.MustCompile(`(^|[\s,])` + v.Name + `([\s,]|$)`).MatchString(serveUsage) {
			t.Errorf("serve --help does not list %s", v.Name)
		}
	}
	if len(vars) < 10 {
		t.Fatalf("function.Variables lists only %d variables", len(vars))
	}
}
