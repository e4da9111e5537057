package watch

import (
	"context"
	"sync"
	"testing"
	"time"

	"handler/function/function/lock"
)

// fakeSource is a store whose changes the test sends and whose leases it
// sets.
type fakeSource struct {
	changes chan lock.Change
	mu      sync.Mutex
	leases  map[string]lock.Lease
	list    []lock.Lease // what List answers, one page
	// inspected, when set, gets each Inspect's id and the Inspect waits
	// for a value on resume.
	inspected chan string
	resume    chan struct{}
}

func newFakeSource() *fakeSource {
	return &fakeSource{changes: make(chan lock.Change, 16), leases: map[string]lock.Lease{}}
}

func (s *fakeSource) Changes(ctx context.Context) (<-chan lock.Change, <-chan struct{}, error) {
	return s.changes, make(chan struct{}), nil
}

func (s *fakeSource) set(l lock.Lease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leases[l.ID] = l
}

func (s *fakeSource) Inspect(_ context.Context, id string) (lock.Lease, error) {
	s.mu.Lock()
	l, ok := s.leases[id]
	if !ok {
		l = lock.Lease{ID: id}
	}
	s.mu.Unlock()
	if s.inspected != nil {
		s.inspected <- id
		<-s.resume
	}
	return l, nil
}

func (s *fakeSource) List(context.Context, lock.ListRequest) (lock.ListPage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return lock.ListPage{Locks: s.list}, nil
}

func next(t *testing.T, w *watcher, within time.Duration) (Event, bool) {
	t.Helper()
	select {
	case e := <-w.ch:
		return e, true
	case <-time.After(within):
		return Event{}, false
	}
}

// An extension re-arms the expiry timer: no "expired" at the first TTL's
// end, one after the extended TTL's end once the store has no lease.
func TestExtensionRearmsTheExpiryTimer(t *testing.T) {
	src := newFakeSource()
	f := NewFeed(src, 10, 0)
	defer f.Close()
	w := &watcher{id: "x", exact: true}
	if _, err := f.join(context.Background(), w, ""); err != nil {
		t.Fatal(err)
	}
	src.set(lock.Lease{ID: "x", Held: true, Fence: 7, TTL: 150 * time.Millisecond})
	src.changes <- lock.Change{ID: "x", Kind: lock.ChangeAcquired, Fence: 7, TTL: 150 * time.Millisecond}
	if e, ok := next(t, w, time.Second); !ok || e.Kind != lock.ChangeAcquired {
		t.Fatalf("got %+v, want acquired", e)
	}
	src.set(lock.Lease{ID: "x", Held: true, Fence: 7, TTL: 600 * time.Millisecond})
	src.changes <- lock.Change{ID: "x", Kind: lock.ChangeExtended, Fence: 7, TTL: 600 * time.Millisecond}
	if e, ok := next(t, w, time.Second); !ok || e.Kind != lock.ChangeExtended {
		t.Fatalf("got %+v, want extended", e)
	}
	if e, ok := next(t, w, 300*time.Millisecond); ok {
		t.Fatalf("got %+v before the extended lease's end", e)
	}
	src.set(lock.Lease{ID: "x"}) // gone from the store
	if e, ok := next(t, w, 2*time.Second); !ok || e.Kind != lock.ChangeExpired || e.Lease.Fence != 7 || e.Lease.Held {
		t.Fatalf("got %+v, want expired of fence 7", e)
	}
}

// A Last-Event-ID older than the ring replays nothing (the fresh state
// follows); one in the ring replays exactly what came after it.
func TestReplayOnlyFromTheRing(t *testing.T) {
	src := newFakeSource()
	f := NewFeed(src, 10, 0)
	defer f.Close()
	f.mu.Lock()
	for i := 0; i < ringSize+10; i++ {
		f.publishLocked(Event{Kind: lock.ChangeReleased, Lease: lock.Lease{ID: "r", Fence: int64(i)}})
	}
	f.mu.Unlock()
	sub, err := f.join(context.Background(), &watcher{id: "r", exact: true}, f.eventID(5))
	if err != nil || len(sub.replay) != 0 {
		t.Fatalf("replay from an id out of the ring: %d events, %v", len(sub.replay), err)
	}
	sub, err = f.join(context.Background(), &watcher{id: "r", exact: true}, f.eventID(uint64(ringSize+7)))
	if err != nil || len(sub.replay) != 3 || sub.replay[0].Seq != uint64(ringSize+8) {
		t.Fatalf("replay from the ring: %+v, %v; want the 3 events after it", sub.replay, err)
	}
	other := NewFeed(src, 10, 0)
	defer other.Close()
	if sub, _ := other.join(context.Background(), &watcher{id: "r", exact: true}, f.eventID(uint64(ringSize+7))); len(sub.replay) != 0 {
		t.Fatal("another feed's event id replayed events")
	}
}

// A watcher that falls a buffer behind is ended, not waited for.
func TestASlowWatcherIsEnded(t *testing.T) {
	f := NewFeed(newFakeSource(), 10, 0)
	defer f.Close()
	w := &watcher{prefix: ""}
	if _, err := f.join(context.Background(), w, ""); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	for i := 0; i <= watcherBuffer; i++ {
		f.publishLocked(Event{Kind: lock.ChangeReleased, Lease: lock.Lease{ID: "s"}})
	}
	f.mu.Unlock()
	select {
	case <-w.gone:
	default:
		t.Fatal("a watcher past its buffer was not ended")
	}
}
