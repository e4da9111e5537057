package function

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"handler/function/function/access"
	"handler/function/function/api"
	"handler/function/function/events"
	"handler/function/function/httpapi"
	"handler/function/function/lock"
	"handler/function/function/promtext"
)

// openFaaSTokens is the OpenFaaS secret that holds the tokens file.
const openFaaSTokens = "candado-tokens"

// tokensFile is the tokens file to use: CANDADO_TOKENS_FILE when the
// variable is set (empty: none), else the OpenFaaS secret when it exists.
func tokensFile(configured string) string {
	if _, set := os.LookupEnv("CANDADO_TOKENS_FILE"); set {
		return configured
	}
	p := filepath.Join(OpenFaaSSecrets, openFaaSTokens)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// validateAccess reports the access settings that cannot work.
func (c Config) validateAccess() []error {
	var errs []error
	switch {
	case c.OIDCIssuer != "" && c.OIDCAudience == "":
		errs = append(errs, errors.New("config: CANDADO_OIDC_AUDIENCE must be set with CANDADO_OIDC_ISSUER (the Triggers' spec.subscriber.audience)"))
	case c.OIDCIssuer == "" && c.OIDCAudience != "":
		errs = append(errs, errors.New("config: CANDADO_OIDC_ISSUER must be set with CANDADO_OIDC_AUDIENCE"))
	case c.OIDCIssuer != "":
		if err := access.CheckIssuerURL(c.OIDCIssuer); err != nil {
			errs = append(errs, fmt.Errorf("config: CANDADO_OIDC_ISSUER %w", err))
		}
	}
	if c.OIDCCAFile != "" && c.OIDCIssuer == "" {
		errs = append(errs, errors.New("config: CANDADO_OIDC_CA_FILE is set but CANDADO_OIDC_ISSUER is not"))
	}
	if c.MaxWatchersPerIdentity < 0 {
		errs = append(errs, fmt.Errorf("config: CANDADO_MAX_WATCHERS_PER_IDENTITY must not be negative (0: no cap), got %d", c.MaxWatchersPerIdentity))
	}
	if c.MaxWaitersPerIdentity < 0 {
		errs = append(errs, fmt.Errorf("config: CANDADO_MAX_WAITERS_PER_IDENTITY must not be negative (0: no cap), got %d", c.MaxWaitersPerIdentity))
	}
	return errs
}

// newAuthorizer builds the access control of cfg, counting its decisions
// in reg as candado_access_decisions_total{identity, outcome}; it reads the
// tokens file and the OIDC CA file, so a bad one stops the service at start.
func newAuthorizer(cfg Config, log *slog.Logger, reg *promtext.Registry) (*access.Authorizer, error) {
	decisions := reg.NewCounterVec("candado_access_decisions_total",
		"Access decisions by identity (a tokens file entry's name or an OIDC subject; unknown for a refused credential) and outcome.",
		"identity", "outcome")
	ac := access.Config{AuthToken: cfg.AuthToken, TokensFile: cfg.TokensFile, Log: log,
		Count: func(identity, outcome string) { decisions.WithLabelValues(identity, outcome).Inc() }}
	if cfg.OIDCIssuer != "" {
		ac.OIDC = &access.OIDCConfig{Issuer: cfg.OIDCIssuer, Audience: cfg.OIDCAudience, CAFile: cfg.OIDCCAFile}
	}
	a, err := access.New(ac)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return a, nil
}

// ownerKey is the key of derived and bound owners: CANDADO_OWNER_KEY, or
// one kept next to the locks under <prefix>owner-key. With no store (an
// unusable configuration), reading it fails with why.
func ownerKey(cfg Config, store lock.Store, unusable *api.Unusable) *access.OwnerKey {
	name := cfg.KeyPrefix + "owner-key"
	var ks access.KeyStore
	if unusable != nil {
		ks = failingKeyStore{unusable}
	}
	switch s := store.(type) {
	case *lock.RedisStore:
		ks = access.RedisKeyStore(s.Client(), name)
	case *lock.QuorumStore:
		ks = access.QuorumKeyStore(s.Clients(), name)
	}
	return access.NewOwnerKey(cfg.OwnerKey, ks)
}

// failingKeyStore answers every read with err.
type failingKeyStore struct{ err error }

func (f failingKeyStore) GetOrCreate(context.Context, string) (string, error) { return "", f.err }

// right is the right a request needs before routing: none for
// CloudEvents, whose events are each checked by the mapping, else the HTTP
// route's (httpapi.Right).
func right(r *http.Request) (access.Verb, string, bool) {
	if events.IsCloudEvent(r) {
		return "", "", false
	}
	return httpapi.Right(r)
}
