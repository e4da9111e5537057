package function

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Config is the service's configuration, read from CANDADO_* environment
// variables (and PORT). Every tag names the whole variable: envconfig is run
// without a prefix, so it never falls back to an unprefixed name such as
// REDIS_URL when a CANDADO_ one is unset.
type Config struct {
	// RedisURL is a redis:// or rediss:// URL. Empty in single mode means no
	// Redis is configured: the service then answers every lock call 503 (see
	// RedisURLFrom and NewService); only cmd/candado, run locally with
	// nothing set, replaces it with an in-process Redis first.
	RedisURL string `envconfig:"CANDADO_REDIS_URL"`
	// RedisURLFrom says where RedisURL came from: unset, or the variable or
	// file that set it (possibly to an empty value).
	RedisURLFrom Origin `ignored:"true"`
	// RedisMode is how Candado reaches Redis: single (RedisURL), sentinel,
	// cluster or quorum (RedisURLs).
	RedisMode string `envconfig:"CANDADO_REDIS_MODE" default:"single"`
	// RedisURLs are redis:// or rediss:// URLs, comma-separated: the
	// Sentinels, the Cluster's seed nodes, or the quorum's independent
	// masters. Credentials and TLS come from the URLs.
	RedisURLs []string `envconfig:"CANDADO_REDIS_URLS"`
	// RedisMasterName is the name Sentinel monitors the master under.
	RedisMasterName string `envconfig:"CANDADO_REDIS_MASTER_NAME"`
	// Port is the listen port of the standalone server: PORT when set, else
	// CANDADO_PORT, else 8080. A Kubernetes service-link value in
	// CANDADO_PORT (tcp://10.96.11.11:80) is ignored with a notice.
	Port int `ignored:"true"`
	// KeyPrefix starts every Redis key and channel name Candado uses.
	KeyPrefix string `envconfig:"CANDADO_KEY_PREFIX" default:"candado:"`
	// DefaultTTL is the lease length when a request names none.
	DefaultTTL time.Duration `envconfig:"CANDADO_DEFAULT_TTL" default:"30s"`
	// MaxTTL is the longest lease a request may ask for.
	MaxTTL time.Duration `envconfig:"CANDADO_MAX_TTL" default:"1h"`
	// MaxWait caps how long an acquire waits for a held lock; the entry's
	// request deadline may cap it further (see api.Limits).
	MaxWait time.Duration `envconfig:"CANDADO_MAX_WAIT" default:"60s"`
	// MaxWaiters caps the acquires waiting at once in this instance; past it
	// a waiting acquire answers 503 at once. 0 means the default, 1000.
	MaxWaiters int `envconfig:"CANDADO_MAX_WAITERS" default:"1000"`
	// MaxWatchers caps the watch streams open at once in this instance; past
	// it a watch answers 503 at once. 0 means the default, 1000.
	MaxWatchers int `envconfig:"CANDADO_MAX_WATCHERS" default:"1000"`
	// MaxWatchersPerIdentity caps each identity's open watch streams on
	// this instance (429 too_many_watchers past it); 0: no cap.
	MaxWatchersPerIdentity int `envconfig:"CANDADO_MAX_WATCHERS_PER_IDENTITY"`
	// AuthToken, when set, is a bearer token with every right (see access).
	AuthToken string `envconfig:"CANDADO_AUTH_TOKEN"`
	// AuthTokenFrom says where AuthToken came from. Empty, from wherever,
	// means no token: the documented way to serve Knative Eventing's
	// brokers, which send none.
	AuthTokenFrom Origin `ignored:"true"`
	// EventSource is the CloudEvents source of reply events.
	EventSource string `envconfig:"CANDADO_EVENT_SOURCE" default:"/candado"`
	// EventSink, when set, is an http:// or https:// URL to which the service
	// POSTs dev.candado.lock.acquired and released notifications as
	// CloudEvents, fire and forget (see events.Sink); empty sends none.
	EventSink string `envconfig:"CANDADO_EVENT_SINK"`
	// BackendTimeout bounds each Redis round trip, so a dead backend is a fast 503.
	BackendTimeout time.Duration `envconfig:"CANDADO_BACKEND_TIMEOUT" default:"500ms"`

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
	// OwnerKeyFrom says where OwnerKey came from.
	OwnerKeyFrom Origin `ignored:"true"`
	// MaxWaitersPerIdentity caps each identity's acquires with a wait in
	// flight on this instance (429 too_many_waiters past it); 0: no cap.
	MaxWaitersPerIdentity int `envconfig:"CANDADO_MAX_WAITERS_PER_IDENTITY"`

	// Deadline is the entry's request deadline: how long after a request
	// arrives the platform's server cuts its answer (0: never). Each entry
	// sets it (see the Deadline* constants and OpenFaaSDeadline); waits are
	// capped to end a margin before it.
	Deadline time.Duration `ignored:"true"`
	// Notices are what LoadConfig ignored and why, one line each; NewService
	// logs them once.
	Notices []string `ignored:"true"`
}

