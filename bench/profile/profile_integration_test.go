//go:build integration

package profile

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"handler/function/bench/internal/drive"
	"handler/function/bench/internal/floor"
	"handler/function/bench/internal/seed"
	"handler/function/function"
	"handler/function/function/redistest"
)

// clients is the concurrency profiled: the C=8.
const clients = 8

// BenchmarkCycles measures acquire→release cycles with clients concurrent
// clients, each on its own lock, against each target in this process.
func BenchmarkCycles(b *testing.B) {
	rs := redistest.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	cfg := function.Config{RedisURL: rs.URL(), Port: 8080, KeyPrefix: "candado:", DefaultTTL: 30 * time.Second,
		MaxTTL: time.Hour, MaxWait: time.Minute, EventSource: "/candado", BackendTimeout: 500 * time.Millisecond}
	svc, err := function.NewService(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	for _, t := range []struct {
		name string
		drv  func() (drive.Driver, func())
	}{
		{"candado", func() (drive.Driver, func()) {
			s := httptest.NewServer(svc)
			return drive.NewHTTP("candado", s.URL, clients), s.Close
		}},
		{"seed", func() (drive.Driver, func()) {
			s := httptest.NewServer(seed.Handler(rdb))
			return drive.NewHTTP("seed", s.URL, clients), s.Close
		}},
		{"floor", func() (drive.Driver, func()) {
			s := httptest.NewServer(floor.Handler())
			return drive.NewHTTP("floor", s.URL, clients), s.Close
		}},
		{"direct", func() (drive.Driver, func()) {
			return drive.NewDirect(rs.Addr(), "direct:"), func() {}
		}},
	} {
		b.Run(t.name, func(b *testing.B) {
			d, stop := t.drv()
			defer stop()
			defer d.Close()
			ctx := context.Background()
			var next atomic.Int64
			b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				i := next.Add(1)
				id, owner := "p-"+strconv.FormatInt(i, 10), "o-"+strconv.FormatInt(i, 10)
				for pb.Next() {
					if _, err := d.Acquire(ctx, id, owner, 0); err != nil {
						b.Error(err)
						return
					}
					if err := d.Release(ctx, id, owner); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "cycles/s")
		})
	}
}
