//go:build integration

package drive_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"handler/function/bench/internal/drive"
	"handler/function/bench/internal/floor"
	"handler/function/bench/internal/proc"
	"handler/function/bench/internal/seed"
	"handler/function/function"
	"handler/function/function/redistest"
)

// drivers starts every system the benchmark drives (Candado, the seed and
// the floor in this process, etcd and Redis as private processes) and
// returns a driver for each.
func drivers(t *testing.T) []drive.Driver {
	t.Helper()
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { rdb.Close() })

	cfg := function.Config{RedisURL: rs.URL(), Port: 8080, KeyPrefix: "candado:", DefaultTTL: 30 * time.Second,
		MaxTTL: time.Hour, MaxWait: time.Minute, EventSource: "/candado", BackendTimeout: 2 * time.Second}
	svc, err := function.NewService(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	candado := httptest.NewServer(svc)
	t.Cleanup(candado.Close)
	seedSrv := httptest.NewServer(seed.Handler(rdb))
	t.Cleanup(seedSrv.Close)
	floorSrv := httptest.NewServer(floor.Handler())
	t.Cleanup(floorSrv.Close)

	etcd, err := proc.StartEtcd(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Stop)
	ed, err := drive.NewEtcd(etcd.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	ds := []drive.Driver{
		drive.NewHTTP("seed", seedSrv.URL, 8),
		drive.NewHTTP("candado", candado.URL, 8),
		ed,
		drive.NewDirect(rs.Addr(), "direct:"),
		drive.NewHTTP("floor", floorSrv.URL, 8),
	}
	// Closed before the servers, which were registered earlier.
	t.Cleanup(func() {
		for _, d := range ds {
			d.Close()
		}
	})
	return ds
}

// TestDriversMakeCyclesAndGrantExclusively runs each driver briefly, alone
// on its own locks and then 8 clients on one lock, and checks that it made
// cycles without errors and never granted a held lock.
func TestDriversMakeCyclesAndGrantExclusively(t *testing.T) {
	ctx := context.Background()
	for _, d := range drivers(t) {
		t.Run(d.Name(), func(t *testing.T) {
			c := drive.RunCycles(ctx, d, "smoke-", 4, 300*time.Millisecond)
			if c.N == 0 || c.Errors > 0 || c.Rate <= 0 {
				t.Fatalf("cycles: %d done, %d errors (first: %v)", c.N, c.Errors, c.FirstErr)
			}
			h := drive.RunHandoffs(ctx, d, "smoke-contended-", 8, 1, 500*time.Millisecond)
			if h.Violations > 0 {
				t.Fatalf("granted a held lock or a fence that did not rise: %v", h.FirstErr)
			}
			if h.N == 0 || h.Errors > 0 {
				t.Fatalf("handoffs: %d done, %d errors (first: %v)", h.N, h.Errors, h.FirstErr)
			}
		})
	}
}

// doubleGranter is a broken lock: every acquire succeeds.
type doubleGranter struct {
	drive.Driver
	fence atomic.Int64
}

func (d *doubleGranter) Acquire(ctx context.Context, id, owner string, wait time.Duration) (int64, error) {
	time.Sleep(100 * time.Microsecond) // let grants overlap
	return d.fence.Add(1), nil
}

func (d *doubleGranter) Release(context.Context, string, string) error {
	time.Sleep(100 * time.Microsecond)
	return nil
}

// staleFencer grants exclusively (it wraps a real lock) but answers a fence
// that does not rise.
type staleFencer struct{ drive.Driver }

func (d staleFencer) Acquire(ctx context.Context, id, owner string, wait time.Duration) (int64, error) {
	if _, err := d.Driver.Acquire(ctx, id, owner, wait); err != nil {
		return 0, err
	}
	return 7, nil
}

// refuser refuses every acquire.
type refuser struct{ drive.Driver }

func (refuser) Acquire(context.Context, string, string, time.Duration) (int64, error) {
	return 0, drive.ErrHeld
}

// TestRunnersCatchBrokenLocks shows the checks can fail: a lock that grants
// twice, one whose fences do not rise, and one that refuses a free lock.
func TestRunnersCatchBrokenLocks(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(floor.Handler())
	defer srv.Close()
	real := drive.NewHTTP("floor", srv.URL, 8)
	defer real.Close()

	drive.Hold = time.Millisecond // holders that overlap, as a double grant makes them
	defer func() { drive.Hold = 0 }()
	if h := drive.RunHandoffs(ctx, &doubleGranter{Driver: real}, "x-", 8, 1, 300*time.Millisecond); h.Violations == 0 {
		t.Errorf("a lock that grants every acquire passed the exclusion check (%d handoffs)", h.N)
	} else if !strings.Contains(h.FirstErr.Error(), "while client") {
		t.Errorf("first error %q does not name the double grant", h.FirstErr)
	}
	if h := drive.RunHandoffs(ctx, staleFencer{real}, "y-", 4, 1, 300*time.Millisecond); h.Violations == 0 {
		t.Errorf("a lock whose fence stays at 7 passed the fence check (%d handoffs)", h.N)
	}
	if c := drive.RunCycles(ctx, refuser{real}, "z-", 2, 100*time.Millisecond); c.Errors == 0 || c.N != 0 {
		t.Errorf("a lock that refuses free locks made %d cycles with %d errors", c.N, c.Errors)
	}
}
