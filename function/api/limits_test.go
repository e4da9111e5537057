package api

import (
	"context"
	"testing"
	"time"

	"handler/function/function/lock"
)

func TestMarginAndWaitCap(t *testing.T) {
	for d, want := range map[time.Duration]time.Duration{
		2 * time.Second: time.Second, 10 * time.Second: 2 * time.Second,
		30 * time.Second: 5 * time.Second, 80 * time.Second: 5 * time.Second,
	} {
		if got := Margin(d); got != want {
			t.Errorf("Margin(%s) = %s, want %s", d, got, want)
		}
	}
	for _, tc := range []struct{ maxWait, deadline, want time.Duration }{
		{60 * time.Second, 0, 60 * time.Second},
		{60 * time.Second, 30 * time.Second, 25 * time.Second},
		{10 * time.Second, 30 * time.Second, 10 * time.Second},
		{60 * time.Second, 10 * time.Second, 8 * time.Second},
		{60 * time.Second, time.Second, 0},
	} {
		if got := (Limits{MaxWait: tc.maxWait, Deadline: tc.deadline}).WaitCap(); got != tc.want {
			t.Errorf("MaxWait %s, Deadline %s: WaitCap %s, want %s", tc.maxWait, tc.deadline, got, tc.want)
		}
	}
}

func TestResolveSaysWhenTheWaitIsCut(t *testing.T) {
	lim := Limits{DefaultTTL: time.Second, MaxTTL: time.Minute, MaxWait: time.Minute, Deadline: 30 * time.Second}
	for wait, want := range map[string]struct {
		wait time.Duration
		cut  bool
	}{
		"45s": {25 * time.Second, true}, "25s": {25 * time.Second, false}, "1s": {time.Second, false}, "2m": {25 * time.Second, true},
	} {
		req, err := lim.Resolve(Acquire, Params{ID: "x", Wait: wait})
		if err != nil || req.Wait != want.wait || req.WaitCut != want.cut {
			t.Errorf("wait=%s: Wait %s, WaitCut %v, %v; want %s, %v", wait, req.Wait, req.WaitCut, err, want.wait, want.cut)
		}
	}
}

type recordLocks struct {
	Locks
	got lock.AcquireRequest
}

func (r *recordLocks) Acquire(_ context.Context, req lock.AcquireRequest) (lock.Lease, error) {
	r.got = req
	return lock.Lease{ID: req.ID, Held: true}, nil
}

// A request that took long to arrive waits less, so that its answer still
// leaves the margin before the deadline.
func TestDoCountsFromArrival(t *testing.T) {
	lim := Limits{DefaultTTL: time.Second, MaxTTL: time.Minute, MaxWait: time.Minute, Deadline: 30 * time.Second}
	req, err := lim.Resolve(Acquire, Params{ID: "x", Wait: "20s"})
	if err != nil {
		t.Fatal(err)
	}
	var l recordLocks
	ctx := WithArrival(context.Background(), time.Now().Add(-10*time.Second))
	if _, err := req.Do(ctx, &l); err != nil {
		t.Fatal(err)
	}
	// 30s - 5s + 0.5s - 10s = 15.5s at most.
	if l.got.Wait > 15500*time.Millisecond || l.got.Wait < 15*time.Second || !req.WaitCut {
		t.Fatalf("waited %s (cut %v) after arriving 10s ago, want about 15.5s and cut", l.got.Wait, req.WaitCut)
	}
	env := req.Envelope("x", lock.Lease{ID: "x", Held: true, Waited: 1500 * time.Millisecond}, nil)
	if d, ok := env.Data.(AcquireData); !ok || !d.WaitCut || d.WaitedMs != 1500 {
		t.Fatalf("envelope data %#v", env.Data)
	}
}
