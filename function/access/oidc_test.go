package access

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const testAudience = "candado.default.svc"

var (
	keysOnce           sync.Once
	rsaKey1, rsaKey2   *rsa.PrivateKey
	rsaStranger        *rsa.PrivateKey
	ecKey              *ecdsa.PrivateKey
	errKeysNotReady    error
	testSubject        = "system:serviceaccount:default:broker-filter"
	anotherTestSubject = "system:serviceaccount:other:default"
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		for _, k := range []**rsa.PrivateKey{&rsaKey1, &rsaKey2, &rsaStranger} {
			if *k, errKeysNotReady = rsa.GenerateKey(rand.Reader, 2048); errKeysNotReady != nil {
				return
			}
		}
		ecKey, errKeysNotReady = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	})
	if errKeysNotReady != nil {
		t.Fatal(errKeysNotReady)
	}
}

// testIssuer is an OIDC issuer on loopback: discovery and a JWKS it can
// rotate, counting the JWKS fetches and remembering the Authorization
// header of each document request.
type testIssuer struct {
	*httptest.Server
	mu        sync.Mutex
	keys      []jose.JSONWebKey
	jwksHits  atomic.Int32
	auth      []string // Authorization of each request, in order
	jwksURL   string   // discovery's jwks_uri; empty means this server's
	down      atomic.Bool
	discovery func(iss string) any
}

func newTestIssuer(t testing.TB) *testIssuer {
	t.Helper()
	testKeys(t)
	is := &testIssuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		is.mu.Lock()
		is.auth = append(is.auth, r.Header.Get("Authorization"))
		jwks := is.jwksURL
		is.mu.Unlock()
		if jwks == "" {
			jwks = is.URL + "/openid/v1/jwks"
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": is.URL, "jwks_uri": jwks})
	})
	mux.HandleFunc("/openid/v1/jwks", func(w http.ResponseWriter, r *http.Request) {
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		is.jwksHits.Add(1)
		is.mu.Lock()
		is.auth = append(is.auth, r.Header.Get("Authorization"))
		set := jose.JSONWebKeySet{Keys: is.keys}
		is.mu.Unlock()
		_ = json.NewEncoder(w).Encode(set)
	})
	is.Server = httptest.NewServer(mux)
	t.Cleanup(is.Close)
	is.setKeys(jwk(&rsaKey1.PublicKey, "rsa1", "RS256"), jwk(&ecKey.PublicKey, "ec1", "ES256"))
	return is
}

func jwk(pub any, kid, alg string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"}
}

