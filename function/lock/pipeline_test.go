package lock

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

var echoScript = redis.NewScript("return {ARGV[1]}")

// Many callers, a third of whom give up at a random moment: every answer
// is the caller's own, and none is lost or stuck (every caller returns,
// and no call is left in the queue or counted in flight).
func TestPipelinerCallersGivingUp(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), Protocol: 2, MaxRetries: -1})
	defer rdb.Close()
	p := newPipeliner(rdb, 2*time.Second, 2)
	defer p.close()
	const callers, calls = 48, 100
	var wg sync.WaitGroup
	done := make(chan struct{})
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range calls {
				want := strconv.Itoa(g*calls + i)
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(3) == 0 {
					time.AfterFunc(time.Duration(rng.IntN(300))*time.Microsecond, cancel)
				}
				res, err := p.do(ctx, echoScript, []string{"k"}, []any{want})
				cancel()
				switch {
				case errors.Is(err, context.Canceled):
				case err != nil:
					t.Errorf("call %s: %v", want, err)
				case len(res) != 1 || res[0] != want:
					t.Errorf("call %s answered %v", want, res)
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("callers still waiting after 60 s")
	}
	if n, q := p.inflight.Load(), len(p.queue); n != 0 || q != 0 {
		t.Fatalf("after every caller returned: %d calls in flight, %d queued", n, q)
	}
}

// A Redis that never answers: the first call hangs on the wire from its
// caller's goroutine, the workers' batches hang too, and close answers
// every other caller ErrClosed at once, without waiting for the wire.
func TestPipelinerCloseAnswersPending(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // read nothing, answer nothing
		}
	}()
	rdb := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), Protocol: 2, MaxRetries: -1,
		ContextTimeoutEnabled: true, ReadTimeout: 5 * time.Second, DisableIdentity: true})
	defer rdb.Close()
	p := newPipeliner(rdb, 5*time.Second, 2)
	const calls = 8
	errs := make(chan error, calls)
	for range calls {
		go func() {
			_, err := p.do(context.Background(), echoScript, []string{"k"}, []any{"x"})
			errs <- err
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.inflight.Load() < calls {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls in flight, want %d", p.inflight.Load(), calls)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the calls reach the workers or the queue
	go p.close()                      // it waits for the workers' hung batches
	for range calls - 1 {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("a call answered %v, want ErrClosed", err)
			}
		case <-time.After(time.Second):
			t.Fatal("a call behind the one on the wire was not answered within 1 s of close")
		}
	}
	if _, err := p.do(context.Background(), echoScript, []string{"k"}, []any{"x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("a call after close answered %v, want ErrClosed", err)
	}
}
