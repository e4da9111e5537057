// Command candado-verify proves Candado's guarantees with longer budgets
// than CI: it runs the history-checking scenarios of package check against
// real redis-server processes (redis-server on PATH, or $REDISTEST_SERVER)
// and a bounded soak.
//
//	candado-verify all [-ops 10000]         every scenario, then the broken locks, which must be caught
//	candado-verify scenario NAME [-ops N]   one scenario (or broken, broken-release, broken-fair)
//	candado-verify soak [-duration 2m]      churn, waiters, then leak figures
//
// It prints one line per scenario (name, operations checked, faults
// injected, violations) and exits 1 if any guarantee broke. The scenario
// cluster-reset (a Redis Cluster whose connections reset in the middle of
// pipelines) and its variants also need redis-cli on PATH, to create the
// cluster. The scenarios NAME-sem and NAME-rw run NAME's faults against
// semaphores and locks of shared and exclusive leases; fair-queue checks the
// order in which fair queues grant their waiters.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"time"

	"handler/function/check"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	check.QuietRedisLog()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	root, err := os.MkdirTemp("", "candado-verify-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(root)
	code := 0
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "all":
		code = all(ctx, root, args)
	case "scenario":
		if len(args) < 1 {
			usage()
		}
		code = scenarios(ctx, root, []string{args[0]}, args[1:], false)
	case "soak":
		code = soak(ctx, root, args)
	default:
		usage()
	}
	os.RemoveAll(root)
	os.Exit(code)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: candado-verify all [-ops N] | scenario NAME [-ops N] | soak [-duration D]")
	fmt.Fprintln(os.Stderr, "scenarios:", check.Scenarios, "and", check.BrokenScenarios, "(must be caught)")
	os.Exit(2)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "candado-verify:", err)
	os.Exit(1)
}

func all(ctx context.Context, root string, args []string) int {
	names := append(append([]string{}, check.Scenarios...), check.BrokenScenarios...)
	return scenarios(ctx, root, names, args, true)
}

func scenarios(ctx context.Context, root string, names, args []string, printBroken bool) int {
	fs := flag.NewFlagSet("scenario", flag.ExitOnError)
	ops := fs.Int("ops", 10000, "operations to record and check per scenario")
	clients := fs.Int("clients", 16, "concurrent clients")
	locks := fs.Int("locks", 0, "lock ids (0: one per 200 operations)")
	maxLoad := fs.Duration("max", 5*time.Minute, "cap on each scenario's load")
	_ = fs.Parse(args)

	var bin string
	var buildErr error
	built := false
	code := 0
	for _, name := range names {
		env, cleanup := newEnv(root, name, func() (string, error) {
			if !built {
				built = true
				bin, buildErr = check.BuildCandado(root)
			}
			return bin, buildErr
		})
		rep, err := check.RunScenario(ctx, env, name, check.Options{Ops: *ops, Clients: *clients, Locks: *locks,
			Max: *maxLoad, Timeout: 5 * time.Minute, Seed: uint64(time.Now().UnixNano())})
		cleanup()
		if err != nil {
			fmt.Printf("%-17s ERROR %v\n", name, err)
			code = 1
			continue
		}
		broken := slices.Contains(check.BrokenScenarios, name)
		line := rep.Line()
		switch {
		case broken && rep.Caught():
			line += "  (expected: the broken lock was caught)"
		case broken:
			line += "  FAIL: the broken lock was NOT caught"
			code = 1
		case rep.Violations() > 0 || rep.Verdict.Result != "Ok":
			code = 1
		}
		fmt.Println(line)
		if ctx.Err() != nil {
			return 1
		}
	}
	return code
}

// newEnv gives a scenario its own redis-servers and directories, all
// removed by cleanup.
func newEnv(root, name string, candado func() (string, error)) (check.Env, func()) {
	var cleanups []func()
	n := 0
	tempDir := func() string {
		n++
		d := filepath.Join(root, fmt.Sprintf("%s-%d", name, n))
		if err := os.MkdirAll(d, 0o755); err != nil {
			fail(err)
		}
		return d
	}
	env := check.Env{
		TempDir: tempDir,
		Cleanup: func(f func()) { cleanups = append(cleanups, f) },
		Logf:    func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) },
		Candado: candado,
	}
	env.NewRedisArgs = func(args ...string) check.Redis {
		r, err := check.StartRedis(tempDir(), args...)
		if err != nil {
			fail(err)
		}
		env.Cleanup(r.Close)
		return r
	}
	env.NewRedis = func() check.Redis {
		r, err := check.StartRedis(tempDir())
		if err != nil {
			fail(err)
		}
		env.Cleanup(r.Close)
		return r
	}
	return env, func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
}

func soak(ctx context.Context, root string, args []string) int {
	fs := flag.NewFlagSet("soak", flag.ExitOnError)
	d := fs.Duration("duration", 2*time.Minute, "length of the load")
	locks := fs.Int("locks", 5000, "lock ids under churn")
	workers := fs.Int("workers", 64, "clients taking and releasing leases")
	waiters := fs.Int("waiters", 300, "clients waiting on hot locks (time out or cancel)")
	_ = fs.Parse(args)
	r, err := check.StartRedis(root)
	if err != nil {
		fail(err)
	}
	defer r.Close()
	rep, err := check.Soak(ctx, r.URL(), check.SoakOptions{Duration: *d, Locks: *locks, Workers: *workers, Waiters: *waiters})
	if err != nil {
		fail(err)
	}
	fmt.Println(rep)
	if len(rep.Problems) > 0 {
		return 1
	}
	return 0
}
