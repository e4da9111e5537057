package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"handler/function/bench/internal/drive"
)

// cycles prints cycles/s at each concurrency, medians of o.runs interleaved
// runs, with ratios against the seed and the floor.
func cycles(ctx context.Context, e *env) error {
	t, err := e.targets(ctx)
	if err != nil {
		return err
	}
	defer t.close()
	o := e.o
	fmt.Printf("## Uncontended: acquire→release cycles/s, each client on its own lock, median of %d interleaved runs of %s\n\n", o.runs, o.dur)
	rates := map[drive.Driver]map[int][]float64{}
	p50s := map[drive.Driver]map[int][]float64{}
	for _, d := range t.all {
		rates[d], p50s[d] = map[int][]float64{}, map[int][]float64{}
	}
	for _, c := range o.conc {
		for run := range o.runs {
			for _, d := range rotated(t.all, run) {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r := drive.RunCycles(ctx, d, fmt.Sprintf("c%d-", c), c, o.dur)
				if r.Errors > 0 {
					fmt.Fprintf(os.Stderr, "warning: %s at C=%d: %d failed calls, first: %v\n", d.Name(), c, r.Errors, r.FirstErr)
				}
				rates[d][c] = append(rates[d][c], r.Rate)
				p50s[d][c] = append(p50s[d][c], float64(r.P50))
			}
		}
	}
	head := "| cycles/s |"
	rule := "| --- |"
	for _, c := range o.conc {
		head += fmt.Sprintf(" C=%d |", c)
		rule += " ---: |"
	}
	fmt.Println(head)
	fmt.Println(rule)
	for _, d := range t.all {
		row := "| " + d.Name() + " |"
		for _, c := range o.conc {
			row += fmt.Sprintf(" %.0f |", median(rates[d][c]))
		}
		fmt.Println(row)
	}
	fmt.Println()
	fmt.Println("| ratio | " + strings.Join(cols(o.conc), " | ") + " |")
	fmt.Println(rule)
	compared := []drive.Driver{t.candado, t.etcd, t.direct}
	if t.compare != nil {
		compared = slices.Insert(compared, 1, t.compare)
		row := fmt.Sprintf("| Candado / %s |", t.compare.Name())
		for _, c := range o.conc {
			row += fmt.Sprintf(" %.2f× |", median(rates[t.candado][c])/median(rates[t.compare][c]))
		}
		fmt.Println(row)
	}
	for _, d := range compared {
		for _, base := range []drive.Driver{t.seed, t.floor} {
			row := fmt.Sprintf("| %s / %s |", short(d), short(base))
			for _, c := range o.conc {
				row += fmt.Sprintf(" %.2f× |", median(rates[d][c])/median(rates[base][c]))
			}
			fmt.Println(row)
		}
	}
	row := "| seed / floor |"
	for _, c := range o.conc {
		row += fmt.Sprintf(" %.2f× |", median(rates[t.seed][c])/median(rates[t.floor][c]))
	}
	fmt.Println(row)
	fmt.Println()
	fmt.Println("| cycle latency p50 (median of runs) | " + strings.Join(cols(o.conc), " | ") + " |")
	fmt.Println(rule)
	for _, d := range t.all {
		row := "| " + short(d) + " |"
		for _, c := range o.conc {
			row += fmt.Sprintf(" %.0f µs |", median(p50s[d][c])/1e3)
		}
		fmt.Println(row)
	}
	return nil
}

func cols(conc []int) []string {
	var s []string
	for _, c := range conc {
		s = append(s, fmt.Sprintf("C=%d", c))
	}
	return s
}

// short is a driver's name up to its first parenthesis.
func short(d drive.Driver) string {
	n, _, _ := strings.Cut(d.Name(), " (")
	return n
}
