package main

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"handler/function/bench/internal/drive"
	"handler/function/bench/internal/proc"
)

// cost prints what one cycle costs each HTTP server process and Redis at
// C=8: CPU time (from /proc) and, where perf works, system calls and context
// switches, all per cycle.
func cost(ctx context.Context, e *env) error {
	t, err := e.targets(ctx)
	if err != nil {
		return err
	}
	defer t.close()
	const c = 8
	fmt.Printf("## Cost per cycle at C=%d, %s per target, server process and redis-server counted apart\n\n", c, e.o.dur)
	fmt.Println("| target | cycles/s | server CPU µs/cycle | Redis CPU µs/cycle | server syscalls/cycle | server context switches/cycle |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: |")
	for _, ht := range t.http {
		pid := ht.proc.Cmd.Process.Pid
		cpu0, _ := proc.CPUTime(pid)
		rcpu0, _ := proc.CPUTime(e.redis.Cmd.Process.Pid)
		perf := startPerf(pid, e.o.dur)
		r := drive.RunCycles(ctx, ht.drv, "cost-", c, e.o.dur)
		cpu1, _ := proc.CPUTime(pid)
		rcpu1, _ := proc.CPUTime(e.redis.Cmd.Process.Pid)
		sys, cs := perf()
		n := float64(r.N)
		per := func(x float64) string {
			if x < 0 || n == 0 {
				return "n/a"
			}
			return fmt.Sprintf("%.1f", x/n)
		}
		fmt.Printf("| %s | %.0f | %s | %s | %s | %s |\n", short(ht.drv), r.Rate,
			per(float64(cpu1-cpu0)/1e3), per(float64(rcpu1-rcpu0)/1e3), per(sys), per(cs))
	}
	return nil
}

// startPerf counts pid's system calls and context switches for d with perf
// stat; the func it returns waits and gives both, or -1 where perf is
// missing or not allowed.
func startPerf(pid int, d time.Duration) func() (float64, float64) {
	if _, err := exec.LookPath("perf"); err != nil {
		return func() (float64, float64) { return -1, -1 }
	}
	cmd := exec.Command("perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter,context-switches",
		"-p", strconv.Itoa(pid), "--", "sleep", strconv.FormatFloat(d.Seconds(), 'f', 3, 64))
	var out strings.Builder
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return func() (float64, float64) { return -1, -1 }
	}
	return func() (float64, float64) {
		cmd.Wait()
		sys, cs := -1.0, -1.0
		for _, line := range strings.Split(out.String(), "\n") {
			f := strings.Split(line, ",")
			if len(f) < 3 {
				continue
			}
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				continue
			}
			switch f[2] {
			case "raw_syscalls:sys_enter":
				sys = v
			case "context-switches":
				cs = v
			}
		}
		return sys, cs
	}
}
