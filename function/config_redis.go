package function

import (
	"errors"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The values of CANDADO_REDIS_MODE.
const (
	ModeSingle   = "single"
	ModeSentinel = "sentinel"
	ModeCluster  = "cluster"
	ModeQuorum   = "quorum"
)

// modeAddrs says what CANDADO_REDIS_URLS lists in each mode.
var modeAddrs = map[string]string{
	ModeSentinel: "the Sentinels",
	ModeCluster:  "the Cluster's seed nodes",
	ModeQuorum:   "the quorum's independent masters",
}

// mode is RedisMode with its default: set but empty means single.
func (c Config) mode() string {
	if c.RedisMode == "" {
		return ModeSingle
	}
	return c.RedisMode
}

// redisURLs are RedisURLs with blanks around them trimmed and empty entries
// (a trailing comma) dropped.
func (c Config) redisURLs() []string {
	var urls []string
	for _, u := range c.RedisURLs {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	return urls
}

// checkRedisURL reports why u is not a usable redis:// or rediss:// URL,
// without repeating u (it may hold a password).
func checkRedisURL(u string) error {
	if !strings.HasPrefix(u, "redis://") && !strings.HasPrefix(u, "rediss://") {
		return errors.New("must start with redis:// or rediss://")
	}
	_, err := parseRedisURL(u)
	return err
}

func parseRedisURL(u string) (*redis.Options, error) {
	opt, err := redis.ParseURL(u)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password and all
		}
		return nil, err
	}
	return opt, nil
}

// validateRedis reports through bad every Redis setting that cannot work:
// the URL or URLs the mode needs, and the master name of a Sentinel set.
func (c Config) validateRedis(bad func(name, format string, args ...any)) {
	if c.RedisURL != "" && !strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://") {
		bad("REDIS_URL", "must start with redis:// or rediss://")
	}
	switch mode := c.mode(); mode {
	case ModeSingle:
		if len(c.redisURLs()) > 0 {
			bad("REDIS_URLS", "is for CANDADO_REDIS_MODE=sentinel, cluster or quorum; single mode uses CANDADO_REDIS_URL")
		}
	case ModeSentinel, ModeCluster, ModeQuorum:
		what := modeAddrs[mode]
		urls := c.redisURLs()
		if len(urls) == 0 {
			bad("REDIS_URLS", "must list %s (comma-separated redis:// or rediss:// URLs) when CANDADO_REDIS_MODE=%s", what, mode)
		}
		for i, u := range urls {
			if err := checkRedisURL(u); err != nil {
				bad("REDIS_URLS", "entry %d of %d: %v", i+1, len(urls), err)
			}
		}
		if c.RedisURL != "" {
			bad("REDIS_URL", "must be empty when CANDADO_REDIS_MODE=%s: list %s in CANDADO_REDIS_URLS", mode, what)
		}
		if mode == ModeSentinel && c.RedisMasterName == "" {
			bad("REDIS_MASTER_NAME", "must name the master the Sentinels monitor when CANDADO_REDIS_MODE=sentinel")
		}
		if mode == ModeQuorum && len(urls)%2 == 0 {
			bad("REDIS_URLS", "must list an odd number of independent masters when CANDADO_REDIS_MODE=quorum, got %d", len(urls))
		}
	default:
		bad("REDIS_MODE", "must be single, sentinel, cluster or quorum, got %q", c.RedisMode)
	}
}
