package watch

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"handler/function/function/lock"
)

// liveStore is a store of leases that run out by themselves, as in Redis:
// Inspect and List answer the leases whose TTL has not run out yet, and
// nothing is published when one does.
type liveStore struct {
	changes chan lock.Change
	mu      sync.Mutex
	leases  map[string][]liveLease
	// mutexShape answers as a mutex store may: no Leases, the one lease in
	// the Lease's own fields.
	mutexShape bool
	// listed are the ids List names; noLeasesIn are those it names
	// without their leases, only their count.
	listed, noLeasesIn []string
	// afterRead, when set, runs in Inspect after the store was read and
	// before it answers, as a slow network would let changes pass it.
	afterRead func(id string)
}

type liveLease struct {
	lock.LeaseInfo
	ends time.Time
}

func newLiveStore() *liveStore {
	return &liveStore{changes: make(chan lock.Change, 64), leases: map[string][]liveLease{}}
}

func (s *liveStore) Changes(context.Context) (<-chan lock.Change, <-chan struct{}, error) {
	return s.changes, make(chan struct{}), nil
}

// put adds a lease without publishing it, and returns when it ends.
func (s *liveStore) put(id string, info lock.LeaseInfo) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	end := time.Now().Add(info.TTL)
	s.leases[id] = append(s.leases[id], liveLease{info, end})
	return end
}

// grant adds a lease and publishes its acquired change, as the scripts do.
func (s *liveStore) grant(id string, info lock.LeaseInfo) time.Time {
	end := s.put(id, info)
	s.changes <- lock.Change{ID: id, Kind: lock.ChangeAcquired, Fence: info.Fence, TTL: info.TTL, Mode: info.Mode, Holder: info.Holder}
	return end
}

// release ends a lease and publishes it.
func (s *liveStore) release(id string, fence int64) {
	s.mu.Lock()
	var gone liveLease
	s.leases[id] = slices.DeleteFunc(s.leases[id], func(l liveLease) bool {
		if l.Fence == fence {
			gone = l
			return true
		}
		return false
	})
	s.mu.Unlock()
	s.changes <- lock.Change{ID: id, Kind: lock.ChangeReleased, Fence: fence, Mode: gone.Mode, Holder: gone.Holder}
}

func (s *liveStore) read(id string, withLeases bool) lock.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := lock.Lease{ID: id}
	now := time.Now()
	for _, ll := range s.leases[id] {
		if left := ll.ends.Sub(now); left > 0 {
			info := ll.LeaseInfo
			info.TTL = left
			l.Leases = append(l.Leases, info)
		}
	}
	if len(l.Leases) == 0 {
		return lock.Lease{ID: id}
	}
	last := l.Leases[len(l.Leases)-1]
	l.Held, l.Fence, l.TTL, l.Holder, l.Mode, l.Holders = true, last.Fence, last.TTL, last.Holder, last.Mode, len(l.Leases)
	l.Limit, l.Waiters = 3, 2
	if s.mutexShape || !withLeases {
		l.Leases = nil
	}
	return l
}

func (s *liveStore) Inspect(_ context.Context, id string) (lock.Lease, error) {
	l := s.read(id, true)
	if s.afterRead != nil {
		s.afterRead(id)
	}
	return l, nil
}

func (s *liveStore) List(context.Context, lock.ListRequest) (lock.ListPage, error) {
	var page lock.ListPage
	for _, id := range s.listed {
		if l := s.read(id, !slices.Contains(s.noLeasesIn, id)); l.Held {
			page.Locks = append(page.Locks, l)
		}
	}
	return page, nil
}

// watchOne joins a watcher of id to a new Feed on s.
func watchOne(t *testing.T, s Source, id string) (*Feed, *watcher) {
	t.Helper()
	f := NewFeed(s, 10, 0)
	t.Cleanup(f.Close)
	w := &watcher{id: id, exact: true}
	if _, err := f.join(context.Background(), w, ""); err != nil {
		t.Fatal(err)
	}
	return f, w
}

// want is the watcher's next event, which must be of kind about lease
// fence with that holder label.
func want(t *testing.T, w *watcher, kind string, fence int64, holder string) Event {
	t.Helper()
	e, ok := next(t, w, 2*time.Second)
	if !ok || e.Kind != kind || e.Lease.Fence != fence || e.Lease.Holder != holder {
		t.Fatalf("got %+v (%v), want %s of fence %d held by %q", e, ok, kind, fence, holder)
	}
	return e
}

