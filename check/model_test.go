package check

import (
	"os"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

const msec = int64(time.Millisecond)

// op builds an operation from times in milliseconds; ret < 0 means unknown.
func op(client int, kind Kind, id, owner string, ttlMs int, call, ret int64, res Result, fence int64) porcupine.Operation {
	in := Input{Kind: kind, ID: id, Owner: owner, TTL: time.Duration(ttlMs) * time.Millisecond, Call: call * msec, Ret: ret * msec}
	out := Output{Result: res, Fence: fence}
	r := ret * msec
	if res == Unknown {
		in.Ret = Never
		r = 1 << 40
	}
	return porcupine.Operation{ClientId: client, Input: in, Call: call * msec, Output: out, Return: r}
}

func TestModelLegal(t *testing.T) {
	cases := map[string][]porcupine.Operation{
		"acquire release acquire": {
			op(0, Acquire, "a", "A", 1000, 0, 1, OK, 10),
			op(0, Release, "a", "A", 0, 2, 3, OK, 10),
			op(1, Acquire, "a", "B", 1000, 4, 5, OK, 11),
		},
		"refused while held, concurrent acquires": {
			op(0, Acquire, "a", "A", 1000, 0, 10, OK, 10),
			op(1, Acquire, "a", "B", 1000, 0, 10, Refused, 10),
			op(2, Acquire, "a", "C", 1000, 5, 20, Refused, 10),
		},
		"holder paused past its TTL": {
			op(0, Acquire, "a", "A", 100, 0, 1, OK, 10),
			op(1, Acquire, "a", "B", 100, 50, 51, Refused, 10),
			op(1, Acquire, "a", "B", 100, 150, 151, OK, 20),
			op(0, Heartbeat, "a", "A", 100, 160, 161, Refused, 20),
			op(0, Release, "a", "A", 0, 170, 171, Refused, 20),
		},
		"heartbeat keeps the lease": {
			op(0, Acquire, "a", "A", 100, 0, 1, OK, 10),
			op(0, Heartbeat, "a", "A", 100, 80, 81, OK, 10),
			op(1, Acquire, "a", "B", 100, 150, 151, Refused, 10),
			op(1, Acquire, "a", "B", 100, 190, 191, OK, 11),
		},
		"idempotent acquire and release": {
			op(0, Acquire, "a", "A", 100, 0, 1, OK, 10),
			op(0, Acquire, "a", "A", 100, 2, 3, OK, 10),
			op(0, Release, "a", "A", 0, 4, 5, OK, 10),
			op(0, Release, "a", "A", 0, 6, 7, OK, 10),
			op(0, Release, "a", "A", 0, 600, 601, Refused, 0),
		},
		"lost acquire took effect": {
			op(0, Acquire, "a", "A", 1000, 0, -1, Unknown, 0),
			op(1, Acquire, "a", "B", 1000, 10, 11, Refused, 10),
			op(0, Release, "a", "A", 0, 20, 21, OK, 10),
			op(1, Acquire, "a", "B", 1000, 30, 31, OK, 12),
		},
		"lost acquire took effect late": {
			op(0, Acquire, "a", "A", 100, 0, -1, Unknown, 0),
			op(1, Acquire, "a", "B", 100, 10, 11, OK, 10),
			op(1, Release, "a", "B", 0, 12, 13, OK, 10),
			op(2, Acquire, "a", "C", 100, 500, 501, Refused, 11),
		},
		"lost release took effect": {
			op(0, Acquire, "a", "A", 1000, 0, 1, OK, 10),
			op(0, Release, "a", "A", 0, 5, -1, Unknown, 0),
			op(1, Acquire, "a", "B", 1000, 10, 11, OK, 11),
		},
		"data loss frees the lock": {
			op(0, Acquire, "a", "A", 10000, 0, 1, OK, 10),
			op(9, Lose, "", "", 0, 5, 6, OK, 0),
			op(1, Acquire, "a", "B", 10000, 10, 11, OK, 11),
			op(0, Heartbeat, "a", "A", 10000, 12, 13, Refused, 11),
		},
		"two locks": {
			op(0, Acquire, "a", "A", 1000, 0, 1, OK, 10),
			op(1, Acquire, "b", "B", 1000, 0, 1, OK, 10),
		},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			if res := porcupine.CheckOperationsTimeout(Model(), h, 10*time.Second); res != porcupine.Ok {
				t.Fatalf("legal history judged %s", res)
			}
		})
	}
}

func TestModelIllegal(t *testing.T) {
	cases := map[string][]porcupine.Operation{
		"two holders overlapping": {
			op(0, Acquire, "a", "A", 1000, 0, 1, OK, 10),
			op(1, Acquire, "a", "B", 1000, 10, 11, OK, 11),
		},
		"fence not increasing": {
			op(0, Acquire, "a", "A", 1000, 0, 1, OK, 10),
			op(0, Release, "a", "A", 0, 2, 3, OK, 10),
			op(1, Acquire, "a", "B", 1000, 4, 5, OK, 10),
		},
		"fence decreasing across expiry": {
			op(0, Acquire, "a", "A", 10, 0, 1, OK, 10),
			op(1, Acquire, "a", "B", 10, 100, 101, OK, 9),
		},
		"release by non-owner succeeding": {
			op(0, Acquire, "a", "A", 1000, 0, 1, OK, 10),
			op(1, Release, "a", "B", 0, 2, 3, OK, 10),
		},
		"heartbeat reviving an expired lease": {
			op(0, Acquire, "a", "A", 100, 0, 1, OK, 10),
			op(0, Heartbeat, "a", "A", 100, 300, 301, OK, 10),
		},
		"release of an expired lease": {
			op(0, Acquire, "a", "A", 100, 0, 1, OK, 10),
			op(0, Release, "a", "A", 0, 300, 301, OK, 10),
		},
		"refused while free": {
			op(0, Acquire, "a", "A", 1000, 0, 1, OK, 10),
			op(0, Release, "a", "A", 0, 2, 3, OK, 10),
			op(1, Acquire, "a", "B", 1000, 4, 5, Refused, 10),
		},
		"owner's heartbeat refused while alive": {
			op(0, Acquire, "a", "A", 1000, 0, 1, OK, 10),
			op(0, Heartbeat, "a", "A", 1000, 10, 11, Refused, 10),
		},
		"lease expired too early": {
			op(0, Acquire, "a", "A", 1000, 0, 1, OK, 10),
			op(1, Acquire, "a", "B", 1000, 900, 901, OK, 11),
		},
		"lost acquire cannot explain a second holder": {
			op(0, Acquire, "a", "A", 1000, 0, 1, OK, 10),
			op(1, Acquire, "a", "B", 1000, 5, -1, Unknown, 0),
			op(2, Acquire, "a", "C", 1000, 10, 11, OK, 12),
		},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			if res := porcupine.CheckOperationsTimeout(Model(), h, 10*time.Second); res != porcupine.Illegal {
				t.Fatalf("illegal history judged %s", res)
			}
		})
	}
}

func TestCheckWritesVisualization(t *testing.T) {
	h := []porcupine.Operation{
		op(0, Acquire, "a", "A", 1000, 0, 1, OK, 10),
		op(1, Acquire, "a", "B", 1000, 10, 11, OK, 11),
	}
	v := Check("selftest", h, 10*time.Second)
	if v.Violations() != 1 || v.Visualization == "" {
		t.Fatalf("verdict %v", v)
	}
	defer os.Remove(v.Visualization)
	if fi, err := os.Stat(v.Visualization); err != nil || fi.Size() == 0 {
		t.Fatalf("visualization %s: %v", v.Visualization, err)
	}
}
