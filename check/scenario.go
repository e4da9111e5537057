package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"handler/function/check/faultproxy"
	"handler/function/function"
	"handler/function/function/api"
	"handler/function/function/httpapi"
	"handler/function/function/lock"
)

// Env is what a scenario needs of its runner (a test, or cmd/candado-verify).
type Env struct {
	// NewRedis starts a private redis-server, stopped when the run ends.
	NewRedis func() Redis
	// NewRedisArgs is NewRedis with extra redis-server arguments (the
	// cluster scenarios start cluster nodes with it).
	NewRedisArgs func(args ...string) Redis
	// TempDir returns a fresh directory removed when the run ends.
	TempDir func() string
	// Cleanup registers f to run when the run ends (last in, first out).
	Cleanup func(f func())
	// Logf logs progress.
	Logf func(format string, args ...any)
	// Candado returns the path of a built cmd/candado (built once per run).
	Candado func() (string, error)
}

// Options size a scenario run.
type Options struct {
	Ops     int           // operations to record
	Max     time.Duration // cap on the load's length
	Clients int
	Locks   int           // lock ids; 0 picks about one per 200 operations
	Timeout time.Duration // cap on the porcupine check
	Seed    uint64
}

// Report is a scenario's outcome.
type Report struct {
	Scenario string
	Verdict  Verdict
	// Fair is the grant-order check, in the scenarios that run it.
	Fair    FairReport
	Peak    int // see PeakLeases
	Faults  int
	Counter CounterReport
	Stats   Stats
	Took    time.Duration
}

// Violations counts broken guarantees: a history that is not linearizable,
// grants out of a fair queue's order, lost or doubled increments of the
// fenced counter, and answers that fit no rule of the contract.
func (r Report) Violations() int {
	return r.Verdict.Violations() + r.Fair.Violations + r.Counter.Mismatched + int(r.Stats.BadAnswers)
}

// Caught reports whether the run of a broken lock (BrokenScenarios) caught
// its defect: an unfair queue by the grant-order check, the others by the
// history check.
func (r Report) Caught() bool {
	if r.Scenario == "broken-fair" {
		return r.Fair.Violations > 0
	}
	return r.Verdict.Violations() > 0
}

// Line is the report as one line: scenario, operations checked, faults
// injected, violations, and the figures behind them.
func (r Report) Line() string {
	s := fmt.Sprintf("%-17s ops=%-6d faults=%-4d violations=%d  [check=%s unknown=%d counter=%d/%d stale=%d pauses=%d bad=%d took=%s check-time=%s]",
		r.Scenario, r.Verdict.Ops, r.Faults, r.Violations(), r.Verdict.Result, r.Verdict.Unknown,
		r.Counter.Accepted, r.Counter.Total, r.Counter.Stale, r.Stats.Pauses, r.Stats.BadAnswers,
		r.Took.Round(100*time.Millisecond), r.Verdict.Took.Round(time.Millisecond))
	if r.Peak > 1 {
		s += fmt.Sprintf(" [peak=%d leases at once]", r.Peak)
	}
	if r.Fair.Checked {
		s += fmt.Sprintf(" [grant order: %d out of order, %d grants, %d long waiters]", r.Fair.Violations, r.Fair.Grants, r.Fair.Waiters)
	}
	if r.Fair.First != "" {
		s += "\n    first grant out of order: " + r.Fair.First
	}
	if r.Verdict.Visualization != "" {
		s += "\n    visualization: " + r.Verdict.Visualization
	}
	if r.Verdict.Transcript != "" {
		s += "\n    transcript: " + r.Verdict.Transcript
	}
	if r.Verdict.Relaxed != "" {
		s += "\n    ignoring the fences of 409s: " + string(r.Verdict.Relaxed)
	}
	if r.Verdict.Exclusive != "" {
		s += "\n    without the refused acquires (mutual exclusion alone): " + string(r.Verdict.Exclusive)
	}
	if r.Stats.LastBad != "" {
		s += "\n    last bad answer: " + r.Stats.LastBad
	}
	return s
}

// Scenarios are the scenario names, in the order `all` runs them: the
// mutex scenarios, their variants of other lock shapes (see variants), and
// fair-queue.
var Scenarios = scenarioNames()

// BrokenScenarios run deliberately broken locks, which the checks must
// catch (Report.Caught).
var BrokenScenarios = []string{"broken", "broken-release", "broken-fair"}

