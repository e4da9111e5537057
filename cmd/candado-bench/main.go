// Command candado-bench measures Candado on loopback against two baselines
// in one run: (a) Candado over HTTP on a private redis-server, (b) the same
// acquire→release cycles done directly with go-redis (SET NX PX and a
// compare-and-delete script: the no-HTTP ceiling), and (c) a bare net/http
// server answering the same routes with a fixed body of the same size (the
// HTTP floor of this machine). It also measures the handoff latency from a
// holder's release to a waiter's grant, and the binary's size and idle RSS.
// "coldstart" measures start-up against a hello-world server instead.
//
//	go run ./cmd/candado-bench [-d 3s] [-c 8,32]
//	go run ./cmd/candado-bench coldstart [-n 20]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"handler/function/function"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "coldstart" {
		fs := flag.NewFlagSet("coldstart", flag.ExitOnError)
		n := fs.Int("n", 20, "runs per binary")
		fs.Parse(os.Args[2:])
		if err := coldstart(*n); err != nil {
			fmt.Fprintln(os.Stderr, "candado-bench coldstart:", err)
			os.Exit(1)
		}
		return
	}
	dur := flag.Duration("d", 3*time.Second, "duration of each load run")
	conc := flag.String("c", "8,32", "comma-separated client counts")
	handoffs := flag.Int("handoffs", 200, "handoffs to time")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "candado-bench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*dur, *conc, *handoffs); err != nil {
		fmt.Fprintln(os.Stderr, "candado-bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// withRedis runs f with a temporary folder and a private redis-server in it.
func withRedis(f func(dir, redisAddr string) error) error {
	dir, err := os.MkdirTemp("", "candado-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	redisAddr, stopRedis, err := startRedis(dir)
	if err != nil {
		return err
	}
	defer stopRedis()
	return f(dir, redisAddr)
}

func run(dur time.Duration, conc string, handoffs int) error {
	return withRedis(func(dir, redisAddr string) error { return load3(dir, redisAddr, dur, conc, handoffs) })
}

// load3 drives the three targets and prints the figures.
func load3(dir, redisAddr string, dur time.Duration, conc string, handoffs int) error {
	cfg := function.Config{RedisURL: "redis://" + redisAddr, Port: 8080, KeyPrefix: "bench:", DefaultTTL: 30 * time.Second,
		MaxTTL: time.Hour, MaxWait: time.Minute, EventSource: "/candado", BackendTimeout: 500 * time.Millisecond}
	svc, err := function.NewService(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer svc.Close()
	candado, stopCandado, err := serve(svc)
	if err != nil {
		return err
	}
	defer stopCandado()
	floor, stopFloor, err := serve(floorHandler())
	if err != nil {
		return err
	}
	defer stopFloor()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, PoolSize: 64, Protocol: 2})
	defer rdb.Close()

	fmt.Printf("acquire→release cycles, each client on its own lock, %s per run\n", dur)
	fmt.Printf("%-4s %-22s %12s %10s %10s\n", "C", "target", "cycles/s", "p50", "p99")
	for _, f := range strings.Split(conc, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 {
			return fmt.Errorf("bad client count %q", f)
		}
		a := load(c, dur, httpCycle(candado, c))
		b := load(c, dur, redisCycle(rdb))
		fl := load(c, dur, httpCycle(floor, c))
		for _, r := range []struct {
			name string
			res  result
		}{{"(a) candado http", a}, {"(b) go-redis direct", b}, {"(c) bare net/http", fl}} {
			fmt.Printf("%-4d %-22s %12.0f %10s %10s\n", c, r.name, r.res.rate, r.res.p50.Round(time.Microsecond), r.res.p99.Round(time.Microsecond))
		}
		fmt.Printf("C=%d ratios: a/c = %.2f, a/b = %.2f\n", c, a.rate/fl.rate, a.rate/b.rate)
	}

	h, err := handoff(candado, handoffs)
	if err != nil {
		return err
	}
	fmt.Printf("handoff (release sent → waiter's grant answered), %d runs: p50 %s, p90 %s, max %s\n",
		handoffs, h[len(h)/2].Round(time.Microsecond), h[len(h)*9/10].Round(time.Microsecond), h[len(h)-1].Round(time.Microsecond))

	size, rss, err := binaryFigures(dir, redisAddr)
	if err != nil {
		return err
	}
	fmt.Printf("binary (-trimpath -ldflags '-s -w'): %.1f MB; idle RSS after start and one acquire: %.1f MB\n", float64(size)/1e6, float64(rss)/1e6)
	return nil
}

type result struct {
	rate     float64
	p50, p99 time.Duration
}

// load runs c clients doing cycle(client) for dur; cycle returns the
// acquire's latency.
func load(c int, dur time.Duration, cycle func(client int) (time.Duration, error)) result {
	var mu sync.Mutex
	var lat []time.Duration
	var errs int
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for i := 0; i < c; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) {
				d, err := cycle(i)
				if err != nil {
					mu.Lock()
					errs++
					mu.Unlock()
					continue
				}
				mine = append(mine, d)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	if errs > 0 {
		fmt.Fprintf(os.Stderr, "warning: %d failed cycles\n", errs)
	}
	if len(lat) == 0 {
		return result{}
	}
	slices.Sort(lat)
	return result{rate: float64(len(lat)) / dur.Seconds(), p50: lat[len(lat)/2], p99: lat[len(lat)*99/100]}
}

func httpCycle(base string, c int) func(int) (time.Duration, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c * 2, MaxIdleConns: c * 2}}
	return func(i int) (time.Duration, error) {
		id := "bench-" + strconv.Itoa(i)
		owner := "owner-" + strconv.Itoa(i)
		start := time.Now()
		if err := get(client, base+"/acquire/"+id+"?ttl=10s&owner="+owner); err != nil {
			return 0, err
		}
		d := time.Since(start)
		return d, get(client, base+"/release/"+id+"?owner="+owner)
	}
}

