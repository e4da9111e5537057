//go:build integration

package lock_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
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

// BenchmarkScriptCost measures what the scripts of one acquire→release
// cycle of a plain mutex cost Redis itself: the time redis-server spends
// in EVALSHA (its INFO commandstats usec_per_call), without the network
// and system calls around it, so that a change to a script can be judged
// on its own.
//
//	go test -tags integration -run '^$' -bench ScriptCost -benchtime 20000x ./function/lock/
func BenchmarkScriptCost(b *testing.B) {
	srv := redistest.Start(b)
	s := lock.NewRedisStore(redis.NewClient(tuning(&redis.Options{Addr: srv.Addr()})), lock.RedisOptions{Prefix: "bench:", Timeout: opTimeout})
	defer s.Close()
	ctx := context.Background()
	owner := lock.NewOwner()
	cycle := func(i int) {
		id := fmt.Sprintf("cost/%d", i)
		if _, err := s.Acquire(ctx, lock.AcquireRequest{ID: id, Owner: owner, TTL: 10 * time.Second}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Release(ctx, id, owner); err != nil {
			b.Fatal(err)
		}
	}
	cycle(-1) // loads the scripts
	rdb := srv.Client()
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		cycle(i)
	}
	b.StopTimer()
	stats, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var calls, usec float64
	for _, line := range strings.Split(stats, "\r\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_evalsha:"); ok {
			for _, f := range strings.Split(rest, ",") {
				k, v, _ := strings.Cut(f, "=")
				switch k {
				case "calls":
					calls, _ = strconv.ParseFloat(v, 64)
				case "usec":
					usec, _ = strconv.ParseFloat(v, 64)
				}
			}
		}
	}
	if calls < float64(2*b.N) {
		b.Fatalf("Redis counted %.0f EVALSHA calls for %d cycles", calls, b.N)
	}
	b.ReportMetric(usec/float64(b.N), "redis-µs/cycle")
}
