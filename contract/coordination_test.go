//go:build integration

package contract

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"
)

// coordination drives semaphores, shared leases, holder labels and
// lock-delay (issue 15) through the real store, each answer validated
// against the description like every other exchange.
func coordination(t *testing.T, c *checker) {
	acquire := func(target string, status int, code string) leaseData {
		t.Helper()
		return c.do(t, exchange{method: "GET", target: target, route: "/acquire/{id}", validRequest: true, status: status, code: code}).lease(t)
	}
	noOwners := func(what string, d leaseData) {
		t.Helper()
		if d.Owner != nil {
			t.Errorf("%s shows an owner: %+v", what, d)
		}
		for _, l := range d.Leases {
			if l.Owner != nil {
				t.Errorf("%s shows a lease's owner: %+v", what, l)
			}
		}
	}

	// A semaphore of 2: two owners hold it, each with its own fence and label.
	a := acquire("/acquire/c-sem?owner=sem-1&limit=2&holder=worker-1%20pid%201&ttl=30s", 200, "")
	b := acquire("/acquire/c-sem?owner=sem-2&limit=2&holder=worker-2%20pid%202&ttl=20s", 200, "")
	if a.Holder != "worker-1 pid 1" || a.Limit != 2 || a.Holders != 1 || a.Mode != "exclusive" {
		t.Errorf("the first lease of a semaphore answered %+v", a)
	}
	if b.Holder != "worker-2 pid 2" || b.Limit != 2 || b.Holders != 2 || b.Fence <= a.Fence {
		t.Errorf("the second lease of a semaphore answered %+v after fence %d", b, a.Fence)
	}
	full := acquire("/acquire/c-sem?owner=sem-3&limit=2", 409, "held")
	noOwners("a 409 held of a semaphore", full)
	if full.Holders != 2 || full.Limit != 2 || len(full.Leases) != 2 {
		t.Errorf("a full semaphore refused with %+v", full)
	}
	mismatch := acquire("/acquire/c-sem?owner=sem-3&limit=3", 409, "limit_mismatch")
	noOwners("a 409 limit_mismatch", mismatch)
	if mismatch.Limit != 2 {
		t.Errorf("limit_mismatch answered %+v; want the lock's limit 2", mismatch)
	}
	acquire("/acquire/c-sem?owner=sem-3&mode=shared", 409, "limit_mismatch")
	inspected := c.do(t, exchange{method: "GET", target: "/locks/c-sem", route: "/locks/{id}", validRequest: true, status: 200})
	look := inspected.lease(t)
	noOwners("/locks/{id} of a semaphore", look)
	var labels []string
	for _, l := range look.Leases {
		labels = append(labels, l.Holder)
	}
	slices.Sort(labels)
	if look.Holders != 2 || look.Limit != 2 || look.Fence != b.Fence || look.Holder != "worker-2 pid 2" ||
		!slices.Equal(labels, []string{"worker-1 pid 1", "worker-2 pid 2"}) {
		t.Errorf("/locks/c-sem answered %+v; want 2 leases of limit 2, the newest fence, the label of the lease that ends first", look)
	}
	got := c.do(t, exchange{method: "GET", target: "/locks?prefix=c-sem", route: "/locks", validRequest: true, status: 200})
	var page struct {
		Locks []leaseData `json:"locks"`
	}
	if err := json.Unmarshal(got.env.Data, &page); err != nil || len(page.Locks) != 1 || page.Locks[0].Holders != 2 || page.Locks[0].Limit != 2 {
		t.Errorf("the listing of c-sem gave %s (%v)", got.env.Data, err)
	}
	// The counts are in the answers that count them (acquire, inspect,
	// listing), 0 included, and not in those that do not (release, heartbeat).
	for what, raw := range map[string]json.RawMessage{"/locks/c-sem": inspected.env.Data, "the listing": got.env.Data} {
		if !bytes.Contains(raw, []byte(`"waiters":0`)) || !bytes.Contains(raw, []byte(`"holders":2`)) {
			t.Errorf("%s: %s; want holders 2 and waiters 0", what, raw)
		}
	}
	beat := c.do(t, exchange{method: "GET", target: "/heartbeat/c-sem?owner=sem-1&ttl=30s", route: "/heartbeat/{id}", validRequest: true, status: 200})
	if bytes.Contains(beat.env.Data, []byte(`"holders"`)) || bytes.Contains(beat.env.Data, []byte(`"waiters"`)) {
		t.Errorf("a heartbeat answered %s; it counts neither holders nor waiters", beat.env.Data)
	}

	// The queue: a waiter takes its place, is counted, and the slot a
	// release frees goes to it, not to an acquire that does not wait.
	waited := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", c.srv.URL+"/acquire/c-sem?owner=sem-q&limit=2&wait=1500ms", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.srv.Client().Do(req)
		if err != nil {
			waited <- 0
			return
		}
		resp.Body.Close()
		waited <- resp.StatusCode
	}()
	for deadline := time.Now().Add(time.Second); ; time.Sleep(5 * time.Millisecond) {
		if l := c.do(t, exchange{method: "GET", target: "/locks/c-sem", route: "/locks/{id}", validRequest: true, status: 200}).lease(t); l.Waiters == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the waiting acquire never showed in /locks/c-sem's waiters")
		}
	}
	if d := acquire("/acquire/c-sem?owner=sem-4&limit=2", 409, "held"); d.Waiters != 1 {
		t.Errorf("a refusal with a waiter in the queue answered %+v", d)
	}
	c.do(t, exchange{method: "GET", target: "/release/c-sem?owner=sem-1", route: "/release/{id}", validRequest: true, status: 200})
	acquire("/acquire/c-sem?owner=sem-4&limit=2", 409, "held")
	if status := <-waited; status != 200 {
		t.Errorf("the waiter got %d after a slot was freed; want 200", status)
	}

	// Shared leases: many at once, and an exclusive acquire waits for them.
	r1 := acquire("/acquire/c-rw?owner=reader-1&mode=shared&holder=reader-1", 200, "")
	r2 := acquire("/acquire/c-rw?owner=reader-2&mode=shared", 200, "")
	if r1.Mode != "shared" || r2.Holders != 2 || r2.Fence <= r1.Fence {
		t.Errorf("two shared leases answered %+v and %+v", r1, r2)
	}
	writer := acquire("/acquire/c-rw?owner=writer", 409, "held")
	noOwners("a 409 held of shared leases", writer)
	if writer.Mode != "shared" || len(writer.Leases) != 2 {
		t.Errorf("an exclusive acquire of shared leases was refused with %+v", writer)
	}
	acquire("/acquire/c-rw?owner=writer&limit=2", 409, "limit_mismatch")

	// Lock-delay: after the lease expires, nobody gets the lock for the
	// delay, until its owner releases it.
	acquire("/acquire/c-delay?owner=delay-1&ttl=50ms&lock_delay=30s", 200, "")
	time.Sleep(150 * time.Millisecond)
	delayed := acquire("/acquire/c-delay?owner=delay-2", 409, "held")
	if delayed.State != 0 || delayed.DelayLeftMs <= 0 || delayed.DelayLeftMs > 30000 {
		t.Errorf("an acquire during a lock-delay was refused with %+v; want state 0 and delay_left_ms", delayed)
	}
	c.do(t, exchange{method: "GET", target: "/release/c-delay?owner=delay-1", route: "/release/{id}", validRequest: true, status: 409, code: "not_held"})
	acquire("/acquire/c-delay?owner=delay-2", 200, "")
}
