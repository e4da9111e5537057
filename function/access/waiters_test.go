package access

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"handler/function/function/api"
	"handler/function/function/lock"
)

// blockingLocks holds every acquire until release is closed.
type blockingLocks struct {
	api.Locks
	entered chan struct{}
	release chan struct{}
}

func (b blockingLocks) Acquire(ctx context.Context, req lock.AcquireRequest) (lock.Lease, error) {
	b.entered <- struct{}{}
	<-b.release
	return lock.Lease{ID: req.ID, Owner: req.Owner, Held: true}, nil
}

func TestWaitersAreCappedPerIdentity(t *testing.T) {
	inner := blockingLocks{entered: make(chan struct{}, 10), release: make(chan struct{})}
	w := NewWaiters(2)
	wait := lock.AcquireRequest{ID: "jobs/1", Owner: "o", TTL: time.Second, Wait: time.Minute}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := LimitWaiters(inner, w, teamA).Acquire(context.Background(), wait); err != nil {
				t.Error(err)
			}
		}()
	}
	<-inner.entered
	<-inner.entered
	if _, err := LimitWaiters(inner, w, teamA).Acquire(context.Background(), wait); !errors.Is(err, ErrTooManyWaiters) {
		t.Fatalf("team-a's third waiter: %v, want ErrTooManyWaiters", err)
	}
	if errors.Is(ErrTooManyWaiters, lock.ErrUnavailable) {
		t.Error("ErrTooManyWaiters wraps ErrUnavailable: it would be a 503, not a 429")
	}
	// Another identity, and acquires that do not wait, are not held back.
	done := make(chan error, 2)
	go func() { _, err := LimitWaiters(inner, w, teamB).Acquire(context.Background(), wait); done <- err }()
	noWait := wait
	noWait.Wait = 0
	go func() { _, err := LimitWaiters(inner, w, teamA).Acquire(context.Background(), noWait); done <- err }()
	<-inner.entered
	<-inner.entered
	if got := w.Waiting(teamA); got != 2 {
		t.Errorf("team-a waiting = %d, want 2", got)
	}
	close(inner.release)
	wg.Wait()
	for range 2 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if got := w.Waiting(teamA) + w.Waiting(teamB); got != 0 {
		t.Errorf("%d slots still taken after every acquire returned", got)
	}
	// The slots are free again.
	inner2 := blockingLocks{entered: make(chan struct{}, 1), release: make(chan struct{})}
	close(inner2.release)
	if _, err := LimitWaiters(inner2, w, teamA).Acquire(context.Background(), wait); err != nil {
		t.Fatalf("after the waiters left: %v", err)
	}
	if LimitWaiters(inner, NewWaiters(0), teamA) != api.Locks(inner) {
		t.Error("no cap still wraps")
	}
}

func TestWaitersWrapTakesTheIdentityFromTheContext(t *testing.T) {
	inner := blockingLocks{entered: make(chan struct{}, 10), release: make(chan struct{})}
	w := NewWaiters(1)
	locks := w.Wrap(inner)
	wait := lock.AcquireRequest{ID: "jobs/1", Owner: "o", TTL: time.Second, Wait: time.Minute}
	ctxA := WithIdentity(context.Background(), teamA)
	done := make(chan error, 1)
	go func() { _, err := locks.Acquire(ctxA, wait); done <- err }()
	<-inner.entered
	if _, err := locks.Acquire(ctxA, wait); !errors.Is(err, ErrTooManyWaiters) {
		t.Fatalf("team-a's second waiter: %v, want ErrTooManyWaiters", err)
	}
	go func() {
		_, err := locks.Acquire(WithIdentity(context.Background(), teamB), wait)
		done <- err
	}()
	<-inner.entered
	close(inner.release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