// mutexScenarios are the scenarios of mutexes, each with its own faults.
var mutexScenarios = []string{"baseline", "redis-restart", "redis-pause", "proxy", "service-kill", "two-services", "quorum", "quorum5", "quorum-reacquire", "cluster-reset"}

// SemaphoreLimit is the limit of the semaphores of the -sem variants.
const SemaphoreLimit = 3

// variants are the other lock shapes: NAME-sem runs scenario NAME's faults
// with every lock id a semaphore, NAME-rw with locks of shared and
// exclusive leases (3 acquires in 5 shared), with holder labels. The
// quorum scenarios have none: quorum mode refuses both shapes (400
// unsupported).
var variants = []struct {
	suffix string
	shape  Shape
}{{"-sem", Shape{Limit: SemaphoreLimit}}, {"-rw", Shape{SharedPct: 60}}}

// variantBases are the scenarios that have variants.
var variantBases = []string{"baseline", "redis-restart", "redis-pause", "proxy", "service-kill", "two-services", "cluster-reset"}

// fairChecked are the scenarios whose grant order CheckFair checks: those
// in which no fault slows the service's path to Redis, which FairMargin
// assumes (a Redis paused or behind a slow proxy takes the first try of a
// waiter past any margin).
var fairChecked = map[string]bool{"fair-queue": true, "broken-fair": true,
	"baseline-sem": true, "baseline-rw": true, "two-services-sem": true, "two-services-rw": true,
	"service-kill-sem": true, "service-kill-rw": true}

func scenarioNames() []string {
	names := append([]string(nil), mutexScenarios...)
	for _, b := range variantBases {
		for _, v := range variants {
			names = append(names, b+v.suffix)
		}
	}
	return append(names, "fair-queue")
}

// splitVariant is a scenario name's base scenario and, for a variant, its
// lock shape.
func splitVariant(name string) (base string, shape Shape, ok bool) {
	for _, v := range variants {
		if b, found := strings.CutSuffix(name, v.suffix); found && slices.Contains(variantBases, b) {
			return b, v.shape, true
		}
	}
	return name, Shape{}, false
}

// TTL is the lease length of every scenario: short, so holders paused past
// it and Redis paused past it happen often.
const TTL = 200 * time.Millisecond

// RunScenario runs a scenario by name (Scenarios; NAME-sem and NAME-rw run
// NAME's faults against other lock shapes). "broken" runs the baseline load
// against a lock that grants a held lock, "broken-release" one that
// releases for anyone, "broken-fair" one that waits without a queue: the
// checks must catch them (Report.Caught).
func RunScenario(ctx context.Context, env Env, name string, o Options) (Report, error) {
	base, shape, variant := splitVariant(name)
	o = o.withDefaults(base)
	start := time.Now()
	load := Load{Clients: o.Clients, Locks: o.Locks, Ops: o.Ops, Max: o.Max, TTL: TTL,
		MaxWait: 150 * time.Millisecond, PauseOneIn: 15, Seed: o.Seed}
	if variant {
		load.Shapes, load.Holder = []Shape{shape}, true
	}
	rec, counter := NewRecorder(), NewCounter()
	targets, fault, err := setUp(env, base, o, rec, &load)
	if err != nil {
		return Report{}, err
	}

	stop := make(chan struct{})
	faults := make(chan int, 1)
	if fault != nil {
		go func() { faults <- fault(stop) }()
	} else {
		faults <- 0
	}
	stats := Run(ctx, load, targets, rec, counter)
	close(stop)
	rep := Report{Scenario: name, Faults: <-faults, Stats: stats}
	history := rec.History()
	rep.Verdict = Check(name, history, o.Timeout)
	rep.Peak = PeakLeases(history)
	if fairChecked[name] {
		rep.Fair = CheckFair(history, FairMargin)
	}
	rep.Counter = counter.Report()
	rep.Took = time.Since(start)
	return rep, nil
}

