package access

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"handler/function/function/api"
	"handler/function/function/lock"
)

// The errors of Authorize. Check them with errors.Is.
var (
	// ErrUnauthorized: no bearer credential, or one nobody knows (401).
	ErrUnauthorized = api.ErrUnauthorized
	// ErrForbidden: a known identity asked for something outside its scope (403).
	ErrForbidden = api.ErrForbidden
	// ErrUnavailable: a credential could not be checked now (the OIDC issuer
	// is unreachable); it wraps lock.ErrUnavailable, a 503 that is retried.
	ErrUnavailable = fmt.Errorf("%w: cannot check the credential now", lock.ErrUnavailable)
)

// Kind is how an identity was established.
type Kind int

// The kinds of identity.
const (
	// Anonymous: no credential is configured at all; every right.
	Anonymous Kind = iota
	// AuthToken: CANDADO_AUTH_TOKEN; every right.
	AuthToken
	// Token: a token of the tokens file.
	Token
	// Subject: a verified OIDC subject.
	Subject
)

// Identity is who a request comes from and what it may do.
type Identity struct {
	// Kind says how the identity was established.
	Kind Kind
	// Name names the identity in logs, metrics and answers: the tokens file
	// entry's name, the OIDC subject when no entry names it, "auth-token" or
	// "anonymous". It is never a credential.
	Name string
	// Subject is the verified OIDC subject of a Subject identity.
	Subject string
	// Entry is the tokens file entry that gave the rights, if any.
	Entry string
	grant Grant
}

// Principal is the stable string that owners and waiter caps are bound to:
// "" for Anonymous, "auth-token", "entry:<name>" for a tokens file entry
// (a token, or any of the subjects it lists), and "oidc" for a verified
// subject when there is no tokens file (all of them have every right and
// are one identity, so that the Knative Triggers for acquire, release and
// heartbeat, each with its own service account, act as one sender).
func (id Identity) Principal() string {
	switch {
	case id.Kind == AuthToken:
		return "auth-token"
	case id.Entry != "":
		return "entry:" + id.Entry
	case id.Kind == Subject:
		return "oidc"
	}
	return ""
}

// Allows reports whether id may do verb on the lock lockID ("" for a route
// that names no lock).
func (id Identity) Allows(verb Verb, lockID string) bool { return id.grant.Allows(verb, lockID) }

// Config configures an Authorizer. With nothing set the service is open:
// every request is Anonymous with every right.
type Config struct {
	// AuthToken is CANDADO_AUTH_TOKEN: a bearer token with every right.
	AuthToken string
	// TokensFile is the path of the tokens file (see ParsePolicy).
	TokensFile string
	// ReloadEvery is how often, at most, the tokens file is looked at again;
	// 0 means DefaultReloadEvery.
	ReloadEvery time.Duration
	// OIDC, when set, accepts JWTs from its issuer.
	OIDC *OIDCConfig
	// Log gets a line per refused request and per reload, naming
	// identities, never credentials. Nil logs nothing.
	Log *slog.Logger
	// Count, when set, is called with each decision: the identity's name
	// ("unknown" for a refused credential) and the outcome ("allowed",
	// "forbidden", "unauthorized" or "unavailable"), for metrics.
	Count func(identity, outcome string)
}

// Authorizer authenticates requests and checks their rights.
type Authorizer struct {
	open      bool
	hasAuth   bool
	authToken [sha256.Size]byte
	file      *TokenFile
	oidc      *OIDC
	log       *slog.Logger
	countFn   func(identity, outcome string)
}

// New builds an Authorizer; it reads the tokens file (a bad one is an error)
// and the OIDC CA file, but does no network I/O.
func New(cfg Config) (*Authorizer, error) {
	a := &Authorizer{log: cfg.Log, countFn: cfg.Count}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if cfg.AuthToken != "" {
		a.hasAuth = true
		a.authToken = sha256.Sum256([]byte(cfg.AuthToken))
	}
	if cfg.TokensFile != "" {
		f, err := LoadTokenFile(cfg.TokensFile, cfg.ReloadEvery, a.log)
		if err != nil {
			return nil, err
		}
		a.file = f
	}
	if cfg.OIDC != nil {
		o, err := NewOIDC(*cfg.OIDC)
		if err != nil {
			return nil, err
		}
		a.oidc = o
	}
	a.open = !a.hasAuth && a.file == nil && a.oidc == nil
	return a, nil
}

