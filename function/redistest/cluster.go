package redistest

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// StartCluster runs n redis-servers (n >= 3) as one Redis Cluster of masters
// without replicas, the slots spread evenly, and waits until every node says
// cluster_state:ok. It needs redis-cli on PATH (`make test` installs it).
func StartCluster(tb testing.TB, n int, opts ...Option) []*Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		tb.Fatalf("redis-cli not found on PATH: %v; run `make test`", err)
	}
	var srvs []*Server
	args := []string{"--cluster", "create"}
	for i := 0; i < n; i++ {
		bus, err := freePort()
		if err != nil {
			tb.Fatal(err)
		}
		// nodes.conf is relative to the server's own --dir, so a restart
		// finds it; the bus port is chosen here, as port+10000 may be taken.
		o := append([]Option{WithArgs("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000", "--cluster-port", strconv.Itoa(bus))}, opts...)
		s := Start(tb, o...)
		srvs = append(srvs, s)
		args = append(args, s.Addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	WaitClusterOK(tb, srvs)
	return srvs
}

// WaitClusterOK waits up to 20 s until every node of srvs says
// cluster_state:ok, and fails tb if one does not.
func WaitClusterOK(tb testing.TB, srvs []*Server) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range srvs {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			info, err := s.Client().ClusterInfo(ctx).Result()
			cancel()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("cluster at %s not ok: %v %s", s.Addr(), err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// SlotOwner is the node of srvs that serves slot, by the first node's view.
func SlotOwner(tb testing.TB, srvs []*Server, slot int) *Server {
	tb.Helper()
	ctx := context.Background()
	slots, err := srvs[0].Client().ClusterSlots(ctx).Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range slots {
		if int(r.Start) <= slot && slot <= int(r.End) && len(r.Nodes) > 0 {
			for _, s := range srvs {
				if s.Addr() == r.Nodes[0].Addr {
					return s
				}
			}
		}
	}
	tb.Fatalf("no node of the cluster serves slot %d", slot)
	return nil
}

// MigrateSlot moves slot, with its keys, from the node that serves it to
// `to`, the way redis-cli --cluster reshard does: IMPORTING, MIGRATING,
// MIGRATE of each key, then SETSLOT NODE on every node. The old node stops
// serving the slot, which ends its clients' shard subscriptions of it.
func MigrateSlot(tb testing.TB, srvs []*Server, slot int, to *Server) {
	tb.Helper()
	ctx := context.Background()
	from := SlotOwner(tb, srvs, slot)
	if from == to {
		tb.Fatalf("slot %d is already on %s", slot, to.Addr())
	}
	id := func(s *Server) string {
		v, err := s.Client().Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
	fromID, toID := id(from), id(to)
	must := func(s *Server, args ...any) {
		if err := s.Client().Do(ctx, args...).Err(); err != nil {
			tb.Fatalf("%s: %v: %v", s.Addr(), args, err)
		}
	}
	must(to, "CLUSTER", "SETSLOT", slot, "IMPORTING", fromID)
	must(from, "CLUSTER", "SETSLOT", slot, "MIGRATING", toID)
	for {
		keys, err := from.Client().ClusterGetKeysInSlot(ctx, slot, 100).Result()
		if err != nil {
			tb.Fatal(err)
		}
		if len(keys) == 0 {
			break
		}
		host, port, _ := strings.Cut(to.Addr(), ":")
		args := []any{"MIGRATE", host, port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		must(from, args...)
	}
	must(to, "CLUSTER", "SETSLOT", slot, "NODE", toID)
	must(from, "CLUSTER", "SETSLOT", slot, "NODE", toID)
	for _, s := range srvs {
		if s != from && s != to {
			must(s, "CLUSTER", "SETSLOT", slot, "NODE", toID)
		}
	}
}
