//go:build integration

package lock

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"handler/function/function/redistest"
)

// cutProxy forwards connections to one Redis. Armed with n, the next answer
// of countScript on any connection is passed on up to the nth CRLF, then
// both sides are reset: the commands of a pipeline all ran, and the client
// read the answers of the first few only.
type cutProxy struct {
	ln     net.Listener
	target string
	cut    atomic.Int32 // CRLFs to let through before the reset; -1 disarmed
	cuts   atomic.Int32
	mu     sync.Mutex
	conns  []net.Conn
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	p.cut.Store(-1)
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go p.answers(c, s)
		}
	}()
	return p
}

func (p *cutProxy) answers(c, s net.Conn) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := s.Read(buf)
		if err != nil {
			return
		}
		b := buf[:n]
		// Only answers of countScript are cut, not those of the client's
		// own CLUSTER SLOTS.
		if lines := p.cut.Load(); lines >= 0 && bytes.HasPrefix(b, []byte("*4\r\n:")) && p.cut.CompareAndSwap(lines, -1) {
			for i := int32(0); i < lines; i++ {
				j := bytes.Index(b, []byte("\r\n"))
				if j < 0 {
					break
				}
				_, _ = c.Write(b[:j+2])
				b = b[j+2:]
			}
			p.cuts.Add(1)
			c.(*net.TCPConn).SetLinger(0)
			s.(*net.TCPConn).SetLinger(0)
			s.Close()
			return
		}
		if _, err := c.Write(b); err != nil {
			return
		}
	}
}

// clusterViaProxies is a ClusterClient tuned as the service tunes it (no
// retries asked for, MaxRedirects left unset), whose every connection goes
// through a cutProxy of the node it is for.
func clusterViaProxies(t *testing.T, srvs []*redistest.Server) (*redis.ClusterClient, map[string]*cutProxy) {
	proxies := map[string]*cutProxy{}
	var addrs []string
	for _, s := range srvs {
		proxies[s.Addr()] = startCutProxy(t, s.Addr())
		addrs = append(addrs, s.Addr())
	}
	var d net.Dialer
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Protocol: 2, DisableIdentity: true,
		ContextTimeoutEnabled: true, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second,
		WriteTimeout: time.Second, PoolTimeout: time.Second,
		MinRetryBackoff: 5 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if p := proxies[addr]; p != nil {
				addr = p.ln.Addr().String()
			}
			return d.DialContext(ctx, network, addr)
		}})
	t.Cleanup(func() { rdb.Close() })
	return rdb, proxies
}

// countScript counts its runs on KEYS[1] and answers as the lock scripts do.
var countScript = redis.NewScript(`return {redis.call('INCR', KEYS[1]), 0, 0, 0}`)

func countCall(ctx context.Context, key string) *scriptCall {
	return &scriptCall{ctx: ctx, script: countScript, keys: []string{key}, done: make(chan struct{})}
}

// A script whose answer was lost to a connection reset runs once: its call
// fails (outcome unknown, a 503 to the caller), and neither it nor the
// calls of its batch whose answers were read are sent again. Before, the
// ClusterClient retried the lone call and re-sent the whole batch.
func TestClusterLostAnswerIsNotRetried(t *testing.T) {
	srvs := redistest.StartCluster(t, 3)
	rdb, proxies := clusterViaProxies(t, srvs)
	p := newPipeliner(rdb, time.Second, 1)
	defer p.close()
	ctx := context.Background()
	// Every key in one slot, so the batch goes to one node in one pipeline.
	keys := []string{"n:{t}:1", "n:{t}:2", "n:{t}:3"}
	slot, err := srvs[0].Client().ClusterKeySlot(ctx, keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	owner := redistest.SlotOwner(t, srvs, int(slot))
	px := proxies[owner.Addr()]
	warm := countCall(ctx, "n:{t}:warm")
	p.exec([]*scriptCall{warm}) // loads the slots and the script
	if warm.err != nil {
		t.Fatal(warm.err)
	}

	// A lone call whose answer is lost.
	px.cut.Store(0)
	lone := countCall(ctx, keys[0])
	p.exec([]*scriptCall{lone})
	if lone.err == nil {
		t.Errorf("a call whose answer was lost answered %v", lone.res)
	}
	// A batch: the first answer is read, then the connection resets.
	px.cut.Store(5) // *4 and four integers
	batch := []*scriptCall{countCall(ctx, keys[1]), countCall(ctx, keys[2])}
	p.exec(batch)
	if batch[0].err != nil || len(batch[0].res) != 4 || batch[0].res[0] != int64(1) {
		t.Errorf("the call whose answer was read = %v, %v; want its first run's answer", batch[0].res, batch[0].err)
	}
	if batch[1].err == nil {
		t.Errorf("the call whose answer was lost answered %v", batch[1].res)
	}
	if px.cuts.Load() != 2 {
		t.Fatalf("%d resets, want 2", px.cuts.Load())
	}
	for _, k := range keys {
		if n, err := owner.Client().Get(ctx, k).Int(); err != nil || n != 1 {
			t.Errorf("%s ran %d times (%v), want once", k, n, err)
		}
	}
}

// MOVED and ASK are still followed: a call to a slot that moved since the
// client loaded the slots reaches its new node and runs there, alone or in
// a batch.
func TestClusterMovedIsFollowed(t *testing.T) {
	srvs := redistest.StartCluster(t, 3)
	rdb, _ := clusterViaProxies(t, srvs)
	p := newPipeliner(rdb, time.Second, 1)
	defer p.close()
	ctx := context.Background()
	key := "m:{moved}"
	slot, err := srvs[0].Client().ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	first := countCall(ctx, key)
	p.exec([]*scriptCall{first})
	if first.err != nil {
		t.Fatal(first.err)
	}
	from := redistest.SlotOwner(t, srvs, int(slot))
	for round := 0; round < 2; round++ {
		var to *redistest.Server
		for _, s := range srvs {
			if s != from {
				to = s
				break
			}
		}
		redistest.MigrateSlot(t, srvs, int(slot), to)
		batch := []*scriptCall{countCall(ctx, key)}
		if round == 1 {
			batch = append(batch, countCall(ctx, key))
		}
		p.exec(batch)
		for _, c := range batch {
			if c.err != nil {
				t.Fatalf("round %d: call after the slot moved: %v", round, c.err)
			}
		}
		from = to
	}
	if n, err := from.Client().Get(ctx, key).Int(); err != nil || n != 4 {
		t.Errorf("the key counts %d runs (%v), want 4", n, err)
	}
}
