package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"handler/function/bench/internal/drive"
	"handler/function/bench/internal/proc"
)

// ab measures the working tree's Candado against -compare's alone: at each
// concurrency, o.runs pairs of back-to-back runs (the order alternating), and
// the median and quartiles of the pairs' ratios, so that load that drifts
// over the run falls on both sides of each pair.
func ab(ctx context.Context, e *env) error {
	if _, ok := e.bins["compare"]; !ok {
		return errors.New("-only ab needs -compare REV")
	}
	t, err := e.targets(ctx)
	if err != nil {
		return err
	}
	defer t.close()
	o := e.o
	fmt.Printf("## A/B: Candado (working tree) / %s, cycles/s ratio of %d back-to-back pairs of %s runs\n\n", t.compare.Name(), o.runs, o.dur)
	pids := map[drive.Driver]int{}
	for _, h := range t.http {
		pids[h.drv] = h.proc.Cmd.Process.Pid
	}
	fmt.Println("| C | median ratio | 25th–75th percentile | median cycles/s (tree) | median cycles/s (compare) | server CPU per cycle, median ratio |")
	fmt.Println("| ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, c := range o.conc {
		var ratios, a, b, cpu []float64
		for run := range o.runs {
			pair := []drive.Driver{t.candado, t.compare}
			if run%2 == 1 {
				pair = []drive.Driver{t.compare, t.candado}
			}
			rates, perCycle := map[drive.Driver]float64{}, map[drive.Driver]float64{}
			for _, d := range pair {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				cpu0, _ := proc.CPUTime(pids[d])
				r := drive.RunCycles(ctx, d, fmt.Sprintf("ab%d-", c), c, o.dur)
				if r.Errors > 0 {
					return fmt.Errorf("%s at C=%d: %d errors, first: %v", d.Name(), c, r.Errors, r.FirstErr)
				}
				cpu1, _ := proc.CPUTime(pids[d])
				rates[d] = r.Rate
				perCycle[d] = float64(cpu1-cpu0) / float64(max(r.N, 1))
			}
			cpu = append(cpu, perCycle[t.candado]/perCycle[t.compare])
			ratios = append(ratios, rates[t.candado]/rates[t.compare])
			a, b = append(a, rates[t.candado]), append(b, rates[t.compare])
		}
		slices.Sort(ratios)
		q := func(p int) float64 { return ratios[(len(ratios)-1)*p/100] }
		fmt.Printf("| %d | %.3f× | %.3f–%.3f | %.0f | %.0f | %.3f× |\n", c, q(50), q(25), q(75), median(a), median(b), median(cpu))
	}
	return nil
}
