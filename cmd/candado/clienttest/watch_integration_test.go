//go:build integration

package clienttest_test

import (
	"errors"
	"testing"
	"time"

	"github.com/candado-dev/candado/client"
	"handler/function/function"
)

// Watch delivers the state, then the changes; across the server's end of
// each stream (a 2 s request deadline ends streams after 1 s) it
// reconnects with Last-Event-ID and loses no change.
func TestIntegrationWatchAcrossReconnections(t *testing.T) {
	s := startStackWith(t, func(c *function.Config) { c.Deadline = 2 * time.Second })
	c := s.client(t, "")
	ctx := itCtx(t, 20*time.Second)
	events, err := c.Watch(ctx, "w/1")
	if err != nil {
		t.Fatal(err)
	}
	next := func() client.Event {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("no event within 5s")
		}
		return client.Event{}
	}
	if ev := next(); ev.Kind != "state" || ev.Lock.Held {
		t.Fatalf("first event %+v, want the free state", ev)
	}
	var kinds []string
	for i := 0; i < 3; i++ {
		l, err := c.Acquire(ctx, "w/1", &client.AcquireOptions{TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(700 * time.Millisecond) // streams end meanwhile
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(700 * time.Millisecond)
	}
	deadline := time.After(5 * time.Second)
	for len(kinds) < 6 {
		select {
		case ev := <-events:
			if ev.Kind == "acquired" || ev.Kind == "released" {
				kinds = append(kinds, ev.Kind)
			}
		case <-deadline:
			t.Fatalf("saw %v, want three acquired/released pairs", kinds)
		}
	}
	for i, k := range kinds {
		if want := []string{"acquired", "released"}[i%2]; k != want {
			t.Fatalf("events %v: change %d is %s, want %s", kinds, i, k, want)
		}
	}
	if _, err := c.Watch(ctx, "bad//id"); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("Watch of a bad id: %v, want ErrBadRequest", err)
	}
}