func get(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %d", url, resp.StatusCode)
	}
	return err
}

var compareAndDelete = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

func redisCycle(rdb *redis.Client) func(int) (time.Duration, error) {
	return func(i int) (time.Duration, error) {
		ctx := context.Background()
		key := "direct:{bench-" + strconv.Itoa(i) + "}"
		owner := "owner-" + strconv.Itoa(i)
		start := time.Now()
		ok, err := rdb.SetNX(ctx, key, owner, 10*time.Second).Result()
		if err != nil || !ok {
			return 0, fmt.Errorf("set nx: %v %v", ok, err)
		}
		d := time.Since(start)
		return d, compareAndDelete.Run(ctx, rdb, []string{key}, owner).Err()
	}
}

// floorHandler answers every route with a fixed envelope as large as
// Candado's acquire answer.
func floorHandler() http.Handler {
	body, _ := json.Marshal(map[string]any{"error": "", "code": "", "success": true,
		"data": map[string]any{"id": "bench-0", "state": 1, "owner": "owner-0", "fence": 1764130000000001, "ttl_ms": 10000}})
	body = append(body, '\n')
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(body)
	})
}

func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// handoff times release → the waiting acquire's answer, n times.
func handoff(base string, n int) ([]time.Duration, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	var out []time.Duration
	for i := 0; i < n; i++ {
		id := "handoff-" + strconv.Itoa(i)
		if err := get(client, base+"/acquire/"+id+"?owner=holder&ttl=10s"); err != nil {
			return nil, err
		}
		granted := make(chan time.Time, 1)
		errc := make(chan error, 1)
		go func() {
			err := get(client, base+"/acquire/"+id+"?owner=waiter&ttl=10s&wait=5s")
			granted <- time.Now()
			errc <- err
		}()
		time.Sleep(5 * time.Millisecond) // let the waiter subscribe
		sent := time.Now()
		if err := get(client, base+"/release/"+id+"?owner=holder"); err != nil {
			return nil, err
		}
		at := <-granted
		if err := <-errc; err != nil {
			return nil, err
		}
		out = append(out, at.Sub(sent))
		get(client, base+"/release/"+id+"?owner=waiter")
	}
	slices.Sort(out)
	return out, nil
}

// binaryFigures builds cmd/candado as the Dockerfile does and measures its
// size and its RSS once it has served one acquire.
func binaryFigures(dir, redisAddr string) (int64, int64, error) {
	bin := filepath.Join(dir, "candado")
	if err := buildStatic(bin, ".", "cmd/candado"); err != nil {
		return 0, 0, err
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return 0, 0, err
	}
	port, err := freePort()
	if err != nil {
		return 0, 0, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "CANDADO_REDIS_URL=redis://"+redisAddr, "CANDADO_PORT="+strconv.Itoa(port), "PORT=")
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(5 * time.Second); ; {
		if err := get(http.DefaultClient, base+"/acquire/rss?owner=o"); err == nil {
			break
		} else if time.Now().After(deadline) {
			return 0, 0, err
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	rss, err := rssOf(cmd.Process.Pid)
	return fi.Size(), rss, err
}

func rssOf(pid int) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startRedis runs a private redis-server on a free loopback port.
func startRedis(dir string) (string, func(), error) {
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("redis-server (make test installs it): %w", err)
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	for deadline := time.Now().Add(5 * time.Second); rdb.Ping(context.Background()).Err() != nil; {
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("redis-server on %s did not answer", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return addr, stop, nil
}
