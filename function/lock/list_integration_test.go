//go:build integration

package lock_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"handler/function/function/lock"
	"handler/function/function/redistest"
)

// listAll pages through a listing with limit and returns the ids it saw and
// how many pages it took.
func listAll(t *testing.T, s lock.Lister, prefix string, limit int) ([]string, int) {
	t.Helper()
	var (
		ids    []string
		cursor string
		pages  int
	)
	for {
		page, err := s.List(context.Background(), lock.ListRequest{Prefix: prefix, Limit: limit, Cursor: cursor})
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		pages++
		if len(page.Locks) > limit {
			t.Fatalf("page %d holds %d locks, over the limit %d", pages, len(page.Locks), limit)
		}
		for _, l := range page.Locks {
			if !l.Held || l.Fence == 0 || l.TTL <= 0 || l.Owner != "" {
				t.Fatalf("listed lease %+v: want held, a fence, a TTL and no owner", l)
			}
			ids = append(ids, l.ID)
		}
		if cursor = page.Cursor; cursor == "" {
			break
		}
		if pages > 10000 {
			t.Fatal("listing does not end")
		}
	}
	slices.Sort(ids)
	return ids, pages
}

func TestListPagesThroughHeldLocksUnderAPrefix(t *testing.T) {
	srv := redistest.Start(t)
	l, s := newLocker(t, srv)
	ctx := context.Background()
	var want []string
	for i := 0; i < 1200; i++ {
		id := fmt.Sprintf("jobs/%04d", i)
		if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: id, Owner: "o", TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	// Not listed: another prefix, a released lock (a tombstone), a lock whose
	// id only shares the prefix's letters outside the braces.
	for _, id := range []string{"other/1", "jobsX", "jobs/released"} {
		if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: id, Owner: "o", TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Release(ctx, "jobs/released", "o"); err != nil {
		t.Fatal(err)
	}
	got, pages := listAll(t, s, "jobs/", 100)
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d ids, want the %d held under jobs/ each once (first %v)", len(got), len(want), got[:min(5, len(got))])
	}
	if pages < 12 {
		t.Fatalf("1200 locks came in %d pages of at most 100", pages)
	}
	all, _ := listAll(t, s, "", 1000)
	if len(all) != 1202 {
		t.Fatalf("listing everything gave %d locks, want 1202", len(all))
	}
}

func TestListRefusesABadCursorAndLimit(t *testing.T) {
	srv := redistest.Start(t)
	_, s := newLocker(t, srv)
	ctx := context.Background()
	for _, req := range []lock.ListRequest{
		{Cursor: "not-a-cursor"},
		{Limit: lock.MaxListLimit + 1},
		{Prefix: "a*"},
	} {
		if _, err := s.List(ctx, req); !errors.Is(err, lock.ErrInvalid) {
			t.Errorf("List(%+v) = %v, want ErrInvalid", req, err)
		}
	}
	// A cursor of one prefix is refused for another.
	for i := 0; i < 3; i++ {
		_, _ = s.Acquire(ctx, lock.AcquireRequest{ID: fmt.Sprintf("p/%d", i), Owner: "o", TTL: time.Minute})
	}
	page, err := s.List(ctx, lock.ListRequest{Prefix: "p/", Limit: 1})
	if err != nil || page.Cursor == "" {
		t.Fatalf("first page: %+v %v", page, err)
	}
	if _, err := s.List(ctx, lock.ListRequest{Prefix: "q/", Limit: 1, Cursor: page.Cursor}); !errors.Is(err, lock.ErrInvalid) {
		t.Fatalf("cursor of p/ used for q/: %v, want ErrInvalid", err)
	}
}

func TestClusterListScansEveryMaster(t *testing.T) {
	srvs := redistest.StartCluster(t, 3)
	l, s := newClusterLocker(t, srvs)
	ctx := context.Background()
	var want []string
	for i := 0; i < 300; i++ {
		id := fmt.Sprintf("c/%03d", i)
		if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: id, Owner: "o", TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	got, _ := listAll(t, s, "c/", 7)
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d ids, want the 300 spread over three masters each once", len(got))
	}
}

func TestRevokeEndsTheLeaseKeepsTheFenceAndWakesTheNext(t *testing.T) {
	srv := redistest.Start(t)
	l, s := newLocker(t, srv)
	ctx := context.Background()
	first, err := l.Acquire(ctx, lock.AcquireRequest{ID: "r", Owner: "a", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		lease lock.Lease
		err   error
	}
	waiter := make(chan result, 1)
	go func() {
		lease, err := l.Acquire(ctx, lock.AcquireRequest{ID: "r", Owner: "b", TTL: time.Minute, Wait: 20 * time.Second})
		waiter <- result{lease, err}
	}()
	time.Sleep(200 * time.Millisecond) // the waiter subscribes
	start := time.Now()
	ended, err := s.Revoke(ctx, "r")
	if err != nil || ended.Held || ended.Fence != first.Fence {
		t.Fatalf("Revoke = %+v, %v; want the ended lease with fence %d", ended, err, first.Fence)
	}
	r := <-waiter
	if r.err != nil || r.lease.Fence <= first.Fence || !r.lease.Woken {
		t.Fatalf("waiter got %+v, %v; want a woken grant with a fence above %d", r.lease, r.err, first.Fence)
	}
	// Woken by the revoke's wake-up, not by the minute-long lease's expiry.
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("waiter granted %v after the revoke", d)
	}
	if _, err := s.Heartbeat(ctx, "r", "a", time.Minute); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("revoked holder's heartbeat: %v, want ErrNotHeld", err)
	}
	if _, err := s.Release(ctx, "r", "a"); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("revoked holder's release: %v, want ErrNotHeld", err)
	}
	if _, err := s.Revoke(ctx, "free"); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("revoking a free lock: %v, want ErrNotHeld", err)
	}
}

