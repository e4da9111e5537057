package lock

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The in-process Redis that `make run` and the OpenFaaS build use
// (miniredis) runs every script of the new primitives too.
func TestPrimitivesOnMiniredis(t *testing.T) {
	l, s, _ := newMiniStore(t)
	ctx := context.Background()
	for _, o := range []string{"a", "b"} {
		if _, err := l.Acquire(ctx, AcquireRequest{ID: "sem", Owner: o, TTL: time.Minute, Limit: 2, Holder: o}); err != nil {
			t.Fatalf("semaphore %s: %v", o, err)
		}
	}
	full, err := l.Acquire(ctx, AcquireRequest{ID: "sem", Owner: "c", TTL: time.Minute, Limit: 2})
	if !errors.Is(err, ErrHeld) || full.Holders != 2 || len(full.Leases) != 2 {
		t.Fatalf("third = %+v, %v", full, err)
	}
	if _, err := s.Heartbeat(ctx, "sem", "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Release(ctx, "sem", "a"); err != nil {
		t.Fatal(err)
	}
	if in, err := s.Inspect(ctx, "sem"); err != nil || in.Holders != 1 || in.Leases[0].Holder != "b" {
		t.Fatalf("inspect = %+v, %v", in, err)
	}
	if _, err := l.Acquire(ctx, AcquireRequest{ID: "rw", Owner: "r", TTL: time.Minute, Mode: Shared}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Acquire(ctx, AcquireRequest{ID: "rw", Owner: "w", TTL: time.Minute, Wait: 20 * time.Millisecond}); !errors.Is(err, ErrHeld) {
		t.Fatalf("writer beside a reader = %v", err)
	}
	if _, err := s.Revoke(ctx, "rw"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Acquire(ctx, AcquireRequest{ID: "ld", Owner: "a", TTL: time.Minute, LockDelay: time.Second}); err != nil {
		t.Fatal(err)
	}
}
