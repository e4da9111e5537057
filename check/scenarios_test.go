//go:build integration

package check

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"handler/function/function/redistest"
)

// The CI versions of the scenarios: small budgets, each well under 15 s on
// two cores. cmd/candado-verify runs the same scenarios with larger ones.
const ciOps = 1500

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	QuietRedisLog()
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func testEnv(t *testing.T) Env {
	return Env{
		NewRedis: func() Redis { return redistest.Start(t) },
		NewRedisArgs: func(args ...string) Redis {
			return redistest.Start(t, redistest.WithArgs(args...))
		},
		TempDir: t.TempDir,
		Cleanup: t.Cleanup,
		Logf:    t.Logf,
		Candado: func() (string, error) {
			buildOnce.Do(func() {
				if buildDir, buildErr = os.MkdirTemp("", "candado-check-"); buildErr == nil {
					buildBin, buildErr = BuildCandado(buildDir)
				}
			})
			return buildBin, buildErr
		},
	}
}

func runScenario(t *testing.T, name string) Report {
	t.Helper()
	rep, err := RunScenario(context.Background(), testEnv(t), name,
		Options{Ops: ciOps, Max: 10 * time.Second, Timeout: 30 * time.Second, Seed: uint64(time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep.Line())
	return rep
}

// expectSafe runs scenario name and checks that it broke no guarantee,
// recorded enough operations and injected at least minFaults faults.
func expectSafe(t *testing.T, name string, minFaults int) Report {
	t.Helper()
	rep := runScenario(t, name)
	if rep.Violations() != 0 {
		t.Errorf("%s: %d violations: %s", name, rep.Violations(), rep.Line())
	}
	if rep.Verdict.Result != porcupine.Ok {
		t.Errorf("%s: check %s", name, rep.Verdict)
	}
	if rep.Verdict.Ops < ciOps/2 {
		t.Errorf("%s: only %d operations recorded", name, rep.Verdict.Ops)
	}
	if rep.Faults < minFaults {
		t.Errorf("%s: only %d faults injected, want %d", name, rep.Faults, minFaults)
	}
	return rep
}

func TestScenarioBaseline(t *testing.T)     { expectSafe(t, "baseline", 0) }
func TestScenarioTwoServices(t *testing.T)  { expectSafe(t, "two-services", 0) }
func TestScenarioRedisRestart(t *testing.T) { expectSafe(t, "redis-restart", 1) }
func TestScenarioRedisPause(t *testing.T)   { expectSafe(t, "redis-pause", 1) }
func TestScenarioProxy(t *testing.T)        { expectSafe(t, "proxy", 1) }
func TestScenarioServiceKill(t *testing.T)  { expectSafe(t, "service-kill", 1) }
func TestScenarioQuorum(t *testing.T)       { expectSafe(t, "quorum", 1) }
func TestScenarioQuorum5(t *testing.T)      { expectSafe(t, "quorum5", 1) }
func TestScenarioClusterReset(t *testing.T) { expectSafe(t, "cluster-reset", 1) }

// A lock that grants a held lock must be caught.
func TestBrokenGrantIsCaught(t *testing.T) {
	rep := runScenario(t, "broken")
	if rep.Verdict.Result != porcupine.Illegal {
		t.Fatalf("the checker accepted a lock that grants held locks: %s", rep.Line())
	}
	if rep.Verdict.Visualization == "" {
		t.Error("no visualization written")
	} else if fi, err := os.Stat(rep.Verdict.Visualization); err != nil || fi.Size() == 0 {
		t.Errorf("visualization %s: %v", rep.Verdict.Visualization, err)
	} else if os.Getenv("CHECK_KEEP_HTML") == "" {
		os.Remove(rep.Verdict.Visualization) // an expected failure: do not litter /tmp
	}
}

// A lock whose release ignores the owner must be caught.
func TestBrokenReleaseIsCaught(t *testing.T) {
	rep := runScenario(t, "broken-release")
	if rep.Verdict.Result != porcupine.Illegal {
		t.Fatalf("the checker accepted a lock whose release ignores the owner: %s", rep.Line())
	}
	if os.Getenv("CHECK_KEEP_HTML") == "" {
		os.Remove(rep.Verdict.Visualization)
	}
}

// A short soak: churn, waiters that time out or are cancelled, then no
// leaked goroutine, descriptor, Redis connection, key or memory.
func TestSoakShort(t *testing.T) {
	r := redistest.Start(t)
	rep, err := Soak(context.Background(), r.URL(), SoakOptions{Duration: 4 * time.Second, Locks: 1000, Workers: 16, Waiters: 60})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	if len(rep.Problems) > 0 {
		t.Error(rep.Problems)
	}
	if rep.WaitTimeouts == 0 || rep.Cancelled == 0 {
		t.Errorf("the waiters neither timed out nor cancelled: %+v", rep)
	}
}
