//go:build integration

package lock_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"handler/function/function/lock"
	"handler/function/function/redistest"
)

// Helpers that start Redis topologies for the store-level tests and the
// benchmarks: a Cluster, a Sentinel-managed master with a replica, and the
// independent masters of a quorum.

const opTimeout = 300 * time.Millisecond

// tuning is the client tuning the service uses (see function/backend.go).
func tuning(o *redis.Options) *redis.Options {
	o.Protocol, o.ContextTimeoutEnabled, o.MaxRetries, o.DisableIdentity = 2, true, 1, true
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = opTimeout, opTimeout, opTimeout, opTimeout
	o.MinRetryBackoff, o.MaxRetryBackoff = 5*time.Millisecond, 50*time.Millisecond
	return o
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func clusterClient(srvs []*redistest.Server) *redis.ClusterClient {
	var addrs []string
	for _, s := range srvs {
		addrs = append(addrs, s.Addr())
	}
	t := tuning(&redis.Options{})
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs,
		Protocol: t.Protocol, ContextTimeoutEnabled: true, MaxRetries: t.MaxRetries, DisableIdentity: true,
		DialTimeout: t.DialTimeout, ReadTimeout: t.ReadTimeout, WriteTimeout: t.WriteTimeout, PoolTimeout: t.PoolTimeout,
		MinRetryBackoff: t.MinRetryBackoff, MaxRetryBackoff: t.MaxRetryBackoff})
}

// sentinelSetup is a master, its replica and three Sentinels.
type sentinelSetup struct {
	master, replica *redistest.Server
	sentinels       []string
}

// startSentinels starts a master, a replica of it and three Sentinels that
// monitor it as mymaster (quorum 2), and waits until they know each other.
func startSentinels(tb testing.TB) *sentinelSetup {
	tb.Helper()
	bin, err := redistest.Binary()
	if err != nil {
		tb.Fatal(err)
	}
	st := &sentinelSetup{master: redistest.Start(tb)}
	st.replica = redistest.Start(tb, redistest.WithArgs("--replicaof", "127.0.0.1", strconv.Itoa(st.master.Port())))
	for i := 0; i < 3; i++ {
		port := freePort(tb)
		dir := tb.TempDir() // Sentinel rewrites its config file
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor mymaster 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 5000\n",
			port, dir, st.master.Port())
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			tb.Fatal(err)
		}
		log, err := os.Create(filepath.Join(dir, "sentinel.log"))
		if err != nil {
			tb.Fatal(err)
		}
		cmd := exec.Command(bin, conf, "--sentinel")
		cmd.Dir, cmd.Stdout, cmd.Stderr = dir, log, log
		if err := cmd.Start(); err != nil {
			tb.Fatalf("starting sentinel: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); _ = log.Close(); close(exited) }()
		tb.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
		st.sentinels = append(st.sentinels, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}
	// Each Sentinel must see the replica and the two other Sentinels before
	// a failover can be agreed on.
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range st.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: addr})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			others, err1 := sc.Sentinels(ctx, "mymaster").Result()
			replicas, err2 := sc.Replicas(ctx, "mymaster").Result()
			cancel()
			if err1 == nil && err2 == nil && len(others) == 2 && len(replicas) == 1 && !strings.Contains(fmt.Sprint(replicas), "s_down") {
				break
			}
			if time.Now().After(deadline) {
				sc.Close()
				tb.Fatalf("sentinel %s: sentinels %v (%v), replicas %v (%v)", addr, others, err1, replicas, err2)
			}
			time.Sleep(100 * time.Millisecond)
		}
		sc.Close()
	}
	return st
}

func (st *sentinelSetup) client() *redis.Client {
	t := tuning(&redis.Options{})
	return redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "mymaster", SentinelAddrs: st.sentinels,
		Protocol: t.Protocol, ContextTimeoutEnabled: true, MaxRetries: t.MaxRetries, DisableIdentity: true,
		DialTimeout: t.DialTimeout, ReadTimeout: t.ReadTimeout, WriteTimeout: t.WriteTimeout, PoolTimeout: t.PoolTimeout,
		MinRetryBackoff: t.MinRetryBackoff, MaxRetryBackoff: t.MaxRetryBackoff})
}

// masterAddr asks the first Sentinel that answers where the master is.
func (st *sentinelSetup) masterAddr(tb testing.TB) string {
	tb.Helper()
	for _, addr := range st.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: addr})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		hp, err := sc.GetMasterAddrByName(ctx, "mymaster").Result()
		cancel()
		sc.Close()
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1])
		}
	}
	tb.Fatal("no sentinel answers")
	return ""
}

