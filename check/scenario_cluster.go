package check

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"handler/function/check/faultproxy"
	"handler/function/function"
)

// clusterReset is the scenario "cluster-reset": a Redis Cluster of three
// masters, each reached only through a faultproxy, whose connections are
// reset while batches of scripts are in flight, so some commands of a
// pipeline ran and their answers, or those of the commands after them, are
// lost. A client that sends such a command again (go-redis' ClusterClient
// does, for a lone command and for a whole batch, unless told not to) turns
// a release that took effect into a not_held once another owner took the
// lock: the history checker rejects it.
func clusterReset(env Env) ([]string, func(<-chan struct{}) int, error) {
	if env.NewRedisArgs == nil {
		return nil, nil, fmt.Errorf("cluster-reset: the runner cannot start redis-servers with arguments")
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		return nil, nil, fmt.Errorf("cluster-reset needs redis-cli on PATH (make test installs it): %w", err)
	}
	const n = 3
	nodes := make([]Redis, n)
	addrs := make([]string, n)
	for i := range nodes {
		bus, err := freePort()
		if err != nil {
			return nil, nil, err
		}
		nodes[i] = env.NewRedisArgs("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000", "--cluster-port", strconv.Itoa(bus))
		addrs[i] = nodes[i].Addr()
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	// Each node announces its proxy's port, so the slot map and every
	// MOVED the service sees point at the proxies.
	proxies := make([]*faultproxy.Proxy, n)
	seeds := make([]string, n)
	for i, addr := range addrs {
		p, err := faultproxy.Start(addr)
		if err != nil {
			return nil, nil, err
		}
		env.Cleanup(func() { p.Close() })
		proxies[i], seeds[i] = p, "redis://"+p.Addr()
		_, port, _ := net.SplitHostPort(p.Addr())
		if err := redisDo(addr, "CONFIG", "SET", "cluster-announce-port", port); err != nil {
			return nil, nil, err
		}
	}
	if err := waitAnnounced(addrs, proxies); err != nil {
		return nil, nil, err
	}
	cfg := ServiceConfig("")
	cfg.RedisMode, cfg.RedisURLs = function.ModeCluster, seeds
	targets := []string{inProcessConfig(env, cfg)}
	// A few milliseconds of latency keep batches in flight, so that the
	// frequent resets land between a batch's write and its last answer.
	for _, p := range proxies {
		p.SetLatency(5 * time.Millisecond)
	}
	i := 0
	fault := every(100*time.Millisecond, func() {
		proxies[i%n].DropAll()
		i++
	})
	return targets, fault, nil
}

// redisDo runs one command on the Redis at addr.
func redisDo(addr string, args ...any) error {
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Do(ctx, args...).Err()
}

// waitAnnounced waits until every node's slot map names the proxies only,
// and the cluster is ok.
func waitAnnounced(addrs []string, proxies []*faultproxy.Proxy) error {
	want := map[string]bool{}
	for _, p := range proxies {
		want[p.Addr()] = true
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
		for {
			ok := false
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			info, err := c.ClusterInfo(ctx).Result()
			slots, serr := c.ClusterSlots(ctx).Result()
			cancel()
			if err == nil && serr == nil && strings.Contains(info, "cluster_state:ok") && len(slots) > 0 {
				ok = true
				for _, r := range slots {
					for _, nd := range r.Nodes {
						if !want[nd.Addr] {
							ok = false
						}
					}
				}
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				return fmt.Errorf("cluster-reset: node %s does not announce the proxies: %v %v %v", addr, err, serr, slots)
			}
			time.Sleep(50 * time.Millisecond)
		}
		c.Close()
	}
	return nil
}

// freePort is a TCP port free on loopback a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