func TestRevokedHolderCannotHeartbeatAfterNobodyTookIt(t *testing.T) {
	srv := redistest.Start(t)
	_, s := newLocker(t, srv)
	ctx := context.Background()
	first, err := s.Acquire(ctx, lock.AcquireRequest{ID: "r2", Owner: "a", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke(ctx, "r2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Heartbeat(ctx, "r2", "a", time.Minute); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("heartbeat after revoke: %v, want ErrNotHeld", err)
	}
	next, err := s.Acquire(ctx, lock.AcquireRequest{ID: "r2", Owner: "a", TTL: time.Minute})
	if err != nil || next.Fence <= first.Fence {
		t.Fatalf("re-acquire after revoke: %+v %v; want a fence above %d", next, err, first.Fence)
	}
}

// While other keys come and go (the key space grows and rehashes), every
// lock held during the whole listing is listed.
func TestListSeesStableLocksWhileTheKeySpaceChurns(t *testing.T) {
	srv := redistest.Start(t)
	l, s := newLocker(t, srv)
	ctx := context.Background()
	var want []string
	for i := 0; i < 1000; i++ {
		id := fmt.Sprintf("stable/%04d", i)
		if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: id, Owner: "o", TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = s.Acquire(ctx, lock.AcquireRequest{ID: fmt.Sprintf("churn/%d", i), Owner: "o", TTL: time.Minute})
		}
	}()
	got, _ := listAll(t, s, "stable/", 50)
	close(stop)
	<-done
	got = slices.Compact(got)
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d distinct stable ids, want %d", len(got), len(want))
	}
}

// In a Cluster one pattern subscription on one node hears the changes of
// locks on every master: the scripts publish them with a plain PUBLISH.
func TestClusterChangesReachOneSubscription(t *testing.T) {
	srvs := redistest.StartCluster(t, 3)
	_, s := newClusterLocker(t, srvs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes, _, err := s.Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for i := 0; i < 30; i++ { // 30 ids land on all three masters
		id := fmt.Sprintf("ch/%d", i)
		if _, err := s.Acquire(ctx, lock.AcquireRequest{ID: id, Owner: "o", TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		want[id] = true
	}
	deadline := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case c := <-changes:
			if c.Kind != lock.ChangeAcquired || c.TTL != time.Minute || c.Fence <= 0 {
				t.Fatalf("change %+v", c)
			}
			delete(want, c.ID)
		case <-deadline:
			t.Fatalf("no acquired change for %d ids, e.g. %v", len(want), want)
		}
	}
}

// After Redis restarts, the change subscription says changes may have been
// lost (gap), subscribes again by itself, and carries later changes.
func TestChangesSurviveARedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	_, s := newLocker(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes, gap, err := s.Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	select {
	case <-gap:
	case <-time.After(10 * time.Second):
		t.Fatal("no gap reported after the restart")
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		id := fmt.Sprintf("after/%d", i)
		if _, err := s.Acquire(ctx, lock.AcquireRequest{ID: id, Owner: "o", TTL: time.Minute}); err == nil {
			select {
			case c := <-changes:
				if c.Kind == lock.ChangeAcquired && c.ID == id {
					return
				}
			case <-time.After(200 * time.Millisecond):
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no change carried within 10s of the restart")
		}
	}
}

// A Redis that stops answering (a half-open connection looks the same) is
// noticed by the idle ping: the subscription reports a gap, and carries
// changes again once Redis answers.
func TestChangesNoticeASilentRedis(t *testing.T) {
	defer lock.SetChangesIdle(lock.SetChangesIdle(200 * time.Millisecond))
	srv := redistest.Start(t)
	_, s := newLocker(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes, gap, err := s.Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	select {
	case <-gap:
	case <-time.After(10 * time.Second):
		srv.Resume()
		t.Fatal("no gap reported while Redis was silent")
	}
	srv.Resume()
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		id := fmt.Sprintf("silent/%d", i)
		if _, err := s.Acquire(ctx, lock.AcquireRequest{ID: id, Owner: "o", TTL: time.Minute}); err == nil {
			select {
			case c := <-changes:
				if c.Kind == lock.ChangeAcquired && c.ID == id {
					return
				}
			case <-time.After(300 * time.Millisecond):
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no change carried within 15s of Redis answering again")
		}
	}
}

// Ending the subscription while Redis is gone closes its channel cleanly.
func TestChangesEndWhileRedisIsDown(t *testing.T) {
	srv := redistest.Start(t)
	_, s := newLocker(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	changes, gap, err := s.Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	select {
	case <-gap:
	case <-time.After(10 * time.Second):
		t.Fatal("no gap reported after Redis died")
	}
	time.Sleep(300 * time.Millisecond) // a few failed resubscriptions
	cancel()
	select {
	case _, ok := <-changes:
		if ok {
			t.Fatal("a change from a dead Redis")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the changes channel was not closed after ctx ended")
	}
}