// withDefaults fills o's zero fields for scenario name.
func (o Options) withDefaults(name string) Options {
	if o.Clients == 0 {
		o.Clients = 16
	}
	if o.Locks == 0 {
		// About 200 operations per lock id: each id is one porcupine
		// partition, and the operations of unknown outcome (which stay
		// pending to the end of the history) make a partition's search
		// grow fast with their number.
		o.Locks = max(8, o.Ops/200)
		if strings.HasPrefix(name, "quorum") || name == "proxy" {
			// Contended quorum acquires answer 503 (ErrContended), and the
			// proxy's dropped and late answers are 503s too, so these
			// histories carry more unknown outcomes: spread them thinner.
			// (With 8 ids the proxy's check timed out on a loaded machine.)
			o.Locks = max(24, o.Ops/60)
		}
		if name == "fair-queue" || name == "broken-fair" {
			o.Locks = len(fairShapes) // one queue of each shape, long
		}
	}
	if o.Max == 0 {
		o.Max = 10 * time.Minute
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}
	return o
}

// faultFunc injects faults until stop closes and returns how many.
type faultFunc func(stop <-chan struct{}) int

// setUp starts what scenario name runs against: the services the clients
// call (targets) and the faults injected meanwhile (nil: none).
func setUp(env Env, name string, o Options, rec *Recorder, load *Load) (targets []string, fault faultFunc, err error) {
	switch name {
	case "baseline":
		r := env.NewRedis()
		return []string{inProcess(env, r.URL())}, nil, nil
	case "two-services":
		r := env.NewRedis()
		return []string{inProcess(env, r.URL()), inProcess(env, r.URL())}, nil, nil
	case "broken":
		r := env.NewRedis()
		return []string{brokenService(env, r.URL(), BrokenGrant)}, nil, nil
	case "broken-release":
		r := env.NewRedis()
		return []string{brokenService(env, r.URL(), BrokenRelease)}, nil, nil
	case "redis-restart":
		targets, fault = redisRestart(env, rec, o.Clients)
		return targets, fault, nil
	case "redis-pause":
		targets, fault = redisPause(env)
		return targets, fault, nil
	case "proxy":
		return proxyFaults(env)
	case "service-kill":
		return serviceKill(env)
	case "quorum", "quorum5":
		targets, fault = quorumMinorityFaults(env, name)
		return targets, fault, nil
	case "quorum-reacquire":
		targets, fault = quorumReacquire(env, load)
		return targets, fault, nil
	case "cluster-reset":
		return clusterReset(env)
	case "fair-queue":
		return fairQueue(env, load)
	case "broken-fair":
		fairLoad(load, nil)
		r := env.NewRedis()
		return []string{brokenService(env, r.URL(), BrokenFair)}, nil, nil
	}
	return nil, nil, fmt.Errorf("unknown scenario %q (have %v, %v)", name, Scenarios, BrokenScenarios)
}

// redisRestart kills and restarts the one Redis, marking each loss in the
// history (clients is the marker's porcupine client id).
func redisRestart(env Env, rec *Recorder, clients int) ([]string, faultFunc) {
	r := env.NewRedis()
	return []string{inProcess(env, r.URL())}, every(700*time.Millisecond, func() {
		in := Input{Kind: Lose, Call: rec.Now()}
		r.Kill()
		in.Ret = rec.Now()
		rec.Add(clients, in, Output{Result: OK})
		time.Sleep(500 * time.Millisecond) // past the backend timeout: callers get 503s
		r.Restart()
	})
}

// redisPause pauses the one Redis for three TTLs at a time.
func redisPause(env Env) ([]string, faultFunc) {
	r := env.NewRedis()
	return []string{inProcess(env, r.URL())}, every(700*time.Millisecond, func() {
		r.Pause()
		time.Sleep(3 * TTL)
		r.Resume()
	})
}

// proxyFaults puts a fault proxy between the service and Redis: a slow
// network, reset connections and a partition that heals, in turn.
func proxyFaults(env Env) ([]string, faultFunc, error) {
	r := env.NewRedis()
	p, err := faultproxy.Start(r.Addr())
	if err != nil {
		return nil, nil, err
	}
	env.Cleanup(func() { p.Close() })
	n := 0
	return []string{inProcess(env, "redis://"+p.Addr()+"/0")}, every(400*time.Millisecond, func() {
		switch n % 3 {
		case 0: // slow network: under and around the backend timeout
			p.SetLatency(time.Duration(40+n%4*60) * time.Millisecond)
			time.Sleep(400 * time.Millisecond)
			p.SetLatency(0)
		case 1: // connections reset
			p.DropAll()
		case 2: // partition that heals: bytes held back, then delivered
			p.SetBlackhole(true)
			time.Sleep(500 * time.Millisecond)
			p.SetBlackhole(false)
		}
		n++
	}), nil
}

