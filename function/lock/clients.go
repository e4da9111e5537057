package lock

import "github.com/redis/go-redis/v9"

// Client is the store's Redis client, for the service's own keys next to
// the locks (the owner key), which need no script.
func (s *RedisStore) Client() redis.UniversalClient { return s.rdb }

// Clients are the masters' clients, in the order they were given.
func (q *QuorumStore) Clients() []redis.UniversalClient {
	cs := make([]redis.UniversalClient, len(q.masters))
	for i, m := range q.masters {
		cs[i] = m.rdb
	}
	return cs
}