func (is *testIssuer) setKeys(keys ...jose.JSONWebKey) {
	is.mu.Lock()
	is.keys = keys
	is.mu.Unlock()
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// oidcAuthorizer is an Authorizer that accepts tokens of is, and nothing
// else, on a fake clock.
func oidcAuthorizer(t *testing.T, is *testIssuer, tokensFile string) (*Authorizer, *clock) {
	t.Helper()
	a, err := New(Config{TokensFile: tokensFile, OIDC: &OIDCConfig{
		Issuer: is.URL, Audience: testAudience, TokenFile: filepath.Join(t.TempDir(), "absent"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now()}
	a.oidc.now = c.now
	return a, c
}

// testClaims are the claims of a good token at time now.
func testClaims(iss string, now time.Time) jwt.Claims {
	return jwt.Claims{
		Issuer:    iss,
		Subject:   testSubject,
		Audience:  jwt.Audience{testAudience},
		IssuedAt:  jwt.NewNumericDate(now.Add(-time.Minute)),
		NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
		Expiry:    jwt.NewNumericDate(now.Add(time.Hour)),
	}
}

func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func bearer(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/acquire/jobs/1", nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

func TestOIDCValidTokensAreServed(t *testing.T) {
	is := newTestIssuer(t)
	a, c := oidcAuthorizer(t, is, "")
	for _, tc := range []struct {
		name string
		tok  string
	}{
		{"RS256", sign(t, jose.RS256, rsaKey1, "rsa1", testClaims(is.URL, c.now()))},
		{"ES256", sign(t, jose.ES256, ecKey, "ec1", testClaims(is.URL, c.now()))},
		{"no kid", sign(t, jose.RS256, rsaKey1, "", testClaims(is.URL, c.now()))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ident, err := a.Authorize(bearer(tc.tok), Acquire, "jobs/1")
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			if ident.Kind != Subject || ident.Subject != testSubject || ident.Name != testSubject {
				t.Errorf("identity = %+v, want subject %s", ident, testSubject)
			}
			if !ident.Allows(Admin, "") {
				t.Error("with no tokens file a verified subject should have every right")
			}
		})
	}
	if n := is.jwksHits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times for three tokens of known keys, want 1", n)
	}
}

func TestOIDCBadTokensAre401(t *testing.T) {
	is := newTestIssuer(t)
	other := newTestIssuer(t)
	a, c := oidcAuthorizer(t, is, "")
	now := c.now()
	good := testClaims(is.URL, now)
	with := func(f func(*jwt.Claims)) jwt.Claims { cl := good; f(&cl); return cl }

	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey1.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	b64 := base64.RawURLEncoding.EncodeToString
	claimsJSON, _ := json.Marshal(good)
	algNone := b64([]byte(`{"alg":"none","typ":"JWT","kid":"rsa1"}`)) + "." + b64(claimsJSON) + "."
	// A valid RS256 signature under a header that claims alg none.
	_, signedRest, _ := strings.Cut(sign(t, jose.RS256, rsaKey1, "rsa1", good), ".")
	noneWithSig := b64([]byte(`{"alg":"none","kid":"rsa1"}`)) + "." + signedRest

	for _, tc := range []struct {
		name string
		tok  string
	}{
		{"wrong audience", sign(t, jose.RS256, rsaKey1, "rsa1", with(func(c *jwt.Claims) { c.Audience = jwt.Audience{"someone-else"} }))},
		{"expired", sign(t, jose.RS256, rsaKey1, "rsa1", with(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-2 * time.Minute)) }))},
		{"not yet valid", sign(t, jose.RS256, rsaKey1, "rsa1", with(func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(2 * time.Minute)) }))},
		{"issued in the future", sign(t, jose.RS256, rsaKey1, "rsa1", with(func(c *jwt.Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(2 * time.Minute)) }))},
		{"no exp", sign(t, jose.RS256, rsaKey1, "rsa1", with(func(c *jwt.Claims) { c.Expiry = nil }))},
		{"no sub", sign(t, jose.RS256, rsaKey1, "rsa1", with(func(c *jwt.Claims) { c.Subject = "" }))},
		{"another issuer's iss", sign(t, jose.RS256, rsaKey1, "rsa1", with(func(c *jwt.Claims) { c.Issuer = other.URL }))},
		{"another issuer's key", sign(t, jose.RS256, rsaStranger, "rsa1", testClaims(other.URL, now))},
		{"alg none", algNone},
		{"alg none with a signature", noneWithSig},
		{"unknown key", sign(t, jose.RS256, rsaStranger, "stranger", good)},
		{"known kid, other key", sign(t, jose.RS256, rsaStranger, "rsa1", good)},
		{"HS256 keyed by the public key", sign(t, jose.HS256, pubPEM, "rsa1", good)},
		{"HS256 keyed by the public DER", sign(t, jose.HS256, pubDER, "rsa1", good)},
		{"ES256 claimed for an RSA key", sign(t, jose.ES256, ecKey, "rsa1", good)},
		{"garbage", "a.b.c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Authorize(bearer(tc.tok), Acquire, "jobs/1")
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("Authorize = %v, want ErrUnauthorized", err)
			}
			t.Log(err)
		})
	}
	// The good token is still served: the refusals above are the claims'
	// fault, not a broken verifier.
	if _, err := a.Authorize(bearer(sign(t, jose.RS256, rsaKey1, "rsa1", good)), Acquire, "jobs/1"); err != nil {
		t.Fatalf("good token: %v", err)
	}
}

func TestOIDCLeewayIsSmall(t *testing.T) {
	is := newTestIssuer(t)
	a, c := oidcAuthorizer(t, is, "")
	cl := testClaims(is.URL, c.now())
	cl.Expiry = jwt.NewNumericDate(c.now().Add(-10 * time.Second))
	if _, err := a.Authorize(bearer(sign(t, jose.RS256, rsaKey1, "rsa1", cl)), Acquire, "jobs/1"); err != nil {
		t.Fatalf("a token expired 10s ago is within the leeway: %v", err)
	}
	cl.Expiry = jwt.NewNumericDate(c.now().Add(-DefaultLeeway - 5*time.Second))
	if _, err := a.Authorize(bearer(sign(t, jose.RS256, rsaKey1, "rsa1", cl)), Acquire, "jobs/1"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a token expired past the leeway: %v, want ErrUnauthorized", err)
	}
}

