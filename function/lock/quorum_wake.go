package lock

import "sync"

// wakeGates hands the wake-ups of a quorum store's releases to its local
// waiters one at a time. A release publishes on every master, and every
// local waiter of the lock receives each of those messages: woken all at
// once, the waiters all try, split the masters between them, undo, and
// wake each other again, in lockstep. Instead one waiter is woken per
// release, round robin, and the copies of one release that arrive while a
// woken waiter has not yet looked, or while an acquire of the lock is in
// flight, wake nobody: if that acquire wins, the lock is held again and its
// release will wake the next waiter; if it loses, one waiter is woken when
// it ends, so a release that came meanwhile is never lost. A waiter that
// leaves with a wake-up it has not used passes it on.
type wakeGates struct {
	mu    sync.Mutex
	gates map[string]*wakeGate
}

// wakeGate is the state of one lock id with local waiters or acquires.
type wakeGate struct {
	waiters  []chan struct{} // round robin: the head is woken next
	armed    chan struct{}   // the waiter woken last
	inflight int             // acquires of this id in progress
	pending  bool            // a release arrived while one was in flight
}

func (g *wakeGates) gate(id string) *wakeGate {
	if g.gates == nil {
		g.gates = map[string]*wakeGate{}
	}
	w := g.gates[id]
	if w == nil {
		w = &wakeGate{}
		g.gates[id] = w
	}
	return w
}

// drop forgets id's gate once nothing refers to it.
func (g *wakeGates) drop(id string, w *wakeGate) {
	if len(w.waiters) == 0 && w.inflight == 0 {
		delete(g.gates, id)
	}
}

// join adds waiter ch for id.
func (g *wakeGates) join(id string, ch chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.gate(id)
	w.waiters = append(w.waiters, ch)
}

// leave removes waiter ch; a wake-up it had not used goes to the next one.
func (g *wakeGates) leave(id string, ch chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.gates[id]
	if w == nil {
		return
	}
	for i, c := range w.waiters {
		if c == ch {
			w.waiters = append(w.waiters[:i], w.waiters[i+1:]...)
			break
		}
	}
	unused := false
	select {
	case <-ch:
		unused = true
	default:
	}
	if w.armed == ch {
		w.armed = nil
	}
	if unused {
		w.wakeNext()
	}
	g.drop(id, w)
}

// released is a release (or undo) of id published by one master.
func (g *wakeGates) released(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.gates[id]
	if w == nil {
		return
	}
	if w.inflight > 0 {
		w.pending = true
		return
	}
	if w.armed != nil && len(w.armed) > 0 {
		return // the waiter woken last has not looked yet
	}
	w.wakeNext()
}

// begin records an acquire of id in progress; call end with whether it
// was granted.
func (g *wakeGates) begin(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate(id).inflight++
}

func (g *wakeGates) end(id string, granted bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.gates[id]
	if w == nil {
		return
	}
	w.inflight--
	switch {
	case granted:
		w.pending = false // the lock is held again: its release wakes the next
	case w.pending && w.inflight == 0:
		w.pending = false
		if w.armed == nil || len(w.armed) == 0 {
			w.wakeNext()
		}
	}
	g.drop(id, w)
}

// wakeNext wakes the head waiter and moves it to the tail.
func (w *wakeGate) wakeNext() {
	if len(w.waiters) == 0 {
		return
	}
	ch := w.waiters[0]
	w.waiters = append(w.waiters[1:], ch)
	select {
	case ch <- struct{}{}:
	default: // a wake-up is already pending there
	}
	w.armed = ch
}