// serviceKill runs the service as a process and kills and restarts it.
func serviceKill(env Env) ([]string, faultFunc, error) {
	base, fault, err := killedService(env, env.NewRedis().URL(), "service-kill", 700*time.Millisecond)
	return []string{base}, fault, err
}

// killedService runs the service on redisURL as a process, and a fault that
// kills and restarts it every period; it returns the service's base URL.
func killedService(env Env, redisURL, scenario string, period time.Duration) (string, faultFunc, error) {
	bin, err := env.Candado()
	if err != nil {
		return "", nil, err
	}
	svc, err := startProcess(env, bin, redisURL)
	if err != nil {
		return "", nil, err
	}
	return svc.base, every(period, func() {
		if err := svc.restart(); err != nil {
			env.Logf("%s: %v", scenario, err)
		}
	}), nil
}

// quorumMinorityFaults runs independent masters in quorum mode; a minority
// of them is killed (and restarted empty) or paused at a time. No Lose
// marker: losing a minority must lose no lease. quorum5 spreads its clients
// over two service instances.
func quorumMinorityFaults(env Env, name string) ([]string, faultFunc) {
	n, down, services := 3, 1, 1
	if name == "quorum5" {
		n, down, services = 5, 2, 2
	}
	masters := make([]Redis, n)
	urls := make([]string, n)
	for i := range masters {
		masters[i] = env.NewRedis()
		urls[i] = masters[i].URL()
	}
	var targets []string
	for range services {
		targets = append(targets, inProcessConfig(env, QuorumConfig(urls)))
	}
	return targets, every(700*time.Millisecond, quorumFaults(masters, down))
}

// every runs f every d until stop closes, and returns how often it ran.
func every(d time.Duration, f func()) func(<-chan struct{}) int {
	return func(stop <-chan struct{}) int {
		n := 0
		for {
			select {
			case <-stop:
				return n
			case <-time.After(d):
			}
			f()
			n++
		}
	}
}

// quorumFaults takes down `down` masters at a time (a minority), rotating
// over them: killed and restarted empty, paused, or (when two go down) one
// of each. A killed master stays down for QuorumDown, longer than any lease
// the workload takes, so no lease it held is still live when it comes back
// empty: restarting it sooner could let a second majority form, Redlock's
// documented caveat, which is no fault of the service.
func quorumFaults(masters []Redis, down int) func() {
	n := 0
	return func() {
		var hit []Redis
		for i := range down {
			hit = append(hit, masters[(n*down+i)%len(masters)])
		}
		kill := make([]bool, len(hit))
		for i := range hit {
			switch n % 3 {
			case 0:
				kill[i] = true
			case 1:
				kill[i] = false
			case 2:
				kill[i] = i%2 == 0
			}
		}
		for i, r := range hit {
			if kill[i] {
				r.Kill()
			} else {
				r.Pause()
			}
		}
		time.Sleep(QuorumDown)
		for i, r := range hit {
			if kill[i] {
				r.Restart()
			} else {
				r.Resume()
			}
		}
		n++
	}
}

// QuorumDown is how long the quorum scenarios keep a master killed or
// paused: past the workload's longest lease (TTL, also what heartbeats
// extend by) and the store's drift allowance.
const QuorumDown = 3 * TTL

// QuorumConfig is ServiceConfig in quorum mode over the masters urls.
func QuorumConfig(urls []string) function.Config {
	c := ServiceConfig("")
	c.RedisMode, c.RedisURLs = function.ModeQuorum, urls
	return c
}

// ServiceConfig is the configuration every in-process service uses.
func ServiceConfig(redisURL string) function.Config {
	return function.Config{RedisURL: redisURL, Port: 8080, KeyPrefix: "candado:", DefaultTTL: time.Second,
		MaxTTL: time.Minute, MaxWait: 2 * time.Second, EventSource: "/candado", BackendTimeout: 300 * time.Millisecond}
}

// inProcess serves function.NewService on redisURL from an httptest server.
func inProcess(env Env, redisURL string) string {
	return inProcessConfig(env, ServiceConfig(redisURL))
}