func TestOIDCRotatedKeyWorksAfterRefetch(t *testing.T) {
	is := newTestIssuer(t)
	a, c := oidcAuthorizer(t, is, "")
	if _, err := a.Authorize(bearer(sign(t, jose.RS256, rsaKey1, "rsa1", testClaims(is.URL, c.now()))), Acquire, "jobs/1"); err != nil {
		t.Fatal(err)
	}
	// The issuer rotates to a new key.
	is.setKeys(jwk(&rsaKey2.PublicKey, "rsa2", "RS256"))
	c.add(DefaultRefetchEvery + time.Second)
	rotated := sign(t, jose.RS256, rsaKey2, "rsa2", testClaims(is.URL, c.now()))
	if _, err := a.Authorize(bearer(rotated), Acquire, "jobs/1"); err != nil {
		t.Fatalf("token of the rotated key: %v", err)
	}
	if n := is.jwksHits.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (start, then the unknown kid)", n)
	}
	// Now the old key is gone from the set too.
	old := sign(t, jose.RS256, rsaKey1, "rsa1", testClaims(is.URL, c.now()))
	if _, err := a.Authorize(bearer(old), Acquire, "jobs/1"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("token of the retired key: %v, want ErrUnauthorized", err)
	}
}

func TestOIDCUnknownKidRefetchIsRateLimited(t *testing.T) {
	is := newTestIssuer(t)
	a, c := oidcAuthorizer(t, is, "")
	if _, err := a.Authorize(bearer(sign(t, jose.RS256, rsaKey1, "rsa1", testClaims(is.URL, c.now()))), Acquire, "jobs/1"); err != nil {
		t.Fatal(err)
	}
	is.setKeys(jwk(&rsaKey1.PublicKey, "rsa1", "RS256"), jwk(&rsaKey2.PublicKey, "rsa2", "RS256"))
	for i := range 20 {
		tok := sign(t, jose.RS256, rsaStranger, "made-up-"+string(rune('a'+i)), testClaims(is.URL, c.now()))
		if _, err := a.Authorize(bearer(tok), Acquire, "jobs/1"); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("made-up kid: %v, want ErrUnauthorized", err)
		}
	}
	if n := is.jwksHits.Load(); n != 1 {
		t.Fatalf("20 made-up kids within %s fetched the JWKS %d more times, want 0", DefaultRefetchEvery, n-1)
	}
	// Within the interval even a real new key waits for the next fetch...
	if _, err := a.Authorize(bearer(sign(t, jose.RS256, rsaKey2, "rsa2", testClaims(is.URL, c.now()))), Acquire, "jobs/1"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("new key inside the refetch interval: %v, want ErrUnauthorized", err)
	}
	// ...and is served once the interval has passed.
	c.add(DefaultRefetchEvery)
	if _, err := a.Authorize(bearer(sign(t, jose.RS256, rsaKey2, "rsa2", testClaims(is.URL, c.now()))), Acquire, "jobs/1"); err != nil {
		t.Fatalf("new key after the refetch interval: %v", err)
	}
}

func TestOIDCIssuerDownIsUnavailable(t *testing.T) {
	is := newTestIssuer(t)
	a, c := oidcAuthorizer(t, is, "")
	is.down.Store(true)
	tok := sign(t, jose.RS256, rsaKey1, "rsa1", testClaims(is.URL, c.now()))
	_, err := a.Authorize(bearer(tok), Acquire, "jobs/1")
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrUnauthorized) {
		t.Fatalf("issuer down: %v, want ErrUnavailable (a 503 the broker retries)", err)
	}
	is.down.Store(false)
	c.add(2 * retryEvery)
	if _, err := a.Authorize(bearer(tok), Acquire, "jobs/1"); err != nil {
		t.Fatalf("issuer back: %v", err)
	}
}

