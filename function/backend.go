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
	var (
		rdb redis.UniversalClient
		err error
	)
	switch cfg.mode() {
	case ModeSingle:
		rdb, err = newRedisClient(cfg.RedisURL, cfg.BackendTimeout)
		if err != nil {
			return nil, nil, fmt.Errorf("config: CANDADO_REDIS_URL: %w", err)
		}
	case ModeSentinel:
		rdb, err = newSentinelClient(cfg)
	case ModeCluster:
		rdb, err = newClusterClient(cfg)
		// Every key of a lock, and its wake-up channel, share the hash slot
		// of {id}; shard channels keep wake-ups on that slot's master.
		opts.Sharded = true
	case ModeQuorum:
		return newQuorumStore(cfg, opts)
	default:
		return nil, nil, fmt.Errorf("config: CANDADO_REDIS_MODE must be single, sentinel, cluster or quorum, got %q", cfg.RedisMode)
	}
	if err != nil {
		return nil, nil, err
	}
	s := lock.NewRedisStore(rdb, opts)
	return s, s, nil
}

// newSentinelClient is a client of the master that CANDADO_REDIS_URLS'
// Sentinels name.
func newSentinelClient(cfg Config) (redis.UniversalClient, error) {
	base, addrs, err := seeds(cfg)
	if err != nil {
		return nil, err
	}
	u := tuned(cfg.BackendTimeout)
	u.MasterName, u.Addrs = cfg.RedisMasterName, addrs
	// The URLs' credentials, database and TLS are the master's.
	u.Username, u.Password, u.DB, u.TLSConfig = base.Username, base.Password, base.DB, base.TLSConfig
	return redis.NewFailoverClient(u.Failover()), nil
}

// newClusterClient is a client of the Cluster that CANDADO_REDIS_URLS seed.
func newClusterClient(cfg Config) (redis.UniversalClient, error) {
	base, addrs, err := seeds(cfg)
	if err != nil {
		return nil, err
	}
	u := tuned(cfg.BackendTimeout)
	u.Addrs = addrs
	u.Username, u.Password, u.TLSConfig = base.Username, base.Password, base.TLSConfig
	// MOVED and ASK are followed up to 3 times. A ClusterClient also spends
	// these attempts re-sending a command, or a whole pipeline, after a
	// network error whatever MaxRetries says; the lock store marks its
	// scripts NoRetry, so a lost answer is a 503 instead.
	u.MaxRedirects = 3
	return redis.NewClusterClient(u.Cluster()), nil
}

// newQuorumStore is a quorum over one client per CANDADO_REDIS_URLS entry.
func newQuorumStore(cfg Config, opts lock.RedisOptions) (lock.Store, lock.Notifier, error) {
	var clients []redis.UniversalClient
	closeAll := func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}
	for i, u := range cfg.redisURLs() {
		rdb, err := newRedisClient(u, cfg.BackendTimeout)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("config: CANDADO_REDIS_URLS entry %d: %w", i+1, err)
		}
		clients = append(clients, rdb)
	}
	q, err := lock.NewQuorumStore(clients, opts)
	if err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("config: CANDADO_REDIS_URLS: %w", err)
	}
	return q, q, nil
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

// tuned is the tuning every client shares, the one place it is written:
// Sentinel and Cluster clients take it through UniversalOptions' Failover
// and Cluster, a single client through tune.
func tuned(timeout time.Duration) *redis.UniversalOptions {
	return &redis.UniversalOptions{
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
		Protocol:        2, // RESP2 answers, which the scripts' replies are decoded from (go-redis still sends HELLO 2 on each new connection)
		DisableIdentity: true,
	}
}

// tune sets tuned's fields on the options parsed from a URL, keeping the
// rest of what the URL says (its pool size, say).
func tune(opt *redis.Options, timeout time.Duration) {
	t := tuned(timeout).Simple()
	opt.ContextTimeoutEnabled = t.ContextTimeoutEnabled
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = t.DialTimeout, t.ReadTimeout, t.WriteTimeout, t.PoolTimeout
	opt.MaxRetries, opt.MinRetryBackoff, opt.MaxRetryBackoff = t.MaxRetries, t.MinRetryBackoff, t.MaxRetryBackoff
	opt.MinIdleConns = t.MinIdleConns
	opt.Protocol = t.Protocol
	opt.DisableIdentity = t.DisableIdentity
}

// newRedisClient is a client of one Redis at url with the shared tuning.
func newRedisClient(url string, timeout time.Duration) (*redis.Client, error) {
	opt, err := parseRedisURL(url)
	if err != nil {
		return nil, err
	}
	tune(opt, timeout)
	return redis.NewClient(opt), nil
}
