package watch

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// An idle stream gets a comment line every Keepalive, and ends by itself
// before the deadline's margin, after a retry line for EventSource.
func TestIdleStreamKeepsAliveAndEndsBeforeTheDeadline(t *testing.T) {
	f := NewFeed(newFakeSource(), 10, 0)
	defer f.Close()
	// Deadline 2s: the stream lasts 2s - Margin(2s) = 1s.
	srv := httptest.NewServer(&Handler{Feed: f, Deadline: 2 * time.Second, Keepalive: 100 * time.Millisecond})
	defer srv.Close()
	start := time.Now()
	resp, err := http.Get(srv.URL + "/watch/k")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", resp.Header)
	}
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	took := time.Since(start)
	text := strings.Join(lines, "\n")
	if took < 900*time.Millisecond || took > 1900*time.Millisecond {
		t.Errorf("stream lasted %v, want about 1s (before the 2s deadline)", took)
	}
	if !strings.HasPrefix(text, "retry: 500") || !strings.Contains(text, "event: state") {
		t.Errorf("stream %q: want a retry line, then the state", text)
	}
	if n := strings.Count(text, ": keepalive"); n < 4 {
		t.Errorf("%d keepalive comments in about 1s at 100ms, want several:\n%s", n, text)
	}
	if f.Watchers() != 0 {
		t.Errorf("%d watchers left after the stream ended", f.Watchers())
	}
}
