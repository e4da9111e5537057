package function

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
)

func TestWarm(t *testing.T) {
	m := miniredis.RunT(t)
	svc, err := NewService(testConfig("redis://"+m.Addr()), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(func() { srv.Close(); svc.Close() })
	if err := svc.Warm(context.Background()); err != nil {
		t.Fatal(err)
	}
	call(t, srv, "GET", "/acquire/w?owner=o", "").want(t, 200, "")
	call(t, srv, "GET", "/release/w?owner=o", "").want(t, 200, "")
}

// Warm with Redis down returns within its bound, and the service answers
// as it would have: 503, and not ready.
func TestWarmRedisDown(t *testing.T) {
	m := miniredis.RunT(t)
	addr := m.Addr()
	m.Close()
	svc, err := NewService(testConfig("redis://"+addr), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(func() { srv.Close(); svc.Close() })
	ctx := context.Background()
	start := time.Now()
	if err := svc.Warm(ctx); err == nil {
		t.Fatal("Warm with Redis down succeeded")
	}
	if d := time.Since(start); d > WarmTimeout {
		t.Fatalf("Warm with Redis down took %v", d)
	}
	call(t, srv, "GET", "/acquire/w", "").want(t, 503, "unavailable")
	call(t, srv, "GET", "/readyz", "").want(t, 503, "unavailable")
	if err := m.StartAddr(addr); err != nil {
		t.Fatal(err)
	}
	var a answer
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if a = call(t, srv, "GET", "/acquire/w?owner=o", ""); a.Status == 200 {
			break
		}
	}
	a.want(t, 200, "")
}

// An unusable configuration has nothing to warm.
func TestWarmUnusable(t *testing.T) {
	svc, err := NewService(testConfig(""), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if err := svc.Warm(context.Background()); err != nil {
		t.Fatalf("Warm of an unusable service: %v", err)
	}
}
