package lock

import "testing"

func woken(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// One waiter per release, round robin; the copies of a release (one per
// master) wake nobody more while the woken waiter has not looked.
func TestWakeGatesWakeOneWaiterPerRelease(t *testing.T) {
	var g wakeGates
	a, b, c := make(chan struct{}, 1), make(chan struct{}, 1), make(chan struct{}, 1)
	g.join("x", a)
	g.join("x", b)
	g.join("x", c)
	for range 5 {
		g.released("x")
	}
	if !woken(a) || woken(b) || woken(c) {
		t.Fatal("five copies of one release did not wake exactly the first waiter")
	}
	g.released("x") // a has looked: the next release wakes the next waiter
	if woken(a) || !woken(b) || woken(c) {
		t.Fatal("the next release did not wake the second waiter")
	}
	g.released("other") // another lock's release wakes none of them
	if woken(a) || woken(b) || woken(c) {
		t.Fatal("another lock's release woke a waiter")
	}
}

// A release during an acquire is held back: it wakes nobody if the acquire
// won (the lock is held again), one waiter if it lost.
func TestWakeGatesReleaseDuringAnAcquire(t *testing.T) {
	var g wakeGates
	a, b := make(chan struct{}, 1), make(chan struct{}, 1)
	g.join("x", a)
	g.join("x", b)
	g.begin("x")
	g.released("x")
	if woken(a) || woken(b) {
		t.Fatal("a release during an acquire woke a waiter at once")
	}
	g.end("x", true)
	if woken(a) || woken(b) {
		t.Fatal("a release before a grant woke a waiter after it")
	}
	g.begin("x")
	g.begin("x")
	g.released("x")
	g.end("x", false)
	if woken(a) || woken(b) {
		t.Fatal("a waiter was woken while another acquire was still in flight")
	}
	g.end("x", false)
	if !woken(a) || woken(b) {
		t.Fatal("a release during failed acquires woke no waiter when they ended")
	}
}

// A waiter that leaves with a wake-up it has not used passes it on, and
// the gates forget a lock with no waiters and no acquires.
func TestWakeGatesUnusedWakeUpPassesOn(t *testing.T) {
	var g wakeGates
	a, b := make(chan struct{}, 1), make(chan struct{}, 1)
	g.join("x", a)
	g.join("x", b)
	g.released("x")
	g.leave("x", a)
	if !woken(b) {
		t.Fatal("the wake-up of a waiter that left was lost")
	}
	g.leave("x", b)
	g.begin("x")
	g.end("x", true)
	if len(g.gates) != 0 {
		t.Fatalf("gates left behind: %v", g.gates)
	}
}
