package function

import (
	"context"
	"fmt"
	"testing"

	"handler/function/function/lock"
)

// Each refusal an acquire can meet counts under its own result: a
// limit_mismatch is a caller's misuse of a lock, not a backend error.
func TestAcquireOutcomes(t *testing.T) {
	for err, want := range map[error]string{
		nil:                 "granted",
		lock.ErrHeld:        "held",
		lock.ErrModeCannot:  "invalid",
		lock.ErrInvalid:     "invalid",
		lock.ErrUnavailable: "error",
		fmt.Errorf("%w: it is held with limit 3", lock.ErrLimitMismatch): "limit_mismatch",
	} {
		if got := outcome(err); got != want {
			t.Errorf("outcome(%v) = %q, want %q", err, got, want)
		}
	}
	if got := waitOutcome(lock.ErrLimitMismatch); got != "limit_mismatch" {
		t.Errorf("waitOutcome(ErrLimitMismatch) = %q", got)
	}
	if got := waitOutcome(context.Canceled); got != "cancelled" {
		t.Errorf("waitOutcome(Canceled) = %q", got)
	}
}
