package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"handler/function/bench/internal/drive"
	"handler/function/bench/internal/proc"
)

// memory prints Redis memory per held and per idle released lock, and the
// service's RSS per waiting acquire.
func memory(ctx context.Context, e *env) error {
	o := e.o
	rdb := redis.NewClient(&redis.Options{Addr: e.redis.Addr, Protocol: 2, PoolSize: 64})
	defer rdb.Close()
	fmt.Printf("## Memory\n\n")
	fmt.Printf("Redis used_memory (INFO memory) over an empty database, %d locks, Candado's keys (prefix candado:, the lock package's scripts):\n\n", o.memLocks)
	fmt.Println("| state | keys left | bytes per lock |")
	fmt.Println("| --- | ---: | ---: |")
	d := drive.NewDirect(e.redis.Addr, "candado:")
	defer d.Close()
	ids := func(i int) string { return "mem-" + strconv.Itoa(i) }
	// Open every connection both clients will use before the first figure:
	// a connection's buffers count in used_memory too.
	if err := parallel(ctx, 10000, func(i int) error {
		if err := rdb.Ping(ctx).Err(); err != nil {
			return err
		}
		if _, err := d.Acquire(ctx, "warm-"+strconv.Itoa(i), "o", 0); err != nil {
			return err
		}
		return d.Release(ctx, "warm-"+strconv.Itoa(i), "o")
	}); err != nil {
		return err
	}
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return err
	}
	// Redis shrinks the query buffers of clients idle for 2s: wait for that
	// before each figure, so buffers do not count as locks.
	settle := func() { time.Sleep(2500 * time.Millisecond) }
	settle()
	before, err := usedMemory(ctx, rdb)
	if err != nil {
		return err
	}
	if err := parallel(ctx, o.memLocks, func(i int) error {
		_, err := d.Acquire(ctx, ids(i), "owner-"+strconv.Itoa(i), 0)
		return err
	}); err != nil {
		return err
	}
	held, err := usedMemory(ctx, rdb)
	if err != nil {
		return err
	}
	keys, _ := rdb.DBSize(ctx).Result()
	fmt.Printf("| held | %d | %.0f |\n", keys, float64(held-before)/float64(o.memLocks))
	if err := parallel(ctx, o.memLocks, func(i int) error {
		return d.Release(ctx, ids(i), "owner-"+strconv.Itoa(i))
	}); err != nil {
		return err
	}
	justReleased, _ := usedMemory(ctx, rdb)
	keys, _ = rdb.DBSize(ctx).Result()
	fmt.Printf("| just released (tombstones live, some expired already) | %d | %.0f |\n", keys, float64(justReleased-before)/float64(o.memLocks))
	// Wait for the tombstones to expire (Redis' active expiry).
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if keys, err = rdb.DBSize(ctx).Result(); err != nil || keys == 0 {
			break
		}
	}
	settle()
	idle, err := usedMemory(ctx, rdb)
	if err != nil {
		return err
	}
	// Against an emptied database measured now, not the figure from before
	// the run: allocator and buffer state drifts by a few bytes per lock.
	rdb.FlushAll(ctx)
	settle()
	empty, err := usedMemory(ctx, rdb)
	if err != nil {
		return err
	}
	fmt.Printf("| idle released, after the tombstones (against FLUSHALL now) | %d | %.1f |\n", keys, float64(idle-empty)/float64(o.memLocks))

	// The seed's key, for scale.
	rdb.FlushAll(ctx)
	settle()
	before, _ = usedMemory(ctx, rdb)
	if err := parallel(ctx, o.memLocks, func(i int) error {
		return rdb.SetNX(ctx, "seed:"+ids(i), 1, 0).Err()
	}); err != nil {
		return err
	}
	seedHeld, _ := usedMemory(ctx, rdb)
	fmt.Printf("| the seed's held lock (one SETNX key), for scale | %d | %.0f |\n", o.memLocks, float64(seedHeld-before)/float64(o.memLocks))
	rdb.FlushAll(ctx)

	fmt.Printf("\nService RSS per waiting acquire, %d waiters (one connection each), fresh process each row:\n\n", o.waiters)
	fmt.Println("| server | waiters on | RSS before | RSS with the waiters | bytes per waiter |")
	fmt.Println("| --- | --- | ---: | ---: | ---: |")
	for _, row := range []struct {
		name, bin string
		env       []string
		locks     int
	}{
		{"Candado", e.bins["candado"], []string{"CANDADO_REDIS_URL=redis://" + e.redis.Addr}, 1},
		{"Candado", e.bins["candado"], []string{"CANDADO_REDIS_URL=redis://" + e.redis.Addr}, o.waiters},
		{"the HTTP floor", e.bins["floor"], nil, 1},
	} {
		before, with, err := waiterRSS(ctx, row.bin, row.env, o.waiters, row.locks)
		if err != nil {
			return fmt.Errorf("%s, %d waiters on %d locks: %w", row.name, o.waiters, row.locks, err)
		}
		on := "1 lock"
		if row.locks > 1 {
			on = strconv.Itoa(row.locks) + " locks"
		}
		fmt.Printf("| %s | %s | %.1f MB | %.1f MB | %.0f |\n", row.name, on, float64(before)/1e6, float64(with)/1e6, float64(with-before)/float64(o.waiters))
	}
	return nil
}

func usedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no used_memory in INFO memory")
}

// parallel runs f(0..n-1) on 64 workers and returns the first error.
func parallel(ctx context.Context, n int, f func(int) error) error {
	var next atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		return err
	}
	return ctx.Err()
}

// waiterRSS starts bin, holds locks locks, and measures its RSS before and
// while waiters acquires wait on them (client i on lock i mod locks).
func waiterRSS(ctx context.Context, bin string, env []string, waiters, locks int) (int64, int64, error) {
	srv, err := proc.StartServer(bin, env, "/healthz")
	if err != nil {
		return 0, 0, err
	}
	defer srv.Stop()
	holder := drive.NewHTTP("holder", srv.Base, 8)
	defer holder.Close()
	if err := parallel(ctx, locks, func(i int) error {
		_, err := holder.Acquire(ctx, "wait-"+strconv.Itoa(i), "holder", 0)
		return err
	}); err != nil {
		return 0, 0, err
	}
	// Some cycles first, so the before figure is of a warm process.
	if r := drive.RunCycles(ctx, holder, "warm-", 4, 300*time.Millisecond); r.Errors > 0 {
		return 0, 0, fmt.Errorf("warm-up: %v", r.FirstErr)
	}
	time.Sleep(300 * time.Millisecond)
	before, err := srv.RSS()
	if err != nil {
		return 0, 0, err
	}
	wctx, cancel := context.WithCancel(ctx)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableKeepAlives: true}}
	var wrote atomic.Int64
	var wg sync.WaitGroup
	pace := make(chan struct{}, 256) // dials in flight, so the listen backlog never overflows
	for i := range waiters {
		select {
		case pace <- struct{}{}:
		case <-ctx.Done():
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			unpace := func() { once.Do(func() { <-pace }) }
			trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) {
				wrote.Add(1)
				unpace()
			}}
			u := srv.Base + "/acquire/wait-" + strconv.Itoa(i%locks) + "?ttl=60000&wait=60000&owner=" + url.QueryEscape("w"+strconv.Itoa(i))
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(wctx, trace), http.MethodGet, u, nil)
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			unpace()
		}()
	}
	var with int64
	for deadline := time.Now().Add(60 * time.Second); wrote.Load() < int64(waiters) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if n := wrote.Load(); n < int64(waiters) {
		cancel()
		wg.Wait()
		return 0, 0, fmt.Errorf("only %d of %d waiters sent their acquire in 60s", n, waiters)
	}
	// Let the server read them all and subscribe; take the highest of a
	// few samples.
	for range 10 {
		time.Sleep(100 * time.Millisecond)
		if r, err := srv.RSS(); err == nil && r > with {
			with = r
		}
	}
	cancel()
	wg.Wait()
	return before, with, nil
}