// Origin is where a setting came from.
type Origin struct {
	// Kind is one of the Origin* constants.
	Kind int
	// Name is the variable (Kind OriginEnv) or the file (OriginFile,
	// OriginOpenFaaS) that set the value.
	Name string
}

// The kinds of Origin.
const (
	OriginUnset    = iota // nothing configured it
	OriginEnv             // an environment variable
	OriginFile            // the file named by its _FILE variable
	OriginOpenFaaS        // the OpenFaaS secret file
)

// Prefix is the environment prefix of every Config variable.
const Prefix = "CANDADO"

// Variable is one environment variable the service reads.
type Variable struct {
	Name    string
	Default string // empty when it has none
}

// Variables lists every environment variable the service reads: Config's
// fields by their envconfig names, the ones read by hand (PORT,
// CANDADO_PORT) and the secrets' _FILE variants. Tests hold the manifests,
// the docs and `candado serve --help` against it.
func Variables() []Variable {
	vars := []Variable{{Name: "PORT"}, {Name: Prefix + "_PORT", Default: "8080"}}
	typ := reflect.TypeOf(Config{})
	for i := range typ.NumField() {
		f := typ.Field(i)
		if name := f.Tag.Get("envconfig"); name != "" && f.Tag.Get("ignored") != "true" {
			vars = append(vars, Variable{Name: name, Default: f.Tag.Get("default")})
		}
	}
	for _, s := range secrets {
		vars = append(vars, Variable{Name: Prefix + "_" + s.name + "_FILE"})
	}
	return vars
}

// serviceLink matches what the kubelet writes into <SERVICE>_PORT for a
// Service in the pod's namespace: proto://ip:port.
var serviceLink = regexp.MustCompile(`^(tcp|udp|sctp)://[0-9a-fA-F.:\[\]]+:[0-9]+$`)

// LoadConfig reads the configuration from the environment and validates it.
// Its errors name the offending variable. Only CANDADO_* names and PORT are
// read, so variables meant for other software never change Candado.
func LoadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	for _, s := range secrets {
		if err := readSecret(s.name, s.openfaas, s.dst(&c), s.from(&c)); err != nil {
			return Config{}, err
		}
	}
	c.TokensFile = tokensFile(c.TokensFile)
	port, notice, err := loadPort()
	if err != nil {
		return Config{}, err
	}
	c.Port = port
	if notice != "" {
		c.Notices = append(c.Notices, notice)
	}
	return c, c.Validate()
}

// loadPort reads PORT, which wins, else CANDADO_PORT, else 8080. A
// service-link value in CANDADO_PORT is not a port: it is skipped with a
// notice. Any other value that is not a number is an error naming its
// variable; an empty one counts as unset.
func loadPort() (int, string, error) {
	if p := os.Getenv("PORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return 0, "", fmt.Errorf("config: PORT=%q is not a port number", p)
		}
		return n, "", nil
	}
	p := os.Getenv(Prefix + "_PORT")
	switch {
	case p == "":
		return 8080, "", nil
	case serviceLink.MatchString(p):
		return 8080, fmt.Sprintf("ignoring CANDADO_PORT=%s: it is a Kubernetes service link (the Service named candado), not a port; listening on 8080 (set PORT to choose)", p), nil
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return 0, "", fmt.Errorf("config: CANDADO_PORT=%q is not a port number", p)
	}
	return n, "", nil
}

