// Package watch streams lock changes to watchers as Server-Sent Events.
//
// One Feed per service instance holds one pub/sub subscription to the
// change messages every script publishes (see lock.RedisStore.Changes), so
// a change made through any instance reaches the watchers of every
// instance. Redis says nothing when a lease runs out, so the Feed keeps
// the live leases of the watched locks, each lease of a semaphore or of
// shared leases on its own, re-dated by each extension, and reports each
// lease's expiry itself when its time is up and the store confirms it is
// gone (see expiry.go).
package watch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"

	"handler/function/function/api"
	"handler/function/function/lock"
)

// Source is what a Feed needs of the lock store.
type Source interface {
	// Changes streams every lock's changes until ctx ends; gap gets a value
	// when some may have been lost (a reconnect).
	Changes(ctx context.Context) (changes <-chan lock.Change, gap <-chan struct{}, err error)
	Inspect(ctx context.Context, id string) (lock.Lease, error)
	List(ctx context.Context, req lock.ListRequest) (lock.ListPage, error)
}

// ErrTooManyWatchers is answered (503) to a watch past the cap of
// watchers of this instance; it is lock.ErrTooManyWatchers.
var ErrTooManyWatchers = lock.ErrTooManyWatchers

// DefaultMaxWatchers is the cap when none is given.
const DefaultMaxWatchers = 1000

// Event kinds besides the lock.Change kinds.
const (
	// KindState is the first event of a watch of one id: its state now.
	KindState = "state"
	// KindSnapshot is the first event of a watch of a prefix: the held
	// locks under it now.
	KindSnapshot = "snapshot"
)

// Event is one event of a watch stream.
type Event struct {
	// Seq orders the Feed's events; with the Feed's epoch it is the SSE id.
	Seq  uint64
	Kind string
	// Lease is, for a change, the lease it is about (its fence, holder,
	// mode, and TTL while it lives): each lease of a semaphore or of shared
	// leases has its own changes. For a state, the lock with every live
	// lease in Leases. For a snapshot, the zero Lease. Owners are blank.
	Lease lock.Lease
	// Locks are a snapshot's held locks; Truncated is set when there were
	// more than maxSnapshot.
	Locks     []lock.Lease
	Truncated bool
}

// ringSize is how many recent changes a Feed keeps for watchers that
// reconnect with Last-Event-ID.
const ringSize = 4096

// maxSnapshot bounds a prefix snapshot.
const maxSnapshot = 5000

// watcherBuffer is how many events may wait for a slow watcher; one that
// falls further behind is ended, and replays from Last-Event-ID.
const watcherBuffer = 1024

// expirySlack is how long after a lease's end on the Feed's clock its
// timer fires, so that Redis, whose clock counted from the script's run a
// moment earlier, has the key expired when the Feed looks.
const expirySlack = 2 * time.Millisecond

// Feed fans one instance's change subscription out to its watchers.
type Feed struct {
	src        Source
	max        int
	maxPer     int // per identity; 0: no cap
	epoch      string
	checkAfter func(time.Duration, func()) *time.Timer
	now        func() time.Time

	mu       sync.Mutex
	running  bool
	cancel   context.CancelFunc
	watchers map[*watcher]struct{}
	perKey   map[string]int // open watchers by identity
	seq      uint64
	ring     []Event             // the last ringSize events, oldest first
	locks    map[string]*tracked // the watched locks with live leases
	closed   bool
}

type watcher struct {
	key    string // the identity, for the per-identity cap
	id     string // exact id, or "" with prefix
	prefix string
	exact  bool
	ch     chan Event
	gone   chan struct{} // closed when the Feed ends this watcher
	once   sync.Once
}

func (w *watcher) matches(id string) bool {
	if w.exact {
		return id == w.id
	}
	return strings.HasPrefix(id, w.prefix)
}

func (w *watcher) end() { w.once.Do(func() { close(w.gone) }) }

// NewFeed returns a Feed on src with at most maxWatchers watchers at once
// (<= 0: DefaultMaxWatchers), and at most maxPerIdentity of one identity
// (<= 0: no cap). It subscribes with its first watcher.
func NewFeed(src Source, maxWatchers, maxPerIdentity int) *Feed {
	if maxWatchers <= 0 {
		maxWatchers = DefaultMaxWatchers
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &Feed{src: src, max: maxWatchers, maxPer: max(0, maxPerIdentity), perKey: map[string]int{}, epoch: hex.EncodeToString(b[:]), checkAfter: time.AfterFunc,
		now: time.Now, watchers: map[*watcher]struct{}{}, locks: map[string]*tracked{}}
}

// Watchers is how many watchers the Feed serves now.
func (f *Feed) Watchers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.watchers)
}

// eventID is the SSE id of the event with seq.
func (f *Feed) eventID(seq uint64) string { return f.epoch + "-" + strconv.FormatUint(seq, 10) }

// parseEventID returns the seq of an id this Feed issued.
func (f *Feed) parseEventID(id string) (uint64, bool) {
	epoch, n, ok := strings.Cut(id, "-")
	if !ok || epoch != f.epoch {
		return 0, false
	}
	seq, err := strconv.ParseUint(n, 10, 64)
	return seq, err == nil
}

// subscription is a watcher's view: the events it missed since
// Last-Event-ID, if the Feed still has them all, then live ones.
type subscription struct {
	w      *watcher
	replay []Event
	seq    uint64 // the Feed's seq when the watcher joined
}

