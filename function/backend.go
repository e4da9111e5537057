package function

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"handler/function/function/lock"
)

// newBackend builds the lock store and its wake-up notifier for cfg's
// CANDADO_REDIS_MODE. It does no I/O: every client dials on first use,
// honours request deadlines and fails fast when Redis is down, so a lock call
// answers 503 well within a second.
func newBackend(cfg Config) (lock.Store, lock.Notifier, error) {
	opts := lock.RedisOptions{Prefix: cfg.KeyPrefix, Timeout: cfg.BackendTimeout}
	switch cfg.mode() {
	case ModeSentinel:
		base, addrs, err := seeds(cfg)
		if err != nil {
			return nil, nil, err
		}
		t := tuned(cfg.BackendTimeout)
		rdb := redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:    cfg.RedisMasterName,
			SentinelAddrs: addrs,
			// The URLs' credentials, database and TLS are the master's.
			Username: base.Username, Password: base.Password, DB: base.DB, TLSConfig: base.TLSConfig,
			ContextTimeoutEnabled: t.ContextTimeoutEnabled,
			DialTimeout:           t.DialTimeout, ReadTimeout: t.ReadTimeout, WriteTimeout: t.WriteTimeout, PoolTimeout: t.PoolTimeout,
			MaxRetries: t.MaxRetries, MinRetryBackoff: t.MinRetryBackoff, MaxRetryBackoff: t.MaxRetryBackoff,
			MinIdleConns: t.MinIdleConns, Protocol: t.Protocol, DisableIdentity: t.DisableIdentity,
		})
		s := lock.NewRedisStore(rdb, opts)
		return s, s, nil
	case ModeCluster:
		base, addrs, err := seeds(cfg)
		if err != nil {
			return nil, nil, err
		}
		t := tuned(cfg.BackendTimeout)
		rdb := redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:    addrs,
			Username: base.Username, Password: base.Password, TLSConfig: base.TLSConfig,
			ContextTimeoutEnabled: t.ContextTimeoutEnabled,
			DialTimeout:           t.DialTimeout, ReadTimeout: t.ReadTimeout, WriteTimeout: t.WriteTimeout, PoolTimeout: t.PoolTimeout,
			MaxRetries: t.MaxRetries, MinRetryBackoff: t.MinRetryBackoff, MaxRetryBackoff: t.MaxRetryBackoff,
			MinIdleConns: t.MinIdleConns, Protocol: t.Protocol, DisableIdentity: t.DisableIdentity,
			// MOVED and ASK are followed up to 3 times. A ClusterClient also
			// spends these attempts re-sending a command, or a whole pipeline,
			// after a network error whatever MaxRetries says; the lock store
			// marks its scripts NoRetry, so a lost answer is a 503 instead.
			MaxRedirects: 3,
		})
		// Every key of a lock, and its wake-up channel, share the hash slot
		// of {id}; shard channels keep wake-ups on that slot's master.
		opts.Sharded = true
		s := lock.NewRedisStore(rdb, opts)
		return s, s, nil
	case ModeQuorum:
		var clients []redis.UniversalClient
		for i, u := range cfg.redisURLs() {
			rdb, err := newRedisClient(u, cfg.BackendTimeout)
			if err != nil {
				for _, c := range clients {
					_ = c.Close()
				}
				return nil, nil, fmt.Errorf("config: CANDADO_REDIS_URLS entry %d: %w", i+1, err)
			}
			clients = append(clients, rdb)
		}
		q, err := lock.NewQuorumStore(clients, opts)
		if err != nil {
			for _, c := range clients {
				_ = c.Close()
			}
			return nil, nil, fmt.Errorf("config: CANDADO_REDIS_URLS: %w", err)
		}
		return q, q, nil
	case ModeSingle:
		rdb, err := newRedisClient(cfg.RedisURL, cfg.BackendTimeout)
		if err != nil {
			return nil, nil, fmt.Errorf("config: CANDADO_REDIS_URL: %w", err)
		}
		s := lock.NewRedisStore(rdb, opts)
		return s, s, nil
	}
	return nil, nil, fmt.Errorf("config: CANDADO_REDIS_MODE must be single, sentinel, cluster or quorum, got %q", cfg.RedisMode)
}

// seeds parses CANDADO_REDIS_URLS into addresses; the first URL's
// credentials, database and TLS settings stand for all.
func seeds(cfg Config) (*redis.Options, []string, error) {
	var (
		base  *redis.Options
		addrs []string
	)
	urls := cfg.redisURLs()
	for i, u := range urls {
		opt, err := parseRedisURL(u)
		if err != nil {
			return nil, nil, fmt.Errorf("config: CANDADO_REDIS_URLS entry %d: %w", i+1, err)
		}
		if base == nil {
			base = opt
		}
		addrs = append(addrs, opt.Addr)
	}
	if base == nil {
		return nil, nil, fmt.Errorf("config: CANDADO_REDIS_URLS must list %s", modeAddrs[cfg.mode()])
	}
	return base, addrs, nil
}

// tuned is the tuning every client shares.
func tuned(timeout time.Duration) *redis.Options {
	return &redis.Options{
		ContextTimeoutEnabled: true,
		DialTimeout:           timeout,
		ReadTimeout:           timeout,
		WriteTimeout:          timeout,
		PoolTimeout:           timeout,
		// No transparent retries: a release that took effect before its
		// answer was lost, retried after another owner took the lock, would
		// answer not_held. The caller gets a 503 (outcome unknown) instead,
		// and the client retries knowing that; the porcupine check caught it.
		MaxRetries:      -1,
		MinRetryBackoff: 5 * time.Millisecond,
		MaxRetryBackoff: 50 * time.Millisecond,
		MinIdleConns:    0, // no background dials at start-up
		Protocol:        2, // no HELLO round trip on each new connection
		DisableIdentity: true,
	}
}

// newRedisClient is a client of one Redis at url with the shared tuning.
func newRedisClient(url string, timeout time.Duration) (*redis.Client, error) {
	opt, err := parseRedisURL(url)
	if err != nil {
		return nil, err
	}
	t := tuned(timeout)
	opt.ContextTimeoutEnabled = t.ContextTimeoutEnabled
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = t.DialTimeout, t.ReadTimeout, t.WriteTimeout, t.PoolTimeout
	opt.MaxRetries, opt.MinRetryBackoff, opt.MaxRetryBackoff = t.MaxRetries, t.MinRetryBackoff, t.MaxRetryBackoff
	opt.MinIdleConns = t.MinIdleConns
	opt.Protocol = t.Protocol
	opt.DisableIdentity = t.DisableIdentity
	return redis.NewClient(opt), nil
}
