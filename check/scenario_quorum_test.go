//go:build integration

package check

import "testing"

func TestScenarioQuorumReacquire(t *testing.T) { expectSafe(t, "quorum-reacquire", 2) }