// Open reports whether no credential is configured, so every request has
// every right.
func (a *Authorizer) Open() bool { return a.open }

// Authorize authenticates r and checks that it may do verb on the lock id
// ("" for a route that names no lock). Errors wrap ErrUnauthorized,
// ErrForbidden or ErrUnavailable; the identity is returned with
// ErrForbidden too, for logs.
func (a *Authorizer) Authorize(r *http.Request, verb Verb, id string) (Identity, error) {
	ident, err := a.Authenticate(r)
	if err != nil {
		return ident, err
	}
	return ident, a.Check(ident, verb, id)
}

// Authenticate establishes who r comes from, from its Authorization header
// ("Bearer <token>"), without checking any right. Use it once for a batch of
// CloudEvents, then Check each event.
func (a *Authorizer) Authenticate(r *http.Request) (Identity, error) {
	if a.open {
		return Identity{Kind: Anonymous, Name: "anonymous", grant: everything}, nil
	}
	ident, err := a.authenticate(r.Context(), r.Header.Get("Authorization"))
	if err != nil {
		a.count("unknown", outcomeOf(err))
		a.log.Info("request refused", "reason", err, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
	}
	return ident, err
}

func (a *Authorizer) authenticate(ctx context.Context, header string) (Identity, error) {
	scheme, token, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return Identity{}, fmt.Errorf("%w: missing bearer token", ErrUnauthorized)
	}
	digest := sha256.Sum256([]byte(token))
	// Both comparisons always run, so timing does not tell which matched.
	isAuth := subtle.ConstantTimeCompare(digest[:], a.authToken[:]) == 1 && a.hasAuth
	var e entry
	inFile := false
	var policy *Policy
	if a.file != nil {
		policy = a.file.Policy()
		e, inFile = policy.token(digest)
	}
	switch {
	case isAuth:
		return Identity{Kind: AuthToken, Name: "auth-token", grant: everything}, nil
	case inFile:
		return Identity{Kind: Token, Name: e.name, Entry: e.name, grant: e.grant}, nil
	case a.oidc != nil && strings.Count(token, ".") == 2:
		sub, err := a.oidc.Verify(ctx, token)
		if err != nil {
			return Identity{}, err
		}
		ident := Identity{Kind: Subject, Name: sub, Subject: sub}
		switch se, ok := policy.subjectEntry(sub); {
		case policy == nil:
			ident.grant = everything
		case ok:
			ident.Name, ident.Entry, ident.grant = se.name, se.name, se.grant
		}
		return ident, nil
	}
	return Identity{}, fmt.Errorf("%w: unknown bearer token", ErrUnauthorized)
}

// subjectEntry finds sub's entry; a nil policy has none.
func (p *Policy) subjectEntry(sub string) (entry, bool) {
	if p == nil {
		return entry{}, false
	}
	return p.subject(sub)
}

// Check reports whether ident may do verb on the lock id; a refusal wraps
// ErrForbidden and names the identity, the verb and the lock.
func (a *Authorizer) Check(ident Identity, verb Verb, id string) error {
	if ident.Allows(verb, id) {
		a.count(ident.Name, "allowed")
		return nil
	}
	a.count(ident.Name, "forbidden")
	a.log.Info("request forbidden", "identity", ident.Name, "verb", string(verb), "id", id)
	if id == "" {
		return fmt.Errorf("%w: %q may not %s here", ErrForbidden, ident.Name, verb)
	}
	return fmt.Errorf("%w: %q may not %s %q", ErrForbidden, ident.Name, verb, id)
}

func outcomeOf(err error) string {
	switch {
	case errors.Is(err, ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, ErrForbidden):
		return "forbidden"
	}
	return "unavailable"
}

func (a *Authorizer) count(identity, outcome string) {
	if a.countFn != nil {
		a.countFn(identity, outcome)
	}
}

type identityKey struct{}

// WithIdentity returns ctx carrying ident, for the mappings behind the
// authentication middleware.
func WithIdentity(ctx context.Context, ident Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, ident)
}

// FromContext returns the identity WithIdentity put in ctx.
func FromContext(ctx context.Context) (Identity, bool) {
	ident, ok := ctx.Value(identityKey{}).(Identity)
	return ident, ok
}
