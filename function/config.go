package function

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Config is the service's configuration, read from CANDADO_* environment variables.
type Config struct {
	// RedisURL is a redis:// or rediss:// URL; empty starts an in-process Redis.
	RedisURL string `envconfig:"REDIS_URL"`
	// RedisMode is how Candado reaches Redis: single (RedisURL), sentinel,
	// cluster or quorum (RedisURLs).
	RedisMode string `envconfig:"REDIS_MODE" default:"single"`
	// RedisURLs are redis:// or rediss:// URLs, comma-separated: the
	// Sentinels, the Cluster's seed nodes, or the quorum's independent
	// masters. Credentials and TLS come from the URLs.
	RedisURLs []string `envconfig:"REDIS_URLS"`
	// RedisMasterName is the name Sentinel monitors the master under.
	RedisMasterName string `envconfig:"REDIS_MASTER_NAME"`
	// Port is the listen port of the standalone server; PORT, when set, wins.
	Port int `envconfig:"PORT" default:"8080"`
	// KeyPrefix starts every Redis key and channel name Candado uses.
	KeyPrefix string `envconfig:"KEY_PREFIX" default:"candado:"`
	// DefaultTTL is the lease length when a request names none.
	DefaultTTL time.Duration `envconfig:"DEFAULT_TTL" default:"30s"`
	// MaxTTL is the longest lease a request may ask for.
	MaxTTL time.Duration `envconfig:"MAX_TTL" default:"1h"`
	// MaxWait caps how long an acquire waits for a held lock.
	MaxWait time.Duration `envconfig:"MAX_WAIT" default:"60s"`
	// MaxWaiters caps the acquires waiting at once in this instance; past it
	// a waiting acquire answers 503 at once. 0 means the default, 1000.
	MaxWaiters int `envconfig:"CANDADO_MAX_WAITERS" default:"1000"`
	// AuthToken, when set, is the bearer token every lock route requires.
	AuthToken string `envconfig:"AUTH_TOKEN"`
	// EventSource is the CloudEvents source of reply events.
	EventSource string `envconfig:"EVENT_SOURCE" default:"/candado"`
	// EventSink, when set, is an http:// or https:// URL to which the service
	// POSTs dev.candado.lock.acquired and released notifications as
	// CloudEvents, fire and forget (see events.Sink); empty sends none.
	EventSink string `envconfig:"EVENT_SINK"`
	// BackendTimeout bounds each Redis round trip, so a dead backend is a fast 503.
	BackendTimeout time.Duration `envconfig:"BACKEND_TIMEOUT" default:"500ms"`

	// Access control (see package access and access.go).

	// TokensFile is the path of the scoped tokens file, re-read when it
	// changes; unset, /var/openfaas/secrets/candado-tokens when it exists.
	TokensFile string `envconfig:"CANDADO_TOKENS_FILE"`
	// OIDCIssuer and OIDCAudience, both set, accept OIDC tokens (Knative
	// Eventing's sender identity) from that issuer for that audience.
	OIDCIssuer   string `envconfig:"CANDADO_OIDC_ISSUER"`
	OIDCAudience string `envconfig:"CANDADO_OIDC_AUDIENCE"`
	// OIDCCAFile is a PEM bundle trusted for the issuer, besides the system's.
	OIDCCAFile string `envconfig:"CANDADO_OIDC_CA_FILE"`
	// OwnerKey keys derived and bound owners; empty keeps one made once in
	// Redis (SET NX), so replicas agree.
	OwnerKey string `envconfig:"CANDADO_OWNER_KEY"`
	// MaxWaitersPerIdentity caps each identity's acquires with a wait in
	// flight on this instance (429 too_many_waiters past it); 0: no cap.
	MaxWaitersPerIdentity int `envconfig:"CANDADO_MAX_WAITERS_PER_IDENTITY"`
}

// Prefix is the environment prefix of every Config variable.
const Prefix = "CANDADO"

// LoadConfig reads the configuration from the environment and validates it.
// Its errors name the offending variable.
func LoadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process(Prefix, &c); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	for _, s := range []struct {
		name, openfaas string
		dst            *string
	}{
		{"REDIS_URL", "candado-redis-url", &c.RedisURL},
		{"AUTH_TOKEN", "candado-auth-token", &c.AuthToken},
		{"OWNER_KEY", "candado-owner-key", &c.OwnerKey},
	} {
		if err := readSecret(s.name, s.openfaas, s.dst); err != nil {
			return Config{}, err
		}
	}
	c.TokensFile = tokensFile(c.TokensFile)
	if p, ok := os.LookupEnv("PORT"); ok && p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return Config{}, fmt.Errorf("config: PORT=%q is not a port number", p)
		}
		c.Port = n
	}
	return c, c.Validate()
}

// OpenFaaSSecrets is where OpenFaaS mounts a function's secrets.
var OpenFaaSSecrets = "/var/openfaas/secrets"

// readSecret fills *dst, when CANDADO_<name> is unset, from the file named by
// CANDADO_<name>_FILE or else from the OpenFaaS secret file, so no deployment
// needs secrets in plain environment variables. A named file that cannot be
// read is an error; an absent OpenFaaS secret is not.
func readSecret(name, openfaas string, dst *string) error {
	variable := Prefix + "_" + name
	file, fromEnv := os.LookupEnv(variable + "_FILE")
	if _, set := os.LookupEnv(variable); set {
		if fromEnv {
			return fmt.Errorf("config: set %s or %s_FILE, not both", variable, variable)
		}
		return nil
	}
	if !fromEnv {
		file = filepath.Join(OpenFaaSSecrets, openfaas)
		if _, err := os.Lstat(file); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("config: %s: reading the secret file: %w", variable+"_FILE", err)
	}
	*dst = strings.TrimRight(string(b), "\r\n")
	return nil
}

// Validate reports the first setting that cannot work, naming its variable.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s_%s %s", Prefix, name, fmt.Sprintf(format, args...)))
	}
	if c.Port < 1 || c.Port > 65535 {
		bad("PORT", "must be 1-65535, got %d", c.Port)
	}
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
	if c.KeyPrefix == "" {
		bad("KEY_PREFIX", "must not be empty")
	}
	if strings.ContainsAny(c.KeyPrefix, "{}") {
		bad("KEY_PREFIX", "must not contain { or } (they mark the Cluster hash tag)")
	}
	if c.MaxTTL < time.Millisecond {
		bad("MAX_TTL", "must be at least 1ms, got %s", c.MaxTTL)
	}
	if c.DefaultTTL < time.Millisecond || c.DefaultTTL > c.MaxTTL {
		bad("DEFAULT_TTL", "must be between 1ms and CANDADO_MAX_TTL (%s), got %s", c.MaxTTL, c.DefaultTTL)
	}
	if c.MaxWait < 0 {
		bad("MAX_WAIT", "must not be negative, got %s", c.MaxWait)
	}
	if c.MaxWaiters < 0 {
		bad("MAX_WAITERS", "must not be negative (0 means the default, 1000), got %d", c.MaxWaiters)
	}
	if c.BackendTimeout < time.Millisecond {
		bad("BACKEND_TIMEOUT", "must be at least 1ms, got %s", c.BackendTimeout)
	}
	if c.EventSink != "" {
		// The value is not echoed: it may carry credentials.
		if u, err := url.Parse(c.EventSink); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("EVENT_SINK", "must be an absolute http:// or https:// URL")
		}
	}
	errs = append(errs, c.validateAccess()...)
	return errors.Join(errs...)
}