func TestOIDCServiceAccountTokenGoesOnlyToTheIssuer(t *testing.T) {
	is := newTestIssuer(t)
	elsewhere := newTestIssuer(t) // serves the JWKS from another host:port
	is.mu.Lock()
	is.jwksURL = elsewhere.URL + "/openid/v1/jwks"
	is.mu.Unlock()
	saFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(saFile, []byte("pod-sa-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{OIDC: &OIDCConfig{Issuer: is.URL, Audience: testAudience, TokenFile: saFile}})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jose.RS256, rsaKey1, "rsa1", testClaims(is.URL, time.Now()))
	if _, err := a.Authorize(bearer(tok), Acquire, "jobs/1"); err != nil {
		t.Fatal(err)
	}
	is.mu.Lock()
	gotIssuer := append([]string(nil), is.auth...)
	is.mu.Unlock()
	elsewhere.mu.Lock()
	gotElsewhere := append([]string(nil), elsewhere.auth...)
	elsewhere.mu.Unlock()
	if len(gotIssuer) != 1 || gotIssuer[0] != "Bearer pod-sa-token" {
		t.Errorf("discovery got Authorization %q, want the pod's service-account token", gotIssuer)
	}
	if len(gotElsewhere) != 1 || gotElsewhere[0] != "" {
		t.Errorf("a JWKS on another host got Authorization %q, want none", gotElsewhere)
	}
}

func TestOIDCIssuerURLs(t *testing.T) {
	for _, iss := range []string{"http://127.0.0.1:8080", "http://localhost", "http://[::1]:1", "https://kubernetes.default.svc"} {
		if _, err := NewOIDC(OIDCConfig{Issuer: iss, Audience: "a"}); err != nil {
			t.Errorf("%s: %v", iss, err)
		}
	}
	for _, iss := range []string{"http://kubernetes.default.svc", "http://10.0.0.1", "ftp://x", "kubernetes.default.svc", "", "https://x/?q=1"} {
		if _, err := NewOIDC(OIDCConfig{Issuer: iss, Audience: "a"}); err == nil {
			t.Errorf("%s: accepted, want an error", iss)
		}
	}
	if _, err := NewOIDC(OIDCConfig{Issuer: "https://x"}); err == nil {
		t.Error("an empty audience was accepted")
	}
}

func TestOIDCDiscoveryOfAnotherIssuerIsRefused(t *testing.T) {
	is := newTestIssuer(t)
	// Configured with a trailing slash, the issuer's discovery names it
	// without one: not the same issuer, per OIDC discovery.
	a, err := New(Config{OIDC: &OIDCConfig{Issuer: is.URL + "/", Audience: testAudience, TokenFile: filepath.Join(t.TempDir(), "x")}})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jose.RS256, rsaKey1, "rsa1", testClaims(is.URL+"/", time.Now()))
	if _, err := a.Authorize(bearer(tok), Acquire, "jobs/1"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("discovery naming another issuer: %v, want ErrUnavailable", err)
	}
}

// A verified token is believed again for a short while, never past its
// exp: the broker's hour-long token costs one signature check a minute.
func TestOIDCVerifiedTokensAreCachedUntilExpiry(t *testing.T) {
	is := newTestIssuer(t)
	a, c := oidcAuthorizer(t, is, "")
	cl := testClaims(is.URL, c.now())
	cl.Expiry = jwt.NewNumericDate(c.now().Add(40 * time.Second))
	tok := sign(t, jose.RS256, rsaKey1, "rsa1", cl)
	if _, err := a.Authorize(bearer(tok), Acquire, "jobs/1"); err != nil {
		t.Fatal(err)
	}
	// Its key is forgotten and the issuer is down: only the cache can pass it.
	a.oidc.keys.Store(&jose.JSONWebKeySet{})
	is.down.Store(true)
	c.add(DefaultRefetchEvery + time.Second)
	if _, err := a.Authorize(bearer(tok), Acquire, "jobs/1"); err != nil {
		t.Fatalf("cached token: %v", err)
	}
	is.down.Store(false)
	is.setKeys(jwk(&rsaKey2.PublicKey, "rsa2", "RS256"))
	if n := is.jwksHits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want 1: the cached token was checked again", n)
	}
	// Past its exp and the leeway, it is checked again, and refused.
	c.add(40*time.Second + DefaultLeeway)
	if _, err := a.Authorize(bearer(tok), Acquire, "jobs/1"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("expired cached token: %v, want ErrUnauthorized", err)
	}
	// A token that failed is never cached.
	bad := sign(t, jose.RS256, rsaStranger, "rsa2", testClaims(is.URL, c.now()))
	for range 2 {
		if _, err := a.Authorize(bearer(bad), Acquire, "jobs/1"); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("bad token: %v", err)
		}
	}
}
