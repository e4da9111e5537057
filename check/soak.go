package check

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"handler/function/function"
)

// SoakOptions size a soak run.
type SoakOptions struct {
	Duration time.Duration
	Locks    int // distinct lock ids under churn
	Workers  int // clients taking and releasing (or abandoning) leases
	Waiters  int // clients waiting on hot locks, that time out or cancel
}

// Figures are the resource figures a soak compares before and after.
type Figures struct {
	Goroutines int
	FDs        int
	// RedisConns counts the service's connections to Redis; the probe's
	// own is not among them.
	RedisConns int
	RedisKeys  int64
	RSS        int64 // bytes
	HeapInuse  uint64
}

func (f Figures) String() string {
	return fmt.Sprintf("goroutines=%d fds=%d redis-conns=%d redis-keys=%d rss=%.1fMiB heap=%.1fMiB",
		f.Goroutines, f.FDs, f.RedisConns, f.RedisKeys, float64(f.RSS)/(1<<20), float64(f.HeapInuse)/(1<<20))
}

// SoakReport is a soak's outcome.
type SoakReport struct {
	Ops, Granted, Refused, WaitTimeouts, WaitGranted, Cancelled, Errors int64
	Baseline, After                                                     Figures
	Problems                                                            []string
}

func (r SoakReport) String() string {
	s := fmt.Sprintf("soak: ops=%d granted=%d refused=%d waits: granted=%d timed-out=%d cancelled=%d errors=%d\n  baseline: %s\n  after:    %s",
		r.Ops, r.Granted, r.Refused, r.WaitGranted, r.WaitTimeouts, r.Cancelled, r.Errors, r.Baseline, r.After)
	if len(r.Problems) == 0 {
		return s + "\n  ok: no leak"
	}
	return s + "\n  PROBLEMS: " + strings.Join(r.Problems, "; ")
}

// soakTTL bounds every lease of a soak; keys are gone soakTTL + 1 s after
// the load stops.
const soakTTL = time.Second

// soakPoolSize caps the service's Redis pool. A pool keeps the connections
// its busiest moment opened, so with the default cap (10 per CPU) the count
// after a run depended on that run's peak, and a healthy soak failed when
// the measured run peaked higher than the warm-up. Above the cap plus the
// subscriber connections, a connection is a leak.
const soakPoolSize = 4

// soakSubscribers is how many connections the service keeps outside its
// pool: one for the waiters' wake-ups and one for the watch feed.
const soakSubscribers = 2

// soakProbe names the soak's own Redis connection, which counts nothing.
const soakProbe = "candado-soak-probe"

// Soak runs a churning load (many lock ids, leases released or left to
// expire, waiters that time out or are cancelled) against an in-process
// service on redisURL, then checks that goroutines, file descriptors, Redis
// connections, Redis keys and RSS came back to their baseline.
func Soak(ctx context.Context, redisURL string, o SoakOptions) (SoakReport, error) {
	var rep SoakReport
	svcURL, err := withQuery(redisURL, "pool_size", strconv.Itoa(soakPoolSize))
	if err != nil {
		return rep, err
	}
	svc, err := function.NewService(ServiceConfig(svcURL), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return rep, err
	}
	srv := httptest.NewServer(svc)
	defer func() { svc.Shutdown(); srv.Close(); _ = svc.Close() }()
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return rep, err
	}
	opt.ClientName = soakProbe
	opt.PoolSize = 1
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	run := func(d time.Duration) {
		lctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		soakLoad(lctx, hc, srv.URL, o, &rep)
	}
	settle := func() (Figures, error) {
		tr.CloseIdleConnections()
		time.Sleep(soakTTL + time.Second + 200*time.Millisecond)
		return figures(ctx, rdb)
	}
	// Warm up with the same load, so pools and heap reach their working
	// size, then take the baseline once every lease has ended.
	run(min(o.Duration/4, 3*time.Second))
	if rep.Baseline, err = settle(); err != nil {
		return rep, err
	}
	rep = SoakReport{Baseline: rep.Baseline}
	run(o.Duration)
	if rep.After, err = settle(); err != nil {
		return rep, err
	}
	b, a := rep.Baseline, rep.After
	problem := func(format string, args ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...)) }
	if a.RedisKeys != 0 {
		problem("%d Redis keys left 1 s after every lease ended", a.RedisKeys)
	}
	if a.Goroutines > b.Goroutines+10 {
		problem("goroutines %d -> %d", b.Goroutines, a.Goroutines)
	}
	if a.FDs > b.FDs+10 {
		problem("file descriptors %d -> %d", b.FDs, a.FDs)
	}
	if a.RedisConns > soakPoolSize+soakSubscribers {
		problem("Redis connections %d -> %d, above the pool's cap of %d and %d subscribers", b.RedisConns, a.RedisConns, soakPoolSize, soakSubscribers)
	}
	if a.HeapInuse > b.HeapInuse+b.HeapInuse/2+16<<20 {
		problem("heap in use %.1f MiB -> %.1f MiB", float64(b.HeapInuse)/(1<<20), float64(a.HeapInuse)/(1<<20))
	}
	if !raceDetector && a.RSS > b.RSS+b.RSS/4+32<<20 {
		problem("RSS %.1f MiB -> %.1f MiB", float64(b.RSS)/(1<<20), float64(a.RSS)/(1<<20))
	}
	if rep.Errors > 0 {
		problem("%d error answers", rep.Errors)
	}
	return rep, nil
}

