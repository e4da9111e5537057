package access

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// ServiceAccountTokenFile is where Kubernetes mounts a pod's service-account
// token. When the file exists, OIDC discovery and JWKS requests to the
// issuer's host carry it, since the API server serves both only to
// authenticated callers by default.
const ServiceAccountTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// OIDC defaults.
const (
	// DefaultLeeway is the clock skew allowed on exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
	// DefaultRefetchEvery is the shortest time between two JWKS fetches
	// caused by tokens signed with a key not in the set.
	DefaultRefetchEvery = 10 * time.Second
	// retryEvery is the shortest time between two attempts while no key set
	// has been fetched yet, so a cold start against a slow issuer recovers
	// fast without every request hitting it.
	retryEvery = time.Second
	// maxDocument caps discovery and JWKS documents.
	maxDocument = 1 << 20
	// cacheFor is the longest a verified token is believed without checking
	// its signature again: a broker sends one token for about an hour, and a
	// signature check costs tens of microseconds.
	cacheFor = time.Minute
	// cacheSize bounds the verified tokens kept.
	cacheSize = 4096
)

// signingAlgs are the only algorithms accepted: a Kubernetes issuer signs
// with RS256 (or ES256). "none" and the HMAC algorithms are refused before
// any key is looked at, so a token "signed" with the public key as an HMAC
// secret cannot pass.
var signingAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

// OIDCConfig configures the verification of OIDC tokens (Knative Eventing's
// sender identity).
type OIDCConfig struct {
	// Issuer is the exact iss of accepted tokens; discovery is fetched from
	// Issuer + "/.well-known/openid-configuration". It must be https://, or
	// http:// to a loopback address.
	Issuer string
	// Audience must be one of a token's aud values (the Trigger's
	// spec.subscriber.audience).
	Audience string
	// CAFile, when set, is a PEM bundle trusted, besides the system roots,
	// for the issuer and its JWKS (in a cluster, the pod's
	// /var/run/secrets/kubernetes.io/serviceaccount/ca.crt).
	CAFile string
	// TokenFile is the bearer token sent with discovery and JWKS requests to
	// the issuer's own host, when the file exists. Empty means
	// ServiceAccountTokenFile.
	TokenFile string
	// Leeway is the clock skew allowed on exp, nbf and iat; 0 means
	// DefaultLeeway.
	Leeway time.Duration
	// RefetchEvery is the shortest time between JWKS fetches caused by an
	// unknown key id; 0 means DefaultRefetchEvery.
	RefetchEvery time.Duration
}

// OIDC verifies JWTs from one issuer for one audience. Discovery and the key
// set are fetched on first use, not at construction, so a cold start does no
// network I/O until a token arrives.
type OIDC struct {
	cfg    OIDCConfig
	client *http.Client
	now    func() time.Time

	cacheMu sync.Mutex
	cache   map[[sha256.Size]byte]verified

	keys      atomic.Pointer[jose.JSONWebKeySet]
	fetching  sync.Mutex // held across a fetch, so concurrent misses fetch once
	jwksURL   string     // guarded by fetching
	lastFetch time.Time  // guarded by fetching: the last attempt, good or bad
}

// NewOIDC checks cfg and builds a verifier. It reads CAFile but does no
// network I/O.
func NewOIDC(cfg OIDCConfig) (*OIDC, error) {
	if cfg.Audience == "" {
		return nil, errors.New("OIDC audience is empty")
	}
	if err := CheckIssuerURL(cfg.Issuer); err != nil {
		return nil, fmt.Errorf("OIDC issuer: %w", err)
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.RefetchEvery <= 0 {
		cfg.RefetchEvery = DefaultRefetchEvery
	}
	if cfg.TokenFile == "" {
		cfg.TokenFile = ServiceAccountTokenFile
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("OIDC CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("OIDC CA file %s holds no PEM certificate", cfg.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &OIDC{cfg: cfg, client: &http.Client{Transport: tr, Timeout: 5 * time.Second}, now: time.Now,
		cache: make(map[[sha256.Size]byte]verified)}, nil
}

// verified is a token that passed every check, and until when to believe it.
type verified struct {
	subject string
	until   time.Time
}

// cached returns the subject of a token verified recently.
func (o *OIDC) cached(digest [sha256.Size]byte) (string, bool) {
	o.cacheMu.Lock()
	defer o.cacheMu.Unlock()
	v, ok := o.cache[digest]
	if !ok || !o.now().Before(v.until) {
		return "", false
	}
	return v.subject, true
}

// remember keeps a verified token until cacheFor has passed or it expires,
// whichever comes first. A full cache drops what has run out, or else
// everything.
func (o *OIDC) remember(digest [sha256.Size]byte, sub string, exp time.Time) {
	now := o.now()
	until := now.Add(cacheFor)
	if end := exp.Add(o.cfg.Leeway); end.Before(until) {
		until = end
	}
	o.cacheMu.Lock()
	defer o.cacheMu.Unlock()
	if len(o.cache) >= cacheSize {
		for k, v := range o.cache {
			if !now.Before(v.until) {
				delete(o.cache, k)
			}
		}
		if len(o.cache) >= cacheSize {
			clear(o.cache)
		}
	}
	o.cache[digest] = verified{subject: sub, until: until}
}

// CheckIssuerURL refuses anything but https://, and http:// to loopback.
func CheckIssuerURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must be an absolute URL with no query or fragment", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q: http:// is allowed only on loopback; use https://", raw)
	}
	return fmt.Errorf("%q must be https://", raw)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// claims are the claims Candado reads.
