package function

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"handler/function/function/lock"
)

func TestRedisModeConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string // substrings of the error; none: valid
	}{
		{"single by default", map[string]string{"CANDADO_REDIS_URL": "redis://h:6379/0"}, nil},
		{"single, set but empty", map[string]string{"CANDADO_REDIS_MODE": ""}, nil},
		{"sentinel", map[string]string{"CANDADO_REDIS_MODE": "sentinel", "CANDADO_REDIS_MASTER_NAME": "mymaster",
			"CANDADO_REDIS_URLS": "redis://:pw@s1:26379, redis://:pw@s2:26379,redis://:pw@s3:26379,"}, nil},
		{"cluster", map[string]string{"CANDADO_REDIS_MODE": "cluster", "CANDADO_REDIS_URLS": "rediss://u:p@c1:6379"}, nil},
		{"quorum", map[string]string{"CANDADO_REDIS_MODE": "quorum", "CANDADO_REDIS_URLS": "redis://a:6379,redis://b:6379,redis://c:6379"}, nil},

		{"unknown mode", map[string]string{"CANDADO_REDIS_MODE": "replicated"}, []string{"CANDADO_REDIS_MODE", "replicated"}},
		{"sentinel without addresses", map[string]string{"CANDADO_REDIS_MODE": "sentinel", "CANDADO_REDIS_MASTER_NAME": "m"},
			[]string{"CANDADO_REDIS_URLS", "Sentinels"}},
		{"sentinel without master name", map[string]string{"CANDADO_REDIS_MODE": "sentinel", "CANDADO_REDIS_URLS": "redis://s1:26379"},
			[]string{"CANDADO_REDIS_MASTER_NAME"}},
		{"cluster without addresses", map[string]string{"CANDADO_REDIS_MODE": "cluster"}, []string{"CANDADO_REDIS_URLS", "seed"}},
		{"cluster with only a comma", map[string]string{"CANDADO_REDIS_MODE": "cluster", "CANDADO_REDIS_URLS": ","}, []string{"CANDADO_REDIS_URLS"}},
		{"quorum without addresses", map[string]string{"CANDADO_REDIS_MODE": "quorum"}, []string{"CANDADO_REDIS_URLS", "masters"}},
		{"even quorum", map[string]string{"CANDADO_REDIS_MODE": "quorum", "CANDADO_REDIS_URLS": "redis://a:1,redis://b:1"},
			[]string{"CANDADO_REDIS_URLS", "odd", "got 2"}},
		{"four masters", map[string]string{"CANDADO_REDIS_MODE": "quorum", "CANDADO_REDIS_URLS": "redis://a:1,redis://b:1,redis://c:1,redis://d:1"},
			[]string{"CANDADO_REDIS_URLS", "odd", "got 4"}},
		{"bad scheme", map[string]string{"CANDADO_REDIS_MODE": "cluster", "CANDADO_REDIS_URLS": "redis://a:1,http://b:1"},
			[]string{"CANDADO_REDIS_URLS", "entry 2 of 2", "redis://"}},
		{"bad URL", map[string]string{"CANDADO_REDIS_MODE": "quorum", "CANDADO_REDIS_URLS": "redis://a:1,redis://b:1,redis://u:secret@c:1/notadb"},
			[]string{"CANDADO_REDIS_URLS", "entry 3 of 3"}},
		{"unparsable URL", map[string]string{"CANDADO_REDIS_MODE": "cluster", "CANDADO_REDIS_URLS": "redis://u:secret@[::1"},
			[]string{"CANDADO_REDIS_URLS", "entry 1 of 1"}},
		{"URLS in single mode", map[string]string{"CANDADO_REDIS_URLS": "redis://a:1"}, []string{"CANDADO_REDIS_URLS", "single"}},
		{"URL in cluster mode", map[string]string{"CANDADO_REDIS_MODE": "cluster", "CANDADO_REDIS_URLS": "redis://a:1", "CANDADO_REDIS_URL": "redis://b:1"},
			[]string{"CANDADO_REDIS_URL ", "CANDADO_REDIS_URLS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CANDADO_PORT", "8080") // wins over a PORT in the test's environment
			t.Setenv("PORT", "8080")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := LoadConfig()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("LoadConfig: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("LoadConfig accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q repeats a password", err)
			}
		})
	}
}

