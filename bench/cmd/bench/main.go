// Command bench measures Candado beside its peers in one interleaved run on
// loopback, each against one private redis-server (and one private etcd)
// that it starts and stops itself:
//
//   - the seed-like baseline: our own small HTTP server doing SETNX/DEL
//     (no TTL, no owner, no fence) on the same routes;
//   - Candado: cmd/candado built with the same flags, run as a process;
//   - etcd's concurrency.Mutex (Debian's etcd-server, installed when missing);
//   - go-redis direct: Candado's lock package in this process, no HTTP;
//   - the HTTP floor: a bare Go HTTP server answering the routes from memory.
//
// It prints cycles/s at each concurrency with ratios against the seed and the
// floor, a contended table (handoffs), memory per lock and cold starts.
//
//	cd bench && go run ./cmd/bench [-d 5s] [-runs 3] [-c 1,8,32] [-only cycles,contended,memory,coldstart,cost] [-compare REV]
//	cd bench && go run ./cmd/bench -only ab -compare HEAD~1 -runs 15 -d 1s
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"handler/function/bench/internal/proc"
)

type options struct {
	root      string
	dur       time.Duration
	runs      int
	conc      []int
	contended int
	coldRuns  int
	memLocks  int
	waiters   int
	only      map[string]bool
	etcdTmpfs bool
	compare   string
}

func main() {
	var o options
	var conc, only string
	flag.StringVar(&o.root, "root", "", "the repository root (default: found from the working directory)")
	flag.DurationVar(&o.dur, "d", 5*time.Second, "duration of each load run")
	flag.IntVar(&o.runs, "runs", 3, "runs of each target per table cell; the median is printed")
	flag.StringVar(&conc, "c", "1,8,32", "client counts of the cycles table")
	flag.IntVar(&o.contended, "contended", 32, "clients of the contended table")
	flag.IntVar(&o.coldRuns, "cold", 20, "cold starts of each build")
	flag.IntVar(&o.memLocks, "locks", 100000, "locks of the Redis memory figures")
	flag.IntVar(&o.waiters, "waiters", 10000, "waiting acquires of the service memory figure")
	flag.BoolVar(&o.etcdTmpfs, "etcd-tmpfs", true, "keep etcd's data in /dev/shm, where fsync costs little (Redis persists nothing)")
	flag.StringVar(&o.compare, "compare", "", "a git revision whose cmd/candado is measured beside the working tree's (cycles, contended and cold start; cold start also builds its OpenFaaS and Knative style mains), to measure one change alone")
	flag.StringVar(&only, "only", "cycles,contended,memory,coldstart,cost", "which tables to print; also cost (CPU, syscalls per cycle), and ab (with -compare), which measures one change alone")
	flag.Parse()
	for _, f := range strings.Split(conc, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 {
			fail(fmt.Errorf("-c: bad client count %q", f))
		}
		o.conc = append(o.conc, c)
	}
	o.only = map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		o.only[strings.TrimSpace(s)] = true
	}
	if o.runs < 1 || o.dur <= 0 || o.dur > 5*time.Minute || o.coldRuns < 1 || o.coldRuns > 1000 {
		fail(errors.New("-runs, -cold at least 1 (cold at most 1000), -d between 0 and 5m"))
	}
	if o.root == "" {
		root, err := findRoot()
		if err != nil {
			fail(err)
		}
		o.root = root
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// findRoot walks up from the working directory to the folder whose go.mod
// is module handler/function.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if f, err := os.Open(filepath.Join(dir, "go.mod")); err == nil {
			sc := bufio.NewScanner(f)
			first := ""
			if sc.Scan() {
				first = strings.TrimSpace(sc.Text())
			}
			f.Close()
			if first == "module handler/function" {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no module handler/function above the working directory; pass -root")
		}
		dir = parent
	}
}

// target is a server the tables measure, built from package pkg in dir.
type target struct{ name, pkg, dir string }

// builds are the servers built from the repository at root.
func builds(root string) []target {
	benchDir := filepath.Join(root, "bench")
	return []target{
		{"candado", ".", filepath.Join(root, "cmd", "candado")}, // a module of its own
		{"seed", "./cmd/seed-server", benchDir},
		{"floor", "./cmd/floor-server", benchDir},
	}
}

// env is what every table shares: the temp folder, the builds, Redis.
type env struct {
	o     options
	dir   string
	redis *proc.Redis
	bins  map[string]string // name → built binary
	// compareSrc is the tree of -compare's revision, or "".
	compareSrc string
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "candado-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	e := &env{o: o, dir: dir, bins: map[string]string{}}
	fmt.Printf("building with CGO_ENABLED=0 -trimpath -ldflags '-s -w' ...\n")
	for _, b := range builds(o.root) {
		out := filepath.Join(dir, b.name)
		if err := proc.Build(out, b.pkg, b.dir); err != nil {
			return err
		}
		e.bins[b.name] = out
	}
	if o.compare != "" {
		src := filepath.Join(dir, "compare-src")
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		archive := exec.Command("sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", o.root, o.compare, src)
		if b, err := archive.CombinedOutput(); err != nil {
			return fmt.Errorf("exporting %s: %w\n%s", o.compare, err, b)
		}
		out := filepath.Join(dir, "candado-compare")
		pkg, in := ".", filepath.Join(src, "cmd", "candado")
		if _, err := os.Stat(filepath.Join(in, "go.mod")); err != nil {
			pkg, in = "./cmd/candado", src // a revision from before cmd/candado was a module
		}
		if err := proc.Build(out, pkg, in); err != nil {
			return err
		}
		e.bins["compare"] = out
		e.compareSrc = src
	}
	e.redis, err = proc.StartRedis(dir)
	if err != nil {
		return err
	}
	defer e.redis.Stop()
	fmt.Printf("redis-server on %s; %d CPUs; %s\n\n", e.redis.Addr, numCPU(), time.Now().UTC().Format(time.RFC3339))

	for _, t := range []struct {
		name string
		f    func(context.Context, *env) error
	}{{"cycles", cycles}, {"contended", contended}, {"memory", memory}, {"coldstart", coldstart}, {"cost", cost}, {"ab", ab}} {
		if !o.only[t.name] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := t.f(ctx, e); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		fmt.Println()
	}
	return nil
}