// wantExpired is want for an expiry, which must come after the lease's
// end and within 100 ms of it (with room for a loaded machine).
func wantExpired(t *testing.T, w *watcher, fence int64, holder string, end time.Time) {
	t.Helper()
	e := want(t, w, lock.ChangeExpired, fence, holder)
	late := time.Since(end)
	if late < 0 || late > 100*time.Millisecond+200*time.Millisecond {
		t.Fatalf("expired of fence %d came %v after the lease's end", fence, late)
	}
	if e.Lease.Held || e.Lease.ID != w.id {
		t.Fatalf("expired event %+v", e.Lease)
	}
	t.Logf("fence %d: expired reported %v after its end", fence, late)
}

// Each lease of a semaphore is acquired, released and expires on its own,
// with its holder label and mode; a released lease does not expire later.
func TestEachLeaseOfASemaphoreHasItsOwnEvents(t *testing.T) {
	s := newLiveStore()
	_, w := watchOne(t, s, "sem")
	end1 := s.grant("sem", lock.LeaseInfo{Fence: 1, TTL: 250 * time.Millisecond, Holder: "a 1", Mode: lock.Exclusive})
	s.grant("sem", lock.LeaseInfo{Fence: 2, TTL: 5 * time.Second, Holder: "b 2", Mode: lock.Exclusive})
	end3 := s.grant("sem", lock.LeaseInfo{Fence: 3, TTL: 500 * time.Millisecond, Holder: "c 3", Mode: lock.Exclusive})
	for _, l := range []struct {
		fence  int64
		holder string
	}{{1, "a 1"}, {2, "b 2"}, {3, "c 3"}} {
		e := want(t, w, lock.ChangeAcquired, l.fence, l.holder)
		if !e.Lease.Held || e.Lease.Mode != lock.Exclusive || e.Lease.TTL <= 0 {
			t.Fatalf("acquired %+v", e.Lease)
		}
	}
	s.release("sem", 2)
	if e := want(t, w, lock.ChangeReleased, 2, "b 2"); e.Lease.Held {
		t.Fatalf("released %+v still held", e.Lease)
	}
	wantExpired(t, w, 1, "a 1", end1)
	wantExpired(t, w, 3, "c 3", end3)
	if e, ok := next(t, w, 300*time.Millisecond); ok {
		t.Fatalf("got %+v after every lease ended", e)
	}
}