// newBackend builds every mode's store without any I/O: nothing listens at
// these addresses, yet construction succeeds and calls fail fast with
// ErrUnavailable.
func TestNewBackendModes(t *testing.T) {
	for _, tc := range []struct {
		mode, urls string
		quorum     bool
	}{
		{ModeSingle, "", false},
		{ModeSentinel, "redis://127.0.0.1:1,redis://127.0.0.1:2", false},
		{ModeCluster, "redis://127.0.0.1:1", false},
		{ModeQuorum, "redis://127.0.0.1:1,redis://127.0.0.1:2,redis://127.0.0.1:3", true},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			cfg := testConfig("redis://127.0.0.1:1/0")
			cfg.BackendTimeout = 100 * time.Millisecond
			cfg.RedisMode = tc.mode
			if tc.mode != ModeSingle {
				cfg.RedisURL = ""
				cfg.RedisURLs = strings.Split(tc.urls, ",")
				cfg.RedisMasterName = "mymaster"
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			store, notifier, err := newBackend(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			if notifier == nil {
				t.Fatal("no notifier")
			}
			if _, ok := store.(*lock.QuorumStore); ok != tc.quorum {
				t.Fatalf("store %T", store)
			}
			start := time.Now()
			_, err = store.Acquire(context.Background(), lock.AcquireRequest{ID: "x", Owner: "o", TTL: time.Second})
			if !errors.Is(err, lock.ErrUnavailable) {
				t.Fatalf("acquire with nothing listening = %v", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
}

// TestEveryModeIsTuned: each mode's clients carry the shared tuning (no
// transparent retries, the backend timeout everywhere, RESP2, no identity),
// which the no-false-success guarantee rests on. (go-redis reads
// MaxRetries -1 as none and may store it as 0.)
func TestEveryModeIsTuned(t *testing.T) {
	const timeout = 250 * time.Millisecond
	check := func(t *testing.T, o *redis.Options) {
		t.Helper()
		if o.MaxRetries > 0 || o.DialTimeout != timeout || o.ReadTimeout != timeout || o.WriteTimeout != timeout ||
			o.PoolTimeout != timeout || !o.ContextTimeoutEnabled || o.Protocol != 2 || !o.DisableIdentity {
			t.Fatalf("client not tuned: MaxRetries %d, timeouts %s %s %s %s, context %v, protocol %d, identity off %v",
				o.MaxRetries, o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.ContextTimeoutEnabled, o.Protocol, o.DisableIdentity)
		}
	}
	cfg := Config{BackendTimeout: timeout, RedisMasterName: "m", RedisURLs: []string{"redis://u:pw@127.0.0.1:1/3", "redis://127.0.0.1:2"}}
	build := func(t *testing.T, mode string, newClient func(Config) (redis.UniversalClient, error)) redis.UniversalClient {
		t.Helper()
		cfg := cfg
		cfg.RedisMode = mode
		c, err := newClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	t.Run("single", func(t *testing.T) {
		c, err := newRedisClient("redis://u:pw@127.0.0.1:1/3?pool_size=7", timeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		o := c.Options()
		check(t, o)
		if o.PoolSize != 7 || o.DB != 3 || o.Password != "pw" {
			t.Fatalf("the URL's settings were lost: pool %d, db %d", o.PoolSize, o.DB)
		}
	})
	t.Run("sentinel", func(t *testing.T) {
		o := build(t, ModeSentinel, newSentinelClient).(*redis.Client).Options()
		check(t, o)
		if o.DB != 3 || o.Username != "u" || o.Password != "pw" {
			t.Fatalf("the first URL's credentials and database are not the master's: db %d", o.DB)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		o := build(t, ModeCluster, newClusterClient).(*redis.ClusterClient).Options()
		if o.MaxRetries > 0 || o.ReadTimeout != timeout || o.DialTimeout != timeout || o.WriteTimeout != timeout ||
			o.PoolTimeout != timeout || !o.ContextTimeoutEnabled || o.Protocol != 2 || !o.DisableIdentity || o.MaxRedirects != 3 {
			t.Fatalf("cluster client not tuned: %+v", o)
		}
		if len(o.Addrs) != 2 || o.Password != "pw" {
			t.Fatalf("seeds %v", o.Addrs)
		}
	})
}
