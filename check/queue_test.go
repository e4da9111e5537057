package check

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func queueOp(in Input, res Result) porcupine.Operation {
	ret := in.Ret
	if res == Unknown {
		in.Ret = Never
	}
	return porcupine.Operation{Input: in, Output: Output{Result: res}, Call: in.Call, Return: ret}
}

// A refusal long after a waiter's deadline is explained by the queue only
// when that waiter's answer was lost: its last try may have run in Redis
// after its client saw the failure.
func TestMarkQueuedLostWaiterMayQueueLate(t *testing.T) {
	ms := func(n int) int64 { return int64(time.Duration(n) * time.Millisecond) }
	wait := 20 * time.Millisecond
	late := Input{Kind: Acquire, ID: "l", Owner: "b", Call: ms(1000), Ret: ms(1001), Seen: ms(1001)}
	for _, tc := range []struct {
		name   string
		waiter porcupine.Operation
		queued bool
	}{
		{"answer lost", queueOp(Input{Kind: Acquire, ID: "l", Owner: "a", Wait: wait, Call: ms(10), Ret: ms(40), Seen: ms(40)}, Unknown), true},
		{"refused", queueOp(Input{Kind: Acquire, ID: "l", Owner: "a", Wait: wait, Call: ms(10), Ret: ms(40), Seen: ms(40)}, Refused), false},
		{"granted", queueOp(Input{Kind: Acquire, ID: "l", Owner: "a", Wait: wait, Call: ms(10), Ret: ms(40), Seen: ms(40)}, OK), false},
	} {
		out := markQueued([]porcupine.Operation{tc.waiter, queueOp(late, Refused)})
		if got := out[1].Input.(Input).Queued; got != tc.queued {
			t.Errorf("%s waiter: the later refusal marked queued = %v, want %v", tc.name, got, tc.queued)
		}
	}
}
