package check

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Recorder collects a history. It is safe for concurrent use.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	last  int64
	calls int // client operations (not Lose markers)
}

// NewRecorder starts a history now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Now is the time since the history began, in nanoseconds (monotonic clock).
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

// Add records one operation. An Unknown output gets return time Never in
// its input; the porcupine return time is fixed up by History.
func (r *Recorder) Add(client int, in Input, out Output) {
	if out.Result == Unknown {
		in.Ret = Never
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ret := in.Ret
	if ret == Never {
		ret = in.Call
	}
	r.last = max(r.last, ret)
	if in.Kind != Lose {
		r.calls++
	}
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: in.Call, Output: out, Return: in.Ret})
}

// Len is the number of recorded client operations.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// History returns the recorded operations; those of unknown outcome return
// after every other operation (as Jepsen does), so they may take effect at
// any point after their call.
func (r *Recorder) History() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	end := r.last + 1
	h := make([]porcupine.Operation, len(r.ops))
	for i, op := range r.ops {
		if op.Return == Never {
			op.Return = end
		}
		h[i] = op
	}
	return h
}

// Verdict is the outcome of checking a history.
type Verdict struct {
	Result porcupine.CheckResult
	// Ops counts the client operations checked (Lose markers excluded).
	Ops int
	// Unknown counts operations whose outcome was unknown.
	Unknown int
	// Visualization is the path of porcupine's HTML rendering of a history
	// that failed the check.
	Visualization string
	Took          time.Duration
}

// Violations is 1 when the history is not linearizable, else 0.
func (v Verdict) Violations() int {
	if v.Result == porcupine.Illegal {
		return 1
	}
	return 0
}

func (v Verdict) String() string {
	s := fmt.Sprintf("%s: %d ops (%d unknown) checked in %s", v.Result, v.Ops, v.Unknown, v.Took.Round(time.Millisecond))
	if v.Visualization != "" {
		s += "; visualization: " + v.Visualization
	}
	return s
}

// Check checks history against the lease-lock model. A history that is not
// linearizable (or whose check timed out) is rendered with porcupine's
// visualization into a file under os.TempDir(), named in the verdict.
func Check(name string, history []porcupine.Operation, timeout time.Duration) Verdict {
	start := time.Now()
	model := Model()
	res, info := porcupine.CheckOperationsVerbose(model, history, timeout)
	v := Verdict{Result: res, Took: time.Since(start)}
	for _, op := range history {
		if op.Input.(Input).Kind == Lose {
			continue
		}
		v.Ops++
		if op.Output.(Output).Result == Unknown {
			v.Unknown++
		}
	}
	if res != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("candado-check-%s-%d.html", name, time.Now().UnixNano()))
		if err := porcupine.VisualizePath(model, info, path); err == nil {
			v.Visualization = path
		}
	}
	return v
}