func soakLoad(ctx context.Context, hc *http.Client, base string, o SoakOptions, rep *SoakReport) {
	call := func(cctx context.Context, route, id string, q url.Values) (int, error) {
		req, err := http.NewRequestWithContext(cctx, http.MethodPost, base+"/"+route+"/"+id+"?"+q.Encode(), nil)
		if err != nil {
			return 0, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		atomic.AddInt64(&rep.Ops, 1)
		return resp.StatusCode, nil
	}
	hot := max(o.Waiters/20, 1)
	var wg sync.WaitGroup
	for i := 0; i < o.Workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))
			for n := 0; ctx.Err() == nil; n++ {
				id := "soak/" + strconv.Itoa(rng.IntN(o.Locks))
				if rng.IntN(10) == 0 {
					id = "hot/" + strconv.Itoa(rng.IntN(hot)) // hold a hot lock for the waiters
				}
				owner := fmt.Sprintf("w%d-%d", i, n)
				ttl := 100 + rng.IntN(int(soakTTL/time.Millisecond)-100)
				st, err := call(context.Background(), "acquire", id, url.Values{"owner": {owner}, "ttl": {strconv.Itoa(ttl)}})
				switch {
				case err != nil || st >= 500:
					atomic.AddInt64(&rep.Errors, 1)
					continue
				case st == http.StatusConflict:
					atomic.AddInt64(&rep.Refused, 1)
					continue
				}
				atomic.AddInt64(&rep.Granted, 1)
				time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
				if rng.IntN(5) != 0 { // else abandon it: the lease expires
					if st, err := call(context.Background(), "release", id, url.Values{"owner": {owner}}); err != nil || st >= 500 {
						atomic.AddInt64(&rep.Errors, 1)
					}
				}
			}
		}(i)
	}
	for i := 0; i < o.Waiters; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(1000+i)))
			for ctx.Err() == nil {
				id := "hot/" + strconv.Itoa(rng.IntN(hot))
				wait := 100 + rng.IntN(400)
				cctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(3) == 0 { // the caller gives up before the wait ends
					time.AfterFunc(time.Duration(rng.IntN(wait))*time.Millisecond, cancel)
				}
				owner := fmt.Sprintf("q%d-%d", i, rng.Int())
				st, err := call(cctx, "acquire", id, url.Values{"owner": {owner}, "ttl": {"300"}, "wait": {strconv.Itoa(wait)}})
				cancelled := cctx.Err() != nil
				cancel()
				switch {
				case err != nil && cancelled:
					atomic.AddInt64(&rep.Cancelled, 1)
				case err != nil || st >= 500:
					atomic.AddInt64(&rep.Errors, 1)
				case st == http.StatusConflict:
					atomic.AddInt64(&rep.WaitTimeouts, 1)
				default:
					atomic.AddInt64(&rep.WaitGranted, 1)
					_, _ = call(context.Background(), "release", id, url.Values{"owner": {owner}})
				}
			}
		}(i)
	}
	wg.Wait()
}

func figures(ctx context.Context, rdb *redis.Client) (Figures, error) {
	runtime.GC()
	debug.FreeOSMemory()
	var f Figures
	f.Goroutines = runtime.NumGoroutine()
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		f.FDs = len(ents)
	}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if fs := strings.Fields(string(b)); len(fs) > 1 {
			pages, _ := strconv.ParseInt(fs[1], 10, 64)
			f.RSS = pages * int64(os.Getpagesize())
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	f.HeapInuse = ms.HeapInuse
	list, err := rdb.ClientList(ctx).Result()
	if err != nil {
		return f, err
	}
	f.RedisConns = countClients(list)
	if f.RedisKeys, err = rdb.DBSize(ctx).Result(); err != nil {
		return f, err
	}
	return f, nil
}

// countClients counts the connections in a CLIENT LIST reply but the
// probe's own.
func countClients(list string) int {
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		if line != "" && !strings.Contains(" "+line+" ", " name="+soakProbe+" ") {
			n++
		}
	}
	return n
}

// withQuery returns rawURL with key=value added to its query.
func withQuery(rawURL, key, value string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
