package drive

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Etcd drives etcd's concurrency.Mutex: one session (lease with keep-alive)
// per owner, one Mutex per owner and lock, all on one client connection.
type Etcd struct {
	cli *clientv3.Client

	mu       sync.Mutex
	sessions map[string]*concurrency.Session
	mutexes  map[[2]string]*concurrency.Mutex
}

// NewEtcd connects to the etcd at endpoint (host:port).
func NewEtcd(endpoint string) (*Etcd, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	return &Etcd{cli: cli, sessions: map[string]*concurrency.Session{}, mutexes: map[[2]string]*concurrency.Mutex{}}, nil
}

func (e *Etcd) Name() string { return "etcd concurrency.Mutex" }

// mutex is owner's Mutex on id, with its session made on first use.
func (e *Etcd) mutex(id, owner string) (*concurrency.Mutex, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if m, ok := e.mutexes[[2]string{id, owner}]; ok {
		return m, nil
	}
	s, ok := e.sessions[owner]
	if !ok {
		var err error
		s, err = concurrency.NewSession(e.cli, concurrency.WithTTL(int(LeaseTTL/time.Second)))
		if err != nil {
			return nil, err
		}
		e.sessions[owner] = s
	}
	m := concurrency.NewMutex(s, "/bench/"+id)
	e.mutexes[[2]string{id, owner}] = m
	return m, nil
}

// Acquire returns the revision at which the Mutex was granted as the fence:
// each grant follows the previous holder's delete, so it rises.
func (e *Etcd) Acquire(ctx context.Context, id, owner string, wait time.Duration) (int64, error) {
	m, err := e.mutex(id, owner)
	if err != nil {
		return 0, err
	}
	if wait <= 0 {
		err = m.TryLock(ctx)
		if errors.Is(err, concurrency.ErrLocked) {
			return 0, ErrHeld
		}
	} else {
		wctx, cancel := context.WithTimeout(ctx, wait)
		err = m.Lock(wctx)
		cancel()
		if err != nil && wctx.Err() != nil && ctx.Err() == nil {
			return 0, ErrHeld
		}
	}
	if err != nil {
		return 0, err
	}
	return m.Header().Revision, nil
}

func (e *Etcd) Release(ctx context.Context, id, owner string) error {
	m, err := e.mutex(id, owner)
	if err != nil {
		return err
	}
	if err := m.Unlock(ctx); err != nil {
		return fmt.Errorf("release %s by %s: %w", id, owner, err)
	}
	return nil
}

func (e *Etcd) Close() error {
	e.mu.Lock()
	for _, s := range e.sessions {
		s.Close()
	}
	e.mu.Unlock()
	return e.cli.Close()
}