// inProcessConfig serves function.NewService with cfg from an httptest
// server.
func inProcessConfig(env Env, cfg function.Config) string {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	svc, err := function.NewService(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(svc)
	env.Cleanup(func() {
		svc.Shutdown()
		srv.Close()
		_ = svc.Close()
	})
	return srv.URL
}

// Breakage names a deliberately broken lock.
type Breakage int

// The broken locks.
const (
	// BrokenGrant grants a held lock, reporting the holder's fence.
	BrokenGrant Breakage = iota
	// BrokenRelease reports a release by anyone as a success (and removes
	// nothing).
	BrokenRelease
	// BrokenFair waits by polling with tries that do not wait, so that no
	// waiter ever enters the fair queue: whoever tries at the right moment
	// wins, in no order.
	BrokenFair
)

// Broken wraps a correct api.Locks and breaks it.
type Broken struct {
	api.Locks
	How Breakage
}

// Acquire ignores ErrHeld, or the fair queue, when broken so.
func (b Broken) Acquire(ctx context.Context, req lock.AcquireRequest) (lock.Lease, error) {
	if b.How == BrokenFair && req.Wait > 0 {
		return pollAcquire(ctx, b.Locks, req)
	}
	l, err := b.Locks.Acquire(ctx, req)
	if b.How == BrokenGrant && errors.Is(err, lock.ErrHeld) {
		return lock.Lease{ID: req.ID, Held: true, Owner: req.Owner, Fence: l.Fence, TTL: req.TTL}, nil
	}
	return l, err
}

// Release ignores ErrNotHeld when broken so.
func (b Broken) Release(ctx context.Context, id, owner string) (lock.Lease, error) {
	l, err := b.Locks.Release(ctx, id, owner)
	if b.How == BrokenRelease && errors.Is(err, lock.ErrNotHeld) {
		return lock.Lease{ID: id, Owner: owner, Fence: max(l.Fence, 1)}, nil
	}
	return l, err
}

// brokenService serves a broken lock through httpapi.Handler.
func brokenService(env Env, redisURL string, how Breakage) string {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		panic(err)
	}
	opt.ContextTimeoutEnabled = true
	store := lock.NewRedisStore(redis.NewClient(opt), lock.RedisOptions{Timeout: 300 * time.Millisecond})
	locker := lock.NewLocker(store, store)
	h := &httpapi.Handler{Locks: Broken{Locks: locker, How: how},
		Limits: api.Limits{DefaultTTL: time.Second, MaxTTL: time.Minute, MaxWait: 2 * time.Second}, Ready: store.Ping}
	srv := httptest.NewServer(h)
	env.Cleanup(func() {
		locker.Shutdown()
		srv.Close()
		_ = store.Close()
	})
	return srv.URL
}

// BuildCandado builds cmd/candado into dir and returns the binary's path.
// cmd/candado is a module of its own, found beside the go.mod of the module
// the caller runs in (this one).
func BuildCandado(dir string) (string, error) {
	bin := filepath.Join(dir, "candado")
	goMod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	src := filepath.Join(filepath.Dir(strings.TrimSpace(string(goMod))), "cmd", "candado")
	cmd := exec.Command("go", "build", "-C", src, "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/candado: %v\n%s", err, out)
	}
	return bin, nil
}

// process is cmd/candado run as a child, killed with SIGKILL and restarted.
type process struct {
	bin, redisURL, logPath string
	port                   int
	base                   string
	mu                     sync.Mutex
	cmd                    *exec.Cmd
	done                   chan struct{}
}

func startProcess(env Env, bin, redisURL string) (*process, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	p := &process{bin: bin, redisURL: redisURL, port: port, base: "http://127.0.0.1:" + strconv.Itoa(port),
		logPath: filepath.Join(env.TempDir(), "candado.log")}
	env.Cleanup(p.kill)
	return p, p.start()
}

func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin)
	cmd.Env = append(os.Environ(), "CANDADO_REDIS_URL="+p.redisURL, "CANDADO_PORT="+strconv.Itoa(p.port),
		"CANDADO_BACKEND_TIMEOUT=300ms", "CANDADO_MAX_WAIT=2s", "CANDADO_DEFAULT_TTL=1s", "PORT=")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	p.cmd, p.done = cmd, done
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("candado exited at start; log %s", p.logPath)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("candado did not answer /healthz; log %s", p.logPath)
}

func (p *process) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		_ = p.cmd.Process.Kill() // SIGKILL
		<-p.done
	}
}

func (p *process) restart() error {
	p.kill()
	time.Sleep(100 * time.Millisecond)
	return p.start()
}
