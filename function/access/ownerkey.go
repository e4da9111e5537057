package access

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"handler/function/function/lock"
)

// KeyStore keeps the owner key where every replica finds it.
type KeyStore interface {
	// GetOrCreate stores fresh unless a key is stored already, and returns
	// the stored key, so all replicas end up with the first one written.
	GetOrCreate(ctx context.Context, fresh string) (string, error)
}

// RedisKeyStore keeps the owner key in Redis under key, written once with
// SET NX and never expiring.
func RedisKeyStore(rdb redis.UniversalClient, key string) KeyStore {
	return redisKeyStore{rdb: rdb, key: key}
}

type redisKeyStore struct {
	rdb redis.UniversalClient
	key string
}

func (s redisKeyStore) GetOrCreate(ctx context.Context, fresh string) (string, error) {
	if err := s.rdb.SetNX(ctx, s.key, fresh, 0).Err(); err != nil {
		return "", err
	}
	return s.rdb.Get(ctx, s.key).Result()
}

// QuorumKeyStore keeps the owner key on independent masters (quorum mode):
// SET NX on each, then the value that a majority holds. Replicas racing to
// create it, or a master that lost its data, still end up with one key as
// long as a majority answers.
func QuorumKeyStore(masters []redis.UniversalClient, key string) KeyStore {
	return quorumKeyStore{masters: masters, key: key}
}

type quorumKeyStore struct {
	masters []redis.UniversalClient
	key     string
}

func (q quorumKeyStore) GetOrCreate(ctx context.Context, fresh string) (string, error) {
	values := make([]string, len(q.masters))
	var wg sync.WaitGroup
	for i, m := range q.masters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if m.SetNX(ctx, q.key, fresh, 0).Err() != nil {
				return
			}
			values[i], _ = m.Get(ctx, q.key).Result() // "" on error: no vote
		}()
	}
	wg.Wait()
	votes := map[string]int{}
	for _, v := range values {
		if v != "" {
			votes[v]++
		}
	}
	for v, n := range votes {
		if n > len(q.masters)/2 {
			return v, nil
		}
	}
	return "", fmt.Errorf("no majority of %d masters agrees on the owner key", len(q.masters))
}

// OwnerKey is the secret that derived and bound owners are keyed by: the
// configured CANDADO_OWNER_KEY, or else 256 random bits made once and kept
// in a KeyStore so that replicas agree. Without it, a derived owner is a
// function of public data (the event's source and id) and anyone who sees
// the event can compute it.
type OwnerKey struct {
	store KeyStore

	mu  sync.Mutex
	key []byte
}

// NewOwnerKey uses configured when it is not empty, else store.
func NewOwnerKey(configured string, store KeyStore) *OwnerKey {
	k := &OwnerKey{store: store}
	if configured != "" {
		k.key = []byte(configured)
	}
	return k
}

// Get returns the key, fetching (or creating) it on first use. A failure is
// not remembered: the next call tries again. Its error wraps
// lock.ErrUnavailable.
func (k *OwnerKey) Get(ctx context.Context) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key != nil {
		return k.key, nil
	}
	if k.store == nil {
		return nil, fmt.Errorf("%w: no owner key is configured and none can be stored", lock.ErrUnavailable)
	}
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	got, err := k.store.GetOrCreate(ctx, hex.EncodeToString(b[:]))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the owner key: %w", lock.ErrUnavailable, err)
	}
	if got == "" {
		return nil, fmt.Errorf("%w: the stored owner key is empty", lock.ErrUnavailable)
	}
	k.key = []byte(got)
	return k.key, nil
}
