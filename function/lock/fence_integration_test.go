//go:build integration

package lock_test

import (
	"context"
	"testing"
	"time"

	"handler/function/function/lock"
	"handler/function/function/redistest"
)

// redisMicros is Redis' clock in microseconds.
func redisMicros(t *testing.T, srv *redistest.Server) int64 {
	t.Helper()
	now, err := srv.Client().Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return now.UnixMicro()
}

// A plain mutex's fence is Redis' clock in microseconds at the grant, every
// digit of it (the script spells it from TIME's seconds and microseconds).
func TestPlainFenceIsRedisClock(t *testing.T) {
	srv := redistest.Start(t)
	_, s := newLocker(t, srv)
	ctx := context.Background()
	// Grants go on until one fell in the first tenth of a second, whose
	// microseconds have a leading zero.
	deadline := time.Now().Add(3 * time.Second)
	for i, zero := 0, false; !zero; i++ {
		if time.Now().After(deadline) {
			t.Fatal("no grant in the first tenth of a second in 3 s")
		}
		before := redisMicros(t, srv)
		l, err := s.Acquire(ctx, lock.AcquireRequest{ID: "clock", Owner: "a", TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		after := redisMicros(t, srv)
		if l.Fence < before || l.Fence > after {
			t.Fatalf("grant %d: fence %d outside Redis' clock [%d, %d]", i, l.Fence, before, after)
		}
		if l.Holders != 1 || l.Limit != 1 || l.Mode != lock.Exclusive || !l.Held || l.TTL != time.Minute {
			t.Fatalf("grant %d: the lease is not a plain held mutex: %+v", i, l)
		}
		if _, err := s.Release(ctx, "clock", "a"); err != nil {
			t.Fatal(err)
		}
		zero = l.Fence%1e6 < 1e5
	}
}

// A fence kept above Redis' clock (a clock that went back, a tombstone
// from a faster clock) is exceeded by one, never undercut.
func TestPlainFenceAboveClockIsExceeded(t *testing.T) {
	srv := redistest.Start(t)
	_, s := newLocker(t, srv)
	ctx := context.Background()
	high := redisMicros(t, srv) + int64(time.Hour/time.Microsecond)
	if err := srv.Client().HSet(ctx, s.Key("ahead"), "owner", "", "fence", high, "prev", "gone").Err(); err != nil {
		t.Fatal(err)
	}
	l, err := s.Acquire(ctx, lock.AcquireRequest{ID: "ahead", Owner: "a", TTL: time.Minute, Holder: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if l.Fence != high+1 {
		t.Fatalf("fence %d, want %d", l.Fence, high+1)
	}
	if l.Holder != "h" {
		t.Fatalf("holder %q, want h", l.Holder)
	}
}