// join adds a watcher; lastID, when it is one of this Feed's ids still in
// its ring, makes the subscription replay the changes after it.
func (f *Feed) join(ctx context.Context, w *watcher, lastID string) (*subscription, error) {
	if err := f.start(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, lock.ErrClosed
	}
	if len(f.watchers) >= f.max {
		return nil, ErrTooManyWatchers
	}
	if f.maxPer > 0 && f.perKey[w.key] >= f.maxPer {
		return nil, api.ErrTooManyWatchers
	}
	f.perKey[w.key]++
	w.ch = make(chan Event, watcherBuffer)
	w.gone = make(chan struct{})
	f.watchers[w] = struct{}{}
	sub := &subscription{w: w, seq: f.seq}
	if last, ok := f.parseEventID(lastID); ok && last <= f.seq && (len(f.ring) == 0 || last+1 >= f.ring[0].Seq) {
		for _, e := range f.ring {
			if e.Seq > last && w.matches(e.Lease.ID) {
				sub.replay = append(sub.replay, e)
			}
		}
	}
	return sub, nil
}

// leave removes w and stops the timers no remaining watcher needs.
func (f *Feed) leave(w *watcher) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.watchers[w]; ok {
		delete(f.watchers, w)
		if f.perKey[w.key]--; f.perKey[w.key] <= 0 {
			delete(f.perKey, w.key)
		}
	}
	w.end()
	for id := range f.locks {
		if !f.watchedLocked(id) {
			f.untrackLocked(id)
		}
	}
}

func (f *Feed) watchedLocked(id string) bool {
	for w := range f.watchers {
		if w.matches(id) {
			return true
		}
	}
	return false
}

// start subscribes to the changes once.
func (f *Feed) start(ctx context.Context) error {
	f.mu.Lock()
	if f.running || f.closed {
		f.mu.Unlock()
		return nil
	}
	f.mu.Unlock()
	runCtx, cancel := context.WithCancel(context.Background())
	changes, gap, err := f.src.Changes(runCtx)
	if err != nil {
		cancel()
		return err
	}
	f.mu.Lock()
	if f.running || f.closed { // another watcher won the race
		f.mu.Unlock()
		cancel()
		return nil
	}
	f.running, f.cancel = true, cancel
	f.mu.Unlock()
	go f.run(changes, gap)
	return nil
}

// run delivers changes until the subscription ends.
func (f *Feed) run(changes <-chan lock.Change, gap <-chan struct{}) {
	for {
		select {
		case c, ok := <-changes:
			if !ok {
				f.mu.Lock()
				f.running = false
				for w := range f.watchers {
					w.end()
				}
				f.mu.Unlock()
				return
			}
			f.apply(c)
		case <-gap:
			// Changes may have been lost: every watcher reconnects and
			// gets a fresh snapshot.
			f.mu.Lock()
			for w := range f.watchers {
				w.end()
			}
			f.mu.Unlock()
		}
	}
}

// apply records change c, keeps the tracked leases of its lock, and sends
// it to the watchers it concerns.
func (f *Feed) apply(c lock.Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lease := lock.Lease{ID: c.ID, Held: c.Held(), Fence: c.Fence, TTL: c.TTL, Holder: c.Holder, Mode: c.Mode}
	if f.watchedLocked(c.ID) {
		f.overdueLocked(c.ID, c.Fence)
		lease = f.heardLocked(c)
	}
	f.publishLocked(Event{Kind: c.Kind, Lease: lease})
}

// publishLocked numbers e, keeps it in the ring and sends it to each
// watcher it concerns; a watcher too far behind is ended.
func (f *Feed) publishLocked(e Event) {
	f.seq++
	e.Seq = f.seq
	if len(f.ring) == ringSize {
		copy(f.ring, f.ring[1:])
		f.ring = f.ring[:ringSize-1]
	}
	f.ring = append(f.ring, e)
	for w := range f.watchers {
		if !w.matches(e.Lease.ID) {
			continue
		}
		select {
		case w.ch <- e:
		default:
			w.end()
		}
	}
}

// snapshot reads the current state for w, with every live lease of each
// lock, and tracks the leases it finds.
func (f *Feed) snapshot(ctx context.Context, w *watcher) (Event, error) {
	f.mu.Lock()
	since := f.seq
	f.mu.Unlock()
	if w.exact {
		l, err := f.src.Inspect(ctx, w.id)
		if err != nil {
			return Event{}, err
		}
		l.Owner = ""
		f.saw(l, since)
		return Event{Kind: KindState, Lease: l}, nil
	}
	var (
		e      = Event{Kind: KindSnapshot}
		cursor string
	)
	for {
		page, err := f.src.List(ctx, lock.ListRequest{Prefix: w.prefix, Limit: lock.MaxListLimit, Cursor: cursor})
		if err != nil {
			return Event{}, err
		}
		for _, l := range page.Locks {
			if len(e.Locks) == maxSnapshot {
				e.Truncated = true
				break
			}
			if l.Holders > len(leasesOf(l)) {
				// A listing that does not name every lease: the lock's own
				// answer does.
				if all, err := f.src.Inspect(ctx, l.ID); err == nil && all.Held {
					l = all
				}
			}
			l.Owner = ""
			e.Locks = append(e.Locks, l)
			f.saw(l, since)
		}
		if cursor = page.Cursor; cursor == "" || e.Truncated {
			return e, nil
		}
	}
}

// saw tracks the live leases of l, read after event seq since.
func (f *Feed) saw(l lock.Lease, since uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sawLocked(l, since)
}

// Close ends every watcher and the subscription.
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.cancel != nil {
		f.cancel()
	}
	for w := range f.watchers {
		w.end()
	}
	for id := range f.locks {
		f.untrackLocked(id)
	}
}
