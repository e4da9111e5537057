//go:build integration

package lock_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"handler/function/function/lock"
	"handler/function/function/redistest"
)

// BenchmarkModes measures acquire→release cycles on each backend mode, in
// parallel, every goroutine on its own lock id, against real redis-server
// processes on this machine. It reports cycles per second and the p99
// latency of one cycle.
//
//	go test -tags integration -run '^$' -bench Modes -benchtime 2s ./function/lock/
func BenchmarkModes(b *testing.B) {
	modes := []struct {
		name  string
		store func(b *testing.B) lock.Store
	}{
		{"single", func(b *testing.B) lock.Store {
			srv := redistest.Start(b)
			return lock.NewRedisStore(redis.NewClient(tuning(&redis.Options{Addr: srv.Addr()})), lock.RedisOptions{Prefix: "bench:", Timeout: opTimeout})
		}},
		{"sentinel", func(b *testing.B) lock.Store {
			return lock.NewRedisStore(startSentinels(b).client(), lock.RedisOptions{Prefix: "bench:", Timeout: opTimeout})
		}},
		{"cluster3", func(b *testing.B) lock.Store {
			return lock.NewRedisStore(clusterClient(redistest.StartCluster(b, 3)), lock.RedisOptions{Prefix: "bench:", Timeout: opTimeout, Sharded: true})
		}},
		{"quorum3", func(b *testing.B) lock.Store { _, q := startQuorum(b, 3); return q }},
		{"quorum5", func(b *testing.B) lock.Store { _, q := startQuorum(b, 5); return q }},
	}
	for _, m := range modes {
		// Set up once per mode, outside the sub-benchmark, which runs again
		// for every b.N it tries.
		s := m.store(b)
		b.Run(m.name, func(b *testing.B) {
			ctx := context.Background()
			var (
				next  atomic.Int64
				mu    sync.Mutex
				lats  []time.Duration
				fails atomic.Int64
			)
			b.SetParallelism(8)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				id := fmt.Sprintf("bench/%d", next.Add(1))
				owner := lock.NewOwner()
				local := make([]time.Duration, 0, 1024)
				for pb.Next() {
					t0 := time.Now()
					if _, err := s.Acquire(ctx, lock.AcquireRequest{ID: id, Owner: owner, TTL: 10 * time.Second}); err != nil {
						fails.Add(1)
						continue
					}
					if _, err := s.Release(ctx, id, owner); err != nil {
						fails.Add(1)
						continue
					}
					local = append(local, time.Since(t0))
				}
				mu.Lock()
				lats = append(lats, local...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			b.StopTimer()
			if n := fails.Load(); n > 0 {
				b.Fatalf("%d of %d cycles failed", n, b.N)
			}
			slices.Sort(lats)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "cycles/s")
			if len(lats) > 0 {
				b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
		s.Close()
	}
}