// The state on connect carries every live lease of a lock of shared
// leases, and the Feed reports each one's expiry though no change was
// ever published.
func TestStateCarriesEveryLeaseAndEachExpires(t *testing.T) {
	s := newLiveStore()
	end1 := s.put("rw", lock.LeaseInfo{Fence: 11, TTL: 200 * time.Millisecond, Holder: "reader one", Mode: lock.Shared})
	end2 := s.put("rw", lock.LeaseInfo{Fence: 12, TTL: 400 * time.Millisecond, Holder: "reader two", Mode: lock.Shared})
	f, w := watchOne(t, s, "rw")
	st, err := f.snapshot(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	line := string(f.encode(st, w))
	if err := json.Unmarshal([]byte(strings.SplitN(line, "data: ", 2)[1]), &d); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	leases, _ := d["leases"].([]any)
	if d["event"] != "state" || d["state"] != 1.0 || d["holders"] != 2.0 || d["limit"] != 3.0 || d["waiters"] != 2.0 || len(leases) != 2 {
		t.Fatalf("state %s: want held, 2 holders, limit 3, 2 waiters, 2 leases", line)
	}
	for i, holder := range []string{"reader one", "reader two"} {
		l := leases[i].(map[string]any)
		if l["fence"] != float64(11+i) || l["holder"] != holder || l["mode"] != "shared" || l["ttl_ms"].(float64) <= 0 {
			t.Fatalf("lease %d of the state: %v", i, l)
		}
	}
	if strings.Contains(line, "owner") {
		t.Fatalf("state %s names an owner", line)
	}
	wantExpired(t, w, 11, "reader one", end1)
	wantExpired(t, w, 12, "reader two", end2)
}

// A mutex store may answer with the one lease in the Lease's own fields
// and no Leases: the state still lists it, and its expiry is reported.
func TestAMutexStoresSingleLeaseIsTracked(t *testing.T) {
	s := newLiveStore()
	s.mutexShape = true
	end := s.put("m", lock.LeaseInfo{Fence: 4, TTL: 200 * time.Millisecond, Holder: "solo", Mode: lock.Exclusive})
	f, w := watchOne(t, s, "m")
	st, err := f.snapshot(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	d := newLockData(st.Lease)
	if d.Holders != 1 || len(d.Leases) != 1 || d.Leases[0].Fence != 4 || d.Leases[0].Holder != "solo" || d.Holder != "solo" {
		t.Fatalf("state %+v: want the one lease, fence 4, held by solo", d)
	}
	wantExpired(t, w, 4, "solo", end)
}

// A prefix snapshot carries every lease of each lock, asking the lock
// itself when the listing only counted them.
func TestPrefixSnapshotCarriesEveryLease(t *testing.T) {
	s := newLiveStore()
	for _, id := range []string{"p/sem", "p/partial"} {
		s.put(id, lock.LeaseInfo{Fence: 1, TTL: time.Minute, Holder: id + " a", Mode: lock.Exclusive})
		s.put(id, lock.LeaseInfo{Fence: 2, TTL: time.Minute, Holder: id + " b", Mode: lock.Exclusive})
	}
	s.put("p/one", lock.LeaseInfo{Fence: 9, TTL: time.Minute, Holder: "alone", Mode: lock.Exclusive})
	s.listed, s.noLeasesIn = []string{"p/sem", "p/partial", "p/one"}, []string{"p/partial", "p/one"}
	f := NewFeed(s, 10, 0)
	defer f.Close()
	w := &watcher{prefix: "p/"}
	if _, err := f.join(context.Background(), w, ""); err != nil {
		t.Fatal(err)
	}
	snap, err := f.snapshot(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, l := range snap.Locks {
		for _, info := range newLockData(l).Leases {
			got[l.ID] = append(got[l.ID], info.Holder)
		}
	}
	wantHolders := map[string][]string{"p/sem": {"p/sem a", "p/sem b"}, "p/partial": {"p/partial a", "p/partial b"}, "p/one": {"alone"}}
	for id, hs := range wantHolders {
		if !slices.Equal(got[id], hs) {
			t.Errorf("snapshot leases of %s: %v, want %v", id, got[id], hs)
		}
	}
	f.mu.Lock()
	n := 0
	for _, tr := range f.locks {
		n += len(tr.leases)
	}
	f.mu.Unlock()
	if n != 5 {
		t.Errorf("the feed tracks %d leases after the snapshot, want all 5", n)
	}
}

// A store answer read before a release but arriving after its message
// does not bring the released lease back: no "expired" follows its
// "released".
func TestALateAnswerDoesNotReviveAReleasedLease(t *testing.T) {
	s := newLiveStore()
	s.put("late", lock.LeaseInfo{Fence: 5, TTL: 300 * time.Millisecond, Holder: "h", Mode: lock.Exclusive})
	f, w := watchOne(t, s, "late")
	released := make(chan struct{})
	var once sync.Once
	s.afterRead = func(string) {
		once.Do(func() {
			s.release("late", 5)
			<-released
		})
	}
	done := make(chan error, 1)
	go func() { _, err := f.snapshot(context.Background(), w); done <- err }()
	want(t, w, lock.ChangeReleased, 5, "h")
	close(released)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if e, ok := next(t, w, 600*time.Millisecond); ok {
		t.Fatalf("got %+v: the released lease came back", e)
	}
}

// When a lock's next change arrives after a tracked lease's TTL ran out,
// the watchers hear that lease expire first: a mutex's next grant never
// comes before the expiry of the lease it follows.
func TestAnOverdueLeaseExpiresBeforeTheNextChange(t *testing.T) {
	s := newLiveStore()
	f, w := watchOne(t, s, "next")
	// Timers that do not fire: only the next change can tell.
	f.checkAfter = func(time.Duration, func()) *time.Timer { return time.NewTimer(time.Hour) }
	s.grant("next", lock.LeaseInfo{Fence: 1, TTL: 50 * time.Millisecond, Holder: "first", Mode: lock.Exclusive})
	want(t, w, lock.ChangeAcquired, 1, "first")
	time.Sleep(100 * time.Millisecond)
	s.grant("next", lock.LeaseInfo{Fence: 2, TTL: time.Minute, Holder: "second", Mode: lock.Exclusive})
	want(t, w, lock.ChangeExpired, 1, "first")
	want(t, w, lock.ChangeAcquired, 2, "second")
}

// A pod of the previous version publishes changes without holder or
// mode; the Feed still knows them from the lease's grant.
func TestAnOldFormatChangeKeepsTheLeasesHolder(t *testing.T) {
	s := newLiveStore()
	_, w := watchOne(t, s, "old")
	s.grant("old", lock.LeaseInfo{Fence: 3, TTL: time.Minute, Holder: "worker w", Mode: lock.Shared})
	want(t, w, lock.ChangeAcquired, 3, "worker w")
	s.changes <- lock.Change{ID: "old", Kind: lock.ChangeExtended, Fence: 3, TTL: 2 * time.Minute}
	if e := want(t, w, lock.ChangeExtended, 3, "worker w"); e.Lease.Mode != lock.Shared || e.Lease.TTL != 2*time.Minute {
		t.Fatalf("extended %+v", e.Lease)
	}
	s.changes <- lock.Change{ID: "old", Kind: lock.ChangeReleased, Fence: 3}
	want(t, w, lock.ChangeReleased, 3, "worker w")
}

// A change's data names the lease: its holder and mode, state 1 while it
// lives; no owner, and no fields of the whole lock.
func TestChangeDataNamesTheLease(t *testing.T) {
	f := NewFeed(newLiveStore(), 10, 0)
	defer f.Close()
	w := &watcher{prefix: ""}
	for _, tc := range []struct {
		e    Event
		want string
	}{
		{Event{Seq: 1, Kind: lock.ChangeAcquired, Lease: lock.Lease{ID: "a", Held: true, Fence: 7, TTL: time.Second, Holder: "w 1", Mode: lock.Shared, Owner: "secret"}},
			`{"event":"acquired","id":"a","state":1,"fence":7,"ttl_ms":1000,"holder":"w 1","mode":"shared"}`},
		{Event{Seq: 2, Kind: lock.ChangeExpired, Lease: lock.Lease{ID: "a", Fence: 7, Holder: "w 1", Mode: lock.Shared}},
			`{"event":"expired","id":"a","state":0,"fence":7,"ttl_ms":0,"holder":"w 1","mode":"shared"}`},
		{Event{Seq: 3, Kind: lock.ChangeReleased, Lease: lock.Lease{ID: "b", Fence: 8}},
			`{"event":"released","id":"b","state":0,"fence":8,"ttl_ms":0}`},
	} {
		got := string(f.encode(tc.e, w))
		if !strings.HasSuffix(got, "\ndata: "+tc.want+"\n\n") || !strings.Contains(got, "\nevent: "+tc.e.Kind+"\n") {
			t.Errorf("encoded %q, want the data %s", got, tc.want)
		}
	}
}

// Many leases of one lock, ending 10 ms apart, each get their own
// "expired" within 100 ms of their end, from one timer per lock.
func TestManyLeasesEachExpireOnTime(t *testing.T) {
	s := newLiveStore()
	_, w := watchOne(t, s, "many")
	const n = 20
	ends := map[int64]time.Time{}
	for i := int64(1); i <= n; i++ {
		ends[i] = s.grant("many", lock.LeaseInfo{Fence: i, TTL: 200*time.Millisecond + time.Duration(i)*10*time.Millisecond, Mode: lock.Shared})
	}
	for i := int64(1); i <= n; i++ {
		want(t, w, lock.ChangeAcquired, i, "")
	}
	var worst time.Duration
	for i := int64(1); i <= n; i++ {
		e := want(t, w, lock.ChangeExpired, i, "")
		late := time.Since(ends[e.Lease.Fence])
		if late < 0 || late > 100*time.Millisecond+200*time.Millisecond {
			t.Fatalf("expired of fence %d came %v after its end", i, late)
		}
		worst = max(worst, late)
	}
	t.Logf("%d leases: the latest expiry came %v after its lease's end", n, worst)
}
