package check

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
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
	// Transcript is the path of a text listing of the first lock id whose
	// history alone is not linearizable: its operations by call time.
	Transcript string
	// Relaxed is the result of checking the history again with the fences
	// of refused acquires ignored (see Relax), when it failed: Ok means
	// the only fault is the fence a 409 reported, no lease was granted
	// twice.
	Relaxed porcupine.CheckResult
	// Exclusive is the result of checking it without the refused acquires
	// (see WithoutRefusedAcquires), when it failed: Ok means no lease was
	// granted twice, whatever the 409s claimed.
	Exclusive porcupine.CheckResult
	Took      time.Duration
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
	if v.Transcript != "" {
		s += "; transcript: " + v.Transcript
	}
	if v.Relaxed != "" {
		s += "; ignoring the fences of 409s: " + string(v.Relaxed)
	}
	if v.Exclusive != "" {
		s += "; without the 409s: " + string(v.Exclusive)
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
	if res == porcupine.Illegal {
		// The transcript shows the worse fault: a lease granted twice
		// (illegal even when relaxed) before a wrong fence in a 409.
		v.Relaxed = porcupine.CheckOperationsTimeout(model, Relax(history), timeout)
		v.Exclusive = porcupine.CheckOperationsTimeout(model, WithoutRefusedAcquires(history), timeout)
		v.Transcript = transcript(name, model, history, v.Relaxed == porcupine.Illegal, v.Exclusive == porcupine.Illegal, timeout)
	}
	return v
}

// cut is history as known at time t: the operations called before t, those
// still running then (or of unknown outcome) as unknown.
func cut(history []porcupine.Operation, t int64) []porcupine.Operation {
	var h []porcupine.Operation
	for _, op := range history {
		if op.Call > t {
			continue
		}
		if op.Return > t || op.Input.(Input).Ret == Never {
			in := op.Input.(Input)
			if in.Kind != Lose {
				in.Ret, in.Seen = Never, 0
				op.Input, op.Output = in, Output{Result: Unknown}
			}
			op.Return = t + 1
		}
		h = append(h, op)
	}
	return h
}

// transcript writes the operations of the first lock id whose history alone
// is illegal (with the fences of refused acquires ignored if relaxed), by call time, under os.TempDir(); it returns the file's path
// ("" if none).
func transcript(name string, model porcupine.Model, history []porcupine.Operation, relaxed, exclusive bool, timeout time.Duration) string {
	checked := func(h []porcupine.Operation) []porcupine.Operation {
		if exclusive {
			return WithoutRefusedAcquires(h)
		}
		if relaxed {
			return Relax(h)
		}
		return h
	}
	for _, part := range partition(history) {
		if porcupine.CheckOperationsTimeout(model, checked(part), timeout) != porcupine.Illegal {
			continue
		}
		part = append([]porcupine.Operation(nil), part...)
		sort.SliceStable(part, func(i, j int) bool { return part[i].Call < part[j].Call })
		// The earliest moment T by which the history is already illegal:
		// the operations called before T, those still running at T taken
		// as of unknown outcome. The operation returning at T is marked.
		byRet := make([]int, len(part))
		for i := range byRet {
			byRet[i] = i
		}
		sort.SliceStable(byRet, func(i, j int) bool { return part[byRet[i]].Return < part[byRet[j]].Return })
		first := -1
		for _, k := range byRet {
			op := part[k]
			if op.Input.(Input).Ret == Never {
				continue
			}
			if porcupine.CheckOperationsTimeout(model, checked(cut(part, op.Return)), timeout) == porcupine.Illegal {
				first = k
				break
			}
		}
		var b strings.Builder
		switch {
		case exclusive:
			b.WriteString("illegal even without the refused acquires (listed, but not checked)\n")
		case relaxed:
			b.WriteString("illegal even with the fences of 409s ignored\n")
		}
		fmt.Fprintf(&b, "%-12s %-12s %-7s %s\n", "call", "return", "client", "operation (owner = c<client>-<round>)")
		for i, op := range part {
			in, out := op.Input.(Input), op.Output.(Output)
			ret := fmt.Sprintf("%.3fms", float64(in.Ret)/1e6)
			if in.Ret == Never {
				ret = "unknown"
			}
			mark := ""
			if i == first {
				mark = "   <-- the history up to here is already illegal"
			}
			fmt.Fprintf(&b, "%-12s %-12s %-7d %s%s\n", fmt.Sprintf("%.3fms", float64(op.Call)/1e6), ret, op.ClientId, model.DescribeOperation(in, out), mark)
		}
		path := filepath.Join(os.TempDir(), fmt.Sprintf("candado-check-%s-%d.txt", name, time.Now().UnixNano()))
		if os.WriteFile(path, []byte(b.String()), 0o644) != nil {
			return ""
		}
		return path
	}
	return ""
}
