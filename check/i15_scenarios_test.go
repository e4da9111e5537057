//go:build integration

package check

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

// The scenarios of issue 15 against the real store: semaphores (-sem) and
// locks of shared and exclusive leases (-rw) under the mutex scenarios'
// faults, and fair queues (fair-queue). They need a store that takes the
// acquire parameters limit, mode and holder and keeps a fair queue per id.

// expectShapes is expectSafe, and the semaphores or shared leases were seen
// to hold more than one lease at once: a store that made every lock a mutex
// would pass the history check, a mutex being a legal semaphore.
func expectShapes(t *testing.T, name string, minFaults int) Report {
	t.Helper()
	rep := expectSafe(t, name, minFaults)
	if rep.Peak < 2 {
		t.Errorf("%s: never more than %d lease(s) of one id at once: %s", name, rep.Peak, rep.Line())
	}
	return rep
}

func TestScenarioBaselineSem(t *testing.T)     { expectShapes(t, "baseline-sem", 0) }
func TestScenarioBaselineRW(t *testing.T)      { expectShapes(t, "baseline-rw", 0) }
func TestScenarioTwoServicesSem(t *testing.T)  { expectShapes(t, "two-services-sem", 0) }
func TestScenarioTwoServicesRW(t *testing.T)   { expectShapes(t, "two-services-rw", 0) }
func TestScenarioRedisRestartSem(t *testing.T) { expectShapes(t, "redis-restart-sem", 1) }
func TestScenarioRedisRestartRW(t *testing.T)  { expectShapes(t, "redis-restart-rw", 1) }
func TestScenarioRedisPauseSem(t *testing.T)   { expectShapes(t, "redis-pause-sem", 1) }
func TestScenarioRedisPauseRW(t *testing.T)    { expectShapes(t, "redis-pause-rw", 1) }
func TestScenarioProxySem(t *testing.T)        { expectShapes(t, "proxy-sem", 1) }
func TestScenarioProxyRW(t *testing.T)         { expectShapes(t, "proxy-rw", 1) }
func TestScenarioServiceKillSem(t *testing.T)  { expectShapes(t, "service-kill-sem", 1) }
func TestScenarioServiceKillRW(t *testing.T)   { expectShapes(t, "service-kill-rw", 1) }
func TestScenarioClusterResetSem(t *testing.T) { expectShapes(t, "cluster-reset-sem", 1) }
func TestScenarioClusterResetRW(t *testing.T)  { expectShapes(t, "cluster-reset-rw", 1) }

// Fair queues grant in order, across two services on one Redis, one of
// them killed again and again; the check saw waiters it could have caught
// being passed, and the semaphore and the shared lock held several leases.
func TestScenarioFairQueue(t *testing.T) {
	rep := expectShapes(t, "fair-queue", 1)
	if !rep.Fair.Checked || rep.Fair.Waiters < 10 {
		t.Errorf("fair-queue: too few long waiters to check the grant order: %s", rep.Line())
	}
}

// A lock that waits by polling, without a queue, is correct but unfair:
// the grant-order check must catch it.
func TestBrokenFairIsCaught(t *testing.T) {
	rep := runScenario(t, "broken-fair")
	if !rep.Caught() {
		t.Fatalf("the grant-order check accepted a lock without a queue: %s", rep.Line())
	}
	if rep.Verdict.Result != porcupine.Ok {
		t.Errorf("an unfair but correct lock failed the history check: %s", rep.Line())
	}
}