type claims struct {
	jwt.Claims
}

// Verify checks raw, a compact JWS, and returns its subject. It wraps
// ErrUnauthorized when the token is not good (malformed, another algorithm,
// a key not in the issuer's set, a bad signature, wrong iss or aud, expired,
// not yet valid, issued in the future, no exp or no sub), and ErrUnavailable
// when the issuer cannot be reached to get its keys.
//
// A token that passed is believed again without these checks for up to a
// minute, never past its exp (with the leeway).
func (o *OIDC) Verify(ctx context.Context, raw string) (string, error) {
	digest := sha256.Sum256([]byte(raw))
	if sub, ok := o.cached(digest); ok {
		return sub, nil
	}
	tok, err := jwt.ParseSigned(raw, signingAlgs)
	if err != nil {
		return "", fmt.Errorf("%w: not a JWT signed with RS256 or ES256: %w", ErrUnauthorized, err)
	}
	if len(tok.Headers) != 1 {
		return "", fmt.Errorf("%w: a JWT has exactly one signature", ErrUnauthorized)
	}
	h := tok.Headers[0]
	keys, err := o.keysFor(ctx, h.KeyID)
	if err != nil {
		return "", err
	}
	var c claims
	verified := false
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != h.Algorithm || k.Use != "" && k.Use != "sig" {
			continue
		}
		if err := tok.Claims(k.Key, &c); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return "", fmt.Errorf("%w: the token's signature does not verify with the issuer's keys", ErrUnauthorized)
	}
	if c.Expiry == nil {
		return "", fmt.Errorf("%w: the token has no exp", ErrUnauthorized)
	}
	if c.Subject == "" {
		return "", fmt.Errorf("%w: the token has no sub", ErrUnauthorized)
	}
	want := jwt.Expected{Issuer: o.cfg.Issuer, AnyAudience: jwt.Audience{o.cfg.Audience}, Time: o.now()}
	if err := c.ValidateWithLeeway(want, o.cfg.Leeway); err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	o.remember(digest, c.Subject, c.Expiry.Time())
	return c.Subject, nil
}

// keysFor returns the keys that may have signed a token with key id kid
// (all keys when kid is empty). A kid not in the set fetches the set again,
// at most once per RefetchEvery, so rotated keys are picked up and tokens
// with made-up kids cannot make Candado hammer the issuer.
func (o *OIDC) keysFor(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	if set := o.keys.Load(); set != nil {
		if ks := pick(set, kid); len(ks) > 0 {
			return ks, nil
		}
	}
	o.fetching.Lock()
	defer o.fetching.Unlock()
	set := o.keys.Load()
	if set != nil {
		if ks := pick(set, kid); len(ks) > 0 {
			return ks, nil // fetched while this request waited
		}
	}
	gap := o.cfg.RefetchEvery
	if set == nil {
		gap = retryEvery
	}
	if !o.lastFetch.IsZero() && o.now().Sub(o.lastFetch) < gap {
		if set == nil {
			return nil, fmt.Errorf("%w: the OIDC issuer's keys could not be fetched; retry later", ErrUnavailable)
		}
		return nil, fmt.Errorf("%w: the token's key %q is not among the issuer's keys", ErrUnauthorized, kid)
	}
	o.lastFetch = o.now()
	fresh, err := o.fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: fetching the OIDC issuer's keys: %w", ErrUnavailable, err)
	}
	o.keys.Store(fresh)
	if ks := pick(fresh, kid); len(ks) > 0 {
		return ks, nil
	}
	return nil, fmt.Errorf("%w: the token's key %q is not among the issuer's keys", ErrUnauthorized, kid)
}

// pick returns the public keys of set with key id kid, or all of them when
// kid is empty.
func pick(set *jose.JSONWebKeySet, kid string) []jose.JSONWebKey {
	if kid != "" {
		return set.Key(kid)
	}
	return set.Keys
}

// fetch runs discovery (the first time) and fetches the key set;
// o.fetching is held. The key set keeps only public keys.
func (o *OIDC) fetch(ctx context.Context) (*jose.JSONWebKeySet, error) {
	if o.jwksURL == "" {
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := o.getJSON(ctx, strings.TrimSuffix(o.cfg.Issuer, "/")+"/.well-known/openid-configuration", &doc); err != nil {
			return nil, fmt.Errorf("discovery: %w", err)
		}
		if doc.Issuer != o.cfg.Issuer {
			return nil, fmt.Errorf("discovery names issuer %q, not %q", doc.Issuer, o.cfg.Issuer)
		}
		if err := CheckIssuerURL(doc.JWKSURI); err != nil {
			return nil, fmt.Errorf("discovery's jwks_uri: %w", err)
		}
		o.jwksURL = doc.JWKSURI
	}
	var set jose.JSONWebKeySet
	if err := o.getJSON(ctx, o.jwksURL, &set); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	public := &jose.JSONWebKeySet{}
	for _, k := range set.Keys {
		if k.Valid() {
			public.Keys = append(public.Keys, k.Public())
		}
	}
	if len(public.Keys) == 0 {
		return nil, errors.New("JWKS holds no usable key")
	}
	return public, nil
}

// getJSON GETs u into v. The service-account token goes only to the
// issuer's own host.
func (o *OIDC) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if iss, err := url.Parse(o.cfg.Issuer); err == nil && iss.Host == req.URL.Host {
		if tok, err := os.ReadFile(o.cfg.TokenFile); err == nil && len(tok) > 0 {
			req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		}
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxDocument {
		return fmt.Errorf("GET %s: document over %d bytes", u, maxDocument)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}