// secrets are the settings that may also come from a file: CANDADO_<name>_FILE,
// or the OpenFaaS secret file named openfaas.
var secrets = []struct {
	name, openfaas string
	dst            func(*Config) *string
	from           func(*Config) *Origin
}{
	{"REDIS_URL", "candado-redis-url", func(c *Config) *string { return &c.RedisURL }, func(c *Config) *Origin { return &c.RedisURLFrom }},
	{"AUTH_TOKEN", "candado-auth-token", func(c *Config) *string { return &c.AuthToken }, func(c *Config) *Origin { return &c.AuthTokenFrom }},
	{"OWNER_KEY", "candado-owner-key", func(c *Config) *string { return &c.OwnerKey }, func(c *Config) *Origin { return &c.OwnerKeyFrom }},
}

// OpenFaaSSecrets is where OpenFaaS mounts a function's secrets.
var OpenFaaSSecrets = "/var/openfaas/secrets"

// readSecret fills *dst, when CANDADO_<name> is unset, from the file named by
// CANDADO_<name>_FILE or else from the OpenFaaS secret file, so no deployment
// needs secrets in plain environment variables, and records in *from where
// the value came from. A named file that cannot be read is an error; an
// absent OpenFaaS secret is not.
func readSecret(name, openfaas string, dst *string, from *Origin) error {
	variable := Prefix + "_" + name
	file, fromEnv := os.LookupEnv(variable + "_FILE")
	if _, set := os.LookupEnv(variable); set {
		if fromEnv {
			return fmt.Errorf("config: set %s or %s_FILE, not both", variable, variable)
		}
		*from = Origin{Kind: OriginEnv, Name: variable}
		return nil
	}
	kind := OriginFile
	if !fromEnv {
		kind = OriginOpenFaaS
		file = filepath.Join(OpenFaaSSecrets, openfaas)
		if _, err := os.Lstat(file); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	if file == "" { // configured, but to nothing: as unusable as an empty file
		*from = Origin{Kind: OriginFile}
		return nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("config: %s: reading the secret file: %w", variable+"_FILE", err)
	}
	*dst = strings.TrimRight(string(b), "\r\n")
	*from = Origin{Kind: kind, Name: file}
	return nil
}

// emptySecret explains, naming what configured it, why a secret that is
// configured but empty cannot be used; "" when it is unset or has a value.
func emptySecret(variable, value string, from Origin) string {
	if value != "" {
		return ""
	}
	switch from.Kind {
	case OriginEnv:
		return variable + " is empty"
	case OriginFile:
		if from.Name == "" {
			return variable + "_FILE is empty"
		}
		return fmt.Sprintf("%s_FILE names %s, which is empty", variable, from.Name)
	case OriginOpenFaaS:
		return fmt.Sprintf("the OpenFaaS secret %s (for %s) is empty", from.Name, variable)
	}
	return ""
}

// RedisUnset reports whether no Redis is configured at all: single mode and
// CANDADO_REDIS_URL unset, with no _FILE variable and no OpenFaaS secret
// for it. Only then may a local run use an in-process Redis.
func (c Config) RedisUnset() bool {
	return c.mode() == ModeSingle && c.RedisURL == "" && c.RedisURLFrom.Kind == OriginUnset
}

// unusable says why the service cannot serve locks as configured, naming
// the variable, or returns "". It covers what a platform produces from a
// missing or empty Secret, which Validate lets through so that the service
// starts, reports not ready and answers 503 rather than crash-looping.
func (c Config) unusable() string {
	if c.mode() != ModeSingle || c.RedisURL != "" {
		return ""
	}
	if msg := emptySecret(Prefix+"_REDIS_URL", c.RedisURL, c.RedisURLFrom); msg != "" {
		return msg + ": set it to the redis:// or rediss:// URL of the Redis that keeps the locks"
	}
	return "CANDADO_REDIS_URL is not set: set it to the redis:// or rediss:// URL of the Redis that keeps the locks (the in-process Redis is only for a local run of cmd/candado)"
}

// Validate reports every setting that cannot work, each naming its variable.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s_%s %s", Prefix, name, fmt.Sprintf(format, args...)))
	}
	if c.Port < 1 || c.Port > 65535 {
		bad("PORT", "must be 1-65535, got %d", c.Port)
	}
	c.validateRedis(bad)
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
	if c.Deadline < 0 {
		errs = append(errs, fmt.Errorf("config: the entry's request deadline must not be negative, got %s", c.Deadline))
	}
	errs = append(errs, c.validateAccess()...)
	return errors.Join(errs...)
}
