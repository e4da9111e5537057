package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"handler/function/bench/internal/drive"
)

// contended prints handoffs/s and handoff latency with o.contended clients
// on 1 lock and on 4 locks, waiting acquires, Candado against etcd's Mutex
// (and the lock package without HTTP), interleaved.
func contended(ctx context.Context, e *env) error {
	t, err := e.targets(ctx)
	if err != nil {
		return err
	}
	defer t.close()
	o := e.o
	drivers := []drive.Driver{t.candado, t.etcd, t.direct}
	if t.compare != nil {
		drivers = []drive.Driver{t.candado, t.compare, t.etcd, t.direct}
	}
	fmt.Printf("## Contended: %d clients, waiting acquire → release with no hold, median of %d interleaved runs of %s\n\n", o.contended, o.runs, o.dur)
	fmt.Println("Handoff latency: from the holder sending its release to the next holder's acquire answering.")
	fmt.Println("Candado's waiters are granted in their queue's order (a release wakes the first live place); go-redis direct is the same lock package, fair queue included, with no HTTP between.")
	fmt.Println()
	fmt.Println("| system | locks | handoffs/s | p50 | p99 | waits timed out | errors | violations |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	var broken error
	for _, locks := range []int{1, 4} {
		res := map[drive.Driver][]drive.Handoffs{}
		for run := range o.runs {
			for _, d := range rotated(drivers, run) {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				prefix := fmt.Sprintf("contended-%d-%d-", locks, run)
				r := drive.RunHandoffs(ctx, d, prefix, o.contended, locks, o.dur)
				if r.Errors > 0 {
					fmt.Fprintf(os.Stderr, "warning: %s on %d locks: %d failed calls, first: %v\n", d.Name(), locks, r.Errors, r.FirstErr)
				}
				if r.Violations > 0 {
					broken = errors.Join(broken, fmt.Errorf("%s granted a held lock: %v", d.Name(), r.FirstErr))
				}
				res[d] = append(res[d], r)
			}
		}
		for _, d := range drivers {
			var rate []float64
			var p50, p99 []time.Duration
			timeouts, errs, viol := 0, 0, 0
			for _, r := range res[d] {
				rate, p50, p99 = append(rate, r.Rate), append(p50, r.P50), append(p99, r.P99)
				timeouts, errs, viol = timeouts+r.Timeouts, errs+r.Errors, viol+r.Violations
			}
			fmt.Printf("| %s | %d | %.0f | %s | %s | %d | %d | %d |\n", short(d), locks, median(rate),
				ms(medianDur(p50)), ms(medianDur(p99)), timeouts, errs, viol)
		}
	}
	return broken
}
