package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"

	"handler/function/bench/internal/drive"
	"handler/function/bench/internal/proc"
)

func numCPU() int { return runtime.NumCPU() }

// targets are the five systems of the cycles table, started once.
type targets struct {
	seed, candado, etcd, direct, floor drive.Driver
	compare                            drive.Driver   // cmd/candado of -compare, or nil
	all                                []drive.Driver // in table order
	http                               []httpTarget   // the server processes
	stop                               []func()
}

// httpTarget is a server process and its driver.
type httpTarget struct {
	drv  drive.Driver
	proc *proc.Server
}

// maxConns bounds each HTTP driver's keep-alive pool.
const maxConns = 64

func (e *env) targets(ctx context.Context) (*targets, error) {
	t := &targets{}
	ok := false
	defer func() {
		if !ok {
			t.close()
		}
	}()
	redisURL := "CANDADO_REDIS_URL=redis://" + e.redis.Addr
	var last *proc.Server
	start := func(bin string, env ...string) (string, error) {
		s, err := proc.StartServer(bin, env, "/healthz")
		if err != nil {
			return "", err
		}
		t.stop = append(t.stop, s.Stop)
		last = s
		return s.Base, nil
	}
	base, err := start(e.bins["seed"], redisURL)
	if err != nil {
		return nil, err
	}
	t.seed = drive.NewHTTP("the seed (HTTP, SETNX/DEL: no TTL, no owner, no fence)", base, maxConns)
	t.http = append(t.http, httpTarget{t.seed, last})
	base, err = start(e.bins["candado"], redisURL)
	if err != nil {
		return nil, err
	}
	t.candado = drive.NewHTTP("Candado", base, maxConns)
	t.http = append(t.http, httpTarget{t.candado, last})
	if bin, ok := e.bins["compare"]; ok {
		base, err = start(bin, redisURL)
		if err != nil {
			return nil, err
		}
		t.compare = drive.NewHTTP("Candado@"+e.o.compare, base, maxConns)
		t.http = append(t.http, httpTarget{t.compare, last})
	}
	etcdDir := e.dir
	if e.o.etcdTmpfs {
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			shm, err := os.MkdirTemp("/dev/shm", "candado-bench-etcd")
			if err != nil {
				return nil, err
			}
			t.stop = append(t.stop, func() { os.RemoveAll(shm) })
			etcdDir = shm
		}
	}
	etcd, err := proc.StartEtcd(etcdDir)
	if err != nil {
		return nil, err
	}
	t.stop = append(t.stop, etcd.Stop)
	ed, err := drive.NewEtcd(etcd.Endpoint)
	if err != nil {
		return nil, err
	}
	t.etcd = ed
	t.direct = drive.NewDirect(e.redis.Addr, "direct:")
	base, err = start(e.bins["floor"])
	if err != nil {
		return nil, err
	}
	t.floor = drive.NewHTTP("the HTTP floor (bare Go HTTP server, locks in memory)", base, maxConns)
	t.http = append(t.http, httpTarget{t.floor, last})
	t.all = []drive.Driver{t.seed, t.candado, t.etcd, t.direct, t.floor}
	if t.compare != nil {
		t.all = slices.Insert(t.all, 2, t.compare)
	}
	// Warm every target up: connections, script caches, and etcd's
	// sessions, one per owner, for as many clients as any table runs.
	warm := e.o.contended
	for _, c := range e.o.conc {
		warm = max(warm, c)
	}
	for _, d := range t.all {
		if r := drive.RunCycles(ctx, d, "warm-", warm, 500*time.Millisecond); r.N == 0 || r.Errors > 0 {
			return nil, fmt.Errorf("%s does not work: %d cycles, %d errors, first %v", d.Name(), r.N, r.Errors, r.FirstErr)
		}
	}
	ok = true
	return t, nil
}

func (t *targets) close() {
	for _, d := range []drive.Driver{t.seed, t.candado, t.compare, t.etcd, t.direct, t.floor} {
		if d != nil {
			d.Close()
		}
	}
	for _, s := range slices.Backward(t.stop) {
		s()
	}
}

// rotated is drivers starting at the run-th, so each target takes each
// place in the order across runs: load from one run does not always fall
// on the same neighbour.
func rotated[T any](xs []T, run int) []T {
	k := run % len(xs)
	return append(append([]T{}, xs[k:]...), xs[:k]...)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func medianDur(xs []time.Duration) time.Duration {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
