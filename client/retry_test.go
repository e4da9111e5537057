package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/candado-dev/candado/client"
)

// The zero Backoff retries without a bound, its ceilings double from
// DefaultRetryBackoff up to DefaultMaxBackoff, and a Retry-After is a floor.
func TestBackoffZeroValue(t *testing.T) {
	var b client.Backoff
	for n := 1; n <= 40; n++ {
		ceil := min(client.DefaultRetryBackoff<<min(n-1, 30), client.DefaultMaxBackoff)
		for range 50 {
			d, ok := b.NextDelay(n, 0)
			if !ok || d < 0 || d > ceil {
				t.Fatalf("retry %d: %v, %v; want up to %v", n, d, ok, ceil)
			}
		}
	}
	if d, ok := b.NextDelay(1, 3*time.Second); !ok || d != 3*time.Second {
		t.Fatalf("a Retry-After of 3s gave %v", d)
	}
	bounded := client.Backoff{Base: time.Millisecond, Max: time.Millisecond / 2, Retries: 2}
	if _, ok := bounded.NextDelay(2, 0); !ok {
		t.Fatal("retry 2 of 2 refused")
	}
	if _, ok := bounded.NextDelay(3, 0); ok {
		t.Fatal("retry 3 of 2 allowed")
	}
	if d, _ := bounded.NextDelay(1, 0); d > time.Millisecond {
		t.Fatalf("a Max below Base is Base: got %v", d)
	}
}

// steps is a strategy that allows a fixed number of retries and records them.
type steps struct {
	mu    sync.Mutex
	left  int
	asked []int
}

func (s *steps) NextDelay(n int, _ time.Duration) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, n)
	if s.left == 0 {
		return 0, false
	}
	s.left--
	return time.Millisecond, true
}

// Options.Retry decides the retries, and wins over the older fields.
func TestRetryStrategyDecides(t *testing.T) {
	f := newFake(t)
	f.unavailable = 1 << 30
	s := &steps{left: 2}
	c := newClient(t, f, &client.Options{Retry: s, MaxRetries: 50})
	_, err := c.Inspect(ctxT(t, 5*time.Second), "a")
	if !errors.Is(err, client.ErrUnavailable) || f.count("locks") != 3 {
		t.Fatalf("got %v after %d tries, want 3", err, f.count("locks"))
	}
	if len(s.asked) != 3 || s.asked[0] != 1 || s.asked[2] != 3 {
		t.Fatalf("asked for retries %v, want [1 2 3]", s.asked)
	}

	c = newClient(t, f, &client.Options{Retry: client.NoRetry})
	before := f.count("locks")
	if _, err := c.Inspect(context.Background(), "a"); !errors.Is(err, client.ErrUnavailable) || f.count("locks") != before+1 {
		t.Fatalf("NoRetry: %v, %d tries", err, f.count("locks")-before)
	}

	// The older fields still bound the retries.
	c = newClient(t, f, &client.Options{MaxRetries: 2})
	before = f.count("locks")
	if _, err := c.Inspect(ctxT(t, 5*time.Second), "a"); !errors.Is(err, client.ErrUnavailable) || f.count("locks") != before+3 {
		t.Fatalf("MaxRetries 2: %v, %d tries", err, f.count("locks")-before)
	}
}
