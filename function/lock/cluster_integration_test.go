//go:build integration

package lock_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"handler/function/function/lock"
	"handler/function/function/redistest"
)

func newClusterLocker(t *testing.T, srvs []*redistest.Server) (*lock.Locker, *lock.RedisStore) {
	t.Helper()
	s := lock.NewRedisStore(clusterClient(srvs), lock.RedisOptions{Prefix: "it:", Timeout: opTimeout, Sharded: true})
	t.Cleanup(func() { s.Close() })
	return lock.NewLocker(s, s), s
}

func TestClusterLocksSpreadOverEveryMaster(t *testing.T) {
	srvs := redistest.StartCluster(t, 3)
	l, s := newClusterLocker(t, srvs)
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		id := fmt.Sprintf("spread/%d", i)
		lease, err := l.Acquire(ctx, lock.AcquireRequest{ID: id, Owner: "o", TTL: time.Minute})
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if _, err := s.Heartbeat(ctx, id, "o", time.Minute); err != nil {
			t.Fatalf("heartbeat %s: %v", id, err)
		}
		if got, err := s.Inspect(ctx, id); err != nil || !got.Held || got.Fence != lease.Fence {
			t.Fatalf("inspect %s = %+v, %v", id, got, err)
		}
	}
	// Each master holds keys of its own slots only: all three hold some.
	total := int64(0)
	for _, srv := range srvs {
		n, err := srv.Client().DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Errorf("master %s holds no lock", srv.Addr())
		}
		total += n
	}
	if total != 200 {
		t.Errorf("%d keys over the masters, want 200", total)
	}
	// The key and its channel share a slot (the scripts touch both).
	key := s.Key("spread/7")
	k, _ := srvs[0].Client().ClusterKeySlot(ctx, key).Result()
	c, _ := srvs[0].Client().ClusterKeySlot(ctx, key+":released").Result()
	if k != c {
		t.Errorf("key slot %d, channel slot %d", k, c)
	}
	for i := 0; i < 200; i++ {
		if _, err := s.Release(ctx, fmt.Sprintf("spread/%d", i), "o"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestClusterWaitWokenByRelease(t *testing.T) {
	srvs := redistest.StartCluster(t, 3)
	l, s := newClusterLocker(t, srvs)
	ctx := context.Background()
	// Locks on different masters, waited on at the same time: the shard
	// subscriptions go to each lock's own master.
	ids := []string{"w/a", "w/b", "w/c", "w/d", "w/e", "w/f"}
	for _, id := range ids {
		if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: id, Owner: "h", TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	type result struct {
		id  string
		at  time.Time
		err error
	}
	done := make(chan result, len(ids))
	for _, id := range ids {
		go func(id string) {
			lease, err := l.Acquire(ctx, lock.AcquireRequest{ID: id, Owner: "w", TTL: time.Second, Wait: 5 * time.Second})
			if err == nil && !lease.Woken {
				err = fmt.Errorf("not woken: %+v", lease)
			}
			done <- result{id, time.Now(), err}
		}(id)
	}
	time.Sleep(300 * time.Millisecond)
	for _, id := range ids {
		released := time.Now()
		if _, err := s.Release(ctx, id, "h"); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil {
			t.Fatalf("waiter on %s: %v", r.id, r.err)
		}
		if r.id != id {
			t.Fatalf("releasing %s woke the waiter on %s", id, r.id)
		}
		if d := r.at.Sub(released); d > 100*time.Millisecond {
			t.Fatalf("waiter on %s answered %v after the release", id, d)
		}
	}
}

func TestClusterNodeRestartKeepsExclusion(t *testing.T) {
	// appendfsync always: a master that restarts keeps every acknowledged
	// grant, as a Cluster without replicas needs for mutual exclusion (see
	// TestClusterFencesAfterNodeLostData for a restart without data).
	srvs := redistest.StartCluster(t, 3, redistest.WithAOF())
	l, _ := newClusterLocker(t, srvs)
	var ids []string
	for i := 0; i < 12; i++ {
		ids = append(ids, fmt.Sprintf("load/%d", i))
	}
	e := newExclusion(t, l, ids...)
	stop := e.run(8, 2*time.Second)
	time.Sleep(700 * time.Millisecond)
	before := e.grants.Load()
	srvs[1].Kill()
	time.Sleep(300 * time.Millisecond)
	srvs[1].Restart()
	redistest.WaitClusterOK(t, srvs)
	time.Sleep(time.Second)
	stop()
	if e.grants.Load() <= before {
		t.Errorf("no grants after the restart (%d before)", before)
	}
	e.check()
}

func TestClusterFencesAfterNodeLostData(t *testing.T) {
	srvs := redistest.StartCluster(t, 3)
	_, s := newClusterLocker(t, srvs)
	ctx := context.Background()
	// A lock on every master, then each master restarts empty in turn.
	last := map[string]int64{}
	var ids []string
	for i := 0; i < 30; i++ {
		id := fmt.Sprintf("f/%d", i)
		ids = append(ids, id)
		last[id] = acquireRetry(t, s, id, "before", time.Minute).Fence
	}
	for _, srv := range srvs {
		srv.Restart()
		redistest.WaitClusterOK(t, srvs)
	}
	for _, id := range ids {
		lease := acquireRetry(t, s, id, "after", time.Minute)
		if lease.Fence <= last[id] {
			t.Fatalf("%s: fence %d after the restart, not above %d", id, lease.Fence, last[id])
		}
	}
	_ = ctx
}

// A waiter's shard subscription ends when its slot moves to another master
// (Redis pushes sunsubscribe and keeps the connection). The hub subscribes
// again on the new master, so the release still wakes the waiter, long
// before the holder's lease would have ended.
func TestClusterWakeUpAfterSlotMoves(t *testing.T) {
	srvs := redistest.StartCluster(t, 3)
	l, s := newClusterLocker(t, srvs)
	ctx := context.Background()
	const id = "moving"
	if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: id, Owner: "h", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		lease, err := l.Acquire(ctx, lock.AcquireRequest{ID: id, Owner: "w", TTL: time.Second, Wait: 20 * time.Second})
		if err == nil && !lease.Woken {
			err = fmt.Errorf("not woken: %+v", lease)
		}
		done <- err
	}()
	slot, err := srvs[0].Client().ClusterKeySlot(ctx, s.Key(id)).Result()
	if err != nil {
		t.Fatal(err)
	}
	from := redistest.SlotOwner(t, srvs, int(slot))
	channel := s.Key(id) + ":released"
	waitShardSubscribers(t, from, channel, 1)
	var to *redistest.Server
	for _, srv := range srvs {
		if srv != from {
			to = srv
			break
		}
	}
	redistest.MigrateSlot(t, srvs, int(slot), to)
	waitShardSubscribers(t, to, channel, 1) // subscribed again, on the new master
	released := time.Now()
	if _, err := s.Release(ctx, id, "h"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(released); d > 2*time.Second {
			t.Fatalf("the waiter answered %v after the release", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the release did not wake the waiter after its slot moved")
	}
}

// waitShardSubscribers waits until srv counts n subscribers of the shard
// channel.
func waitShardSubscribers(t *testing.T, srv *redistest.Server, channel string, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := srv.Client().PubSubShardNumSub(context.Background(), channel).Result()
		if err == nil && got[channel] == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("shard subscribers of %s on %s = %v (%v), want %d", channel, srv.Addr(), got, err, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// In Cluster mode each lock id with waiters holds a pub/sub connection to
// its master: the cap of waiters bounds those connections too, and a
// waiter past it answers at once.
func TestClusterWaitersCapBoundsConnections(t *testing.T) {
	srvs := redistest.StartCluster(t, 3)
	s := lock.NewRedisStore(clusterClient(srvs), lock.RedisOptions{Prefix: "it:", Timeout: opTimeout, Sharded: true})
	t.Cleanup(func() { s.Close() })
	const max, ids = 5, 20
	l := lock.NewLocker(s, s, lock.WithMaxWaiters(max))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 0; i < ids; i++ {
		if _, err := l.Acquire(ctx, lock.AcquireRequest{ID: fmt.Sprintf("cap/%d", i), Owner: "h", TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	refused := make(chan error, ids)
	for i := 0; i < ids; i++ {
		go func(i int) {
			_, err := l.Acquire(ctx, lock.AcquireRequest{ID: fmt.Sprintf("cap/%d", i), Owner: "w", TTL: time.Second, Wait: time.Minute})
			refused <- err
		}(i)
	}
	for i := 0; i < ids-max; i++ {
		select {
		case err := <-refused:
			if !errors.Is(err, lock.ErrTooManyWaiters) {
				t.Fatalf("waiter past the cap: %v, want ErrTooManyWaiters", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d waiters past the cap were refused", i, ids-max)
		}
	}
	pubsub := func() int {
		n := 0
		for _, srv := range srvs {
			list, err := srv.Client().ClientList(context.Background()).Result()
			if err != nil {
				t.Fatal(err)
			}
			n += strings.Count(list, "flags=P")
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.Waiters() != max || pubsub() != max {
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters, %d pub/sub connections; want %d of each", l.Waiters(), pubsub(), max)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	for i := 0; i < max; i++ {
		<-refused
	}
	for pubsub() != 0 {
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatalf("%d pub/sub connections left after every wait ended", pubsub())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