// startQuorum starts n independent masters and a QuorumStore on them.
func startQuorum(tb testing.TB, n int) ([]*redistest.Server, *lock.QuorumStore) {
	tb.Helper()
	var srvs []*redistest.Server
	var clients []redis.UniversalClient
	for i := 0; i < n; i++ {
		s := redistest.Start(tb)
		srvs = append(srvs, s)
		clients = append(clients, redis.NewClient(tuning(&redis.Options{Addr: s.Addr()})))
	}
	q, err := lock.NewQuorumStore(clients, lock.RedisOptions{Prefix: "it:", Timeout: opTimeout})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { q.Close() })
	return srvs, q
}

// exclusion runs clients that take, hold briefly and release locks ids
// until stop is closed, and checks that no two ever held one lock at once
// and that each lock's fences rose with every grant. It returns the grants.
type exclusion struct {
	t        *testing.T
	l        *lock.Locker
	ids      []string
	inside   map[string]*atomic.Int32
	mu       sync.Mutex
	fences   map[string][]int64
	overlaps atomic.Int32
	grants   atomic.Int64
	errs     atomic.Int64
	lastErr  atomic.Value
}

func newExclusion(t *testing.T, l *lock.Locker, ids ...string) *exclusion {
	e := &exclusion{t: t, l: l, ids: ids, inside: map[string]*atomic.Int32{}, fences: map[string][]int64{}}
	for _, id := range ids {
		e.inside[id] = new(atomic.Int32)
	}
	return e
}

// run starts clients goroutines; the returned func stops them and waits.
func (e *exclusion) run(clients int, ttl time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for r := 0; ; r++ {
				// A fresh owner each round: with one owner per client, a
				// release lost to a fault left the lease alive and the
				// client's next acquire of that id was its idempotent
				// re-acquire, with the same fence by contract, which
				// check then counted as a fence that did not rise.
				owner := fmt.Sprintf("client-%d-%d", c, r)
				select {
				case <-done:
					return
				default:
				}
				id := e.ids[(c+r)%len(e.ids)]
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				lease, err := e.l.Acquire(ctx, lock.AcquireRequest{ID: id, Owner: owner, TTL: ttl, Wait: 2 * time.Second})
				cancel()
				if err != nil {
					if !errors.Is(err, lock.ErrHeld) {
						e.errs.Add(1)
						e.lastErr.Store(err.Error())
						time.Sleep(20 * time.Millisecond)
					}
					continue
				}
				if e.inside[id].Add(1) != 1 {
					e.overlaps.Add(1)
				}
				e.mu.Lock()
				e.fences[id] = append(e.fences[id], lease.Fence)
				e.mu.Unlock()
				e.grants.Add(1)
				time.Sleep(200 * time.Microsecond)
				e.inside[id].Add(-1)
				ctx, cancel = context.WithTimeout(context.Background(), time.Second)
				_, _ = e.l.Release(ctx, id, owner)
				cancel()
			}
		}(c)
	}
	return func() { close(done); wg.Wait() }
}

// check fails the test on an overlap or a fence that did not rise.
func (e *exclusion) check() {
	e.t.Helper()
	if n := e.overlaps.Load(); n != 0 {
		e.t.Errorf("%d overlapping holders", n)
	}
	for id, fs := range e.fences {
		for i := 1; i < len(fs); i++ {
			if fs[i] <= fs[i-1] {
				e.t.Errorf("lock %s: grant %d has fence %d, not above %d", id, i, fs[i], fs[i-1])
			}
		}
	}
	if e.grants.Load() == 0 {
		e.t.Errorf("no grants at all (errors: %d, last %v)", e.errs.Load(), e.lastErr.Load())
	}
	e.t.Logf("%d grants, %d errors (last: %v)", e.grants.Load(), e.errs.Load(), e.lastErr.Load())
}

// acquireRetry takes id for owner, retrying while the backend is unavailable.
func acquireRetry(t *testing.T, s lock.Store, id, owner string, ttl time.Duration) lock.Lease {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lease, err := s.Acquire(context.Background(), lock.AcquireRequest{ID: id, Owner: owner, TTL: ttl})
		if err == nil {
			return lease
		}
		if !errors.Is(err, lock.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("acquire %s by %s: %+v, %v", id, owner, lease, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scan reads a Redis INFO-style field.
func infoField(info, field string) string {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
