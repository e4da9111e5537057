package function

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func sha(token string) string {
	d := sha256.Sum256([]byte(token))
	return hex.EncodeToString(d[:])
}

// writeTokens writes the tokens file.
func writeTokens(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokens.json")
	body := `{"tokens":[
	 {"name":"team-a","sha256":"` + sha("tok-a") + `","prefixes":["team-a/"],"verbs":["acquire","release","heartbeat","read"]},
	 {"name":"team-b","sha256":"` + sha("tok-b") + `","prefixes":["team-b/"],"verbs":["acquire","release","heartbeat","read"]},
	 {"name":"ops","sha256":"` + sha("tok-ops") + `","prefixes":[""],"verbs":["read","admin"]},
	 {"name":"eventing","subject":"system:serviceaccount:default:broker-filter","prefixes":["jobs/"],"verbs":["acquire","release","heartbeat"]}]}`
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

func TestScopedTokensOverHTTP(t *testing.T) {
	file := writeTokens(t)
	srv, _ := newTestService(t, func(c *Config) { c.TokensFile = file; c.AuthToken = "root" })

	// 401 before any routing, for every route but the public ones.
	for _, p := range []string{"/acquire/team-a/x", "/locks/team-a/x", "/nope", "/admin/x"} {
		a := call(t, srv, "GET", p, "").want(t, 401, "unauthorized")
		if a.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", p)
		}
		call(t, srv, "GET", p, "", bearer("tok-nobody")...).want(t, 401, "unauthorized")
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		call(t, srv, "GET", p, "").want(t, 200, "")
	}

	lease := call(t, srv, "POST", "/acquire/team-a/x", "", bearer("tok-a")...).want(t, 200, "")
	owner := *lease.Data.Owner
	call(t, srv, "GET", "/locks/team-a/x", "", bearer("tok-a")...).want(t, 200, "")
	call(t, srv, "POST", "/heartbeat/team-a/x?owner="+owner, "", bearer("tok-a")...).want(t, 200, "")

	// A known token outside its scope: 403 forbidden, naming the lock.
	for _, tc := range []struct{ method, path, token string }{
		{"POST", "/acquire/team-b/x", "tok-a"},
		{"POST", "/acquire/team-a", "tok-a"}, // "team-a/" covers team-a/x, not team-a
		{"POST", "/release/team-a/x?owner=" + owner, "tok-b"},
		{"GET", "/locks/team-a/x", "tok-b"},
		{"POST", "/acquire/team-a/y", "tok-ops"}, // read and admin only
		{"GET", "/nope", "tok-a"},                // unknown routes need read on every lock
		{"GET", "/admin/x", "tok-a"},
	} {
		a := call(t, srv, tc.method, tc.path, "", bearer(tc.token)...).want(t, 403, "forbidden")
		if strings.HasPrefix(tc.path, "/acquire/") && a.Data.ID == "" {
			t.Errorf("%s: 403 without data.id", tc.path)
		}
	}
	// Read and admin rights get past access to the routing behind it.
	call(t, srv, "GET", "/locks/team-a/x", "", bearer("tok-ops")...).want(t, 200, "")
	call(t, srv, "GET", "/nope", "", bearer("tok-ops")...).want(t, 404, "not_found")
	call(t, srv, "GET", "/admin/x", "", bearer("tok-ops")...).want(t, 404, "not_found")
	// CANDADO_AUTH_TOKEN keeps every right; the lease is still team-a's.
	call(t, srv, "POST", "/acquire/team-b/z", "", bearer("root")...).want(t, 200, "")
	call(t, srv, "POST", "/release/team-a/x?owner="+owner, "", bearer("root")...).want(t, 409, "not_held")
	call(t, srv, "POST", "/release/team-a/x?owner="+owner, "", bearer("tok-a")...).want(t, 200, "")

	m := call(t, srv, "GET", "/metrics", "").Env.Error
	for _, want := range []string{
		`candado_access_decisions_total{identity="team-a",outcome="forbidden"} 4`,
		`candado_access_decisions_total{identity="unknown",outcome="unauthorized"} 8`,
		`candado_http_requests_total{route="acquire",code="403"}`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, secret := range []string{"tok-a", "tok-b", "root", sha("tok-a")} {
		if strings.Contains(m, `"`+secret+`"`) {
			t.Errorf("/metrics shows %q", secret)
		}
	}
}

func TestWaitersCappedPerIdentity(t *testing.T) {
	file := writeTokens(t)
	srv, _ := newTestService(t, func(c *Config) {
		c.TokensFile = file
		c.MaxWaitersPerIdentity = 1
		c.MaxWait = 10 * time.Second
	})
	held := call(t, srv, "POST", "/acquire/team-a/x", "", bearer("tok-a")...).want(t, 200, "")
	done := make(chan answer, 1)
	wait := func() { done <- call(t, srv, "POST", "/acquire/team-a/x?wait=10s", "", bearer("tok-a")...) }
	go wait()
	// Once the waiter is in, team-a's next waiting acquire is a 429. A probe
	// that takes the slot first refuses the waiter instead: start it again.
	var refused answer
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		select {
		case a := <-done:
			a.want(t, 429, "too_many_waiters")
			go wait()
			continue
		default:
		}
		refused = call(t, srv, "POST", "/acquire/team-a/x?wait=1ms", "", bearer("tok-a")...)
		if refused.Status == http.StatusTooManyRequests {
			break
		}
	}
	refused.want(t, 429, "too_many_waiters")
	if refused.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Another identity waits; acquires without a wait are not capped.
	call(t, srv, "POST", "/acquire/team-b/x", "", bearer("tok-b")...).want(t, 200, "")
	call(t, srv, "POST", "/acquire/team-b/x?wait=1ms", "", bearer("tok-b")...).want(t, 409, "held")
	call(t, srv, "POST", "/acquire/team-a/x", "", bearer("tok-a")...).want(t, 409, "held")
	// The release hands the lock to the waiter, whose slot is then free.
	call(t, srv, "POST", "/release/team-a/x?owner="+*held.Data.Owner, "", bearer("tok-a")...).want(t, 200, "")
	(<-done).want(t, 200, "")
	call(t, srv, "POST", "/acquire/team-a/y?wait=1ms", "", bearer("tok-a")...).want(t, 200, "")
}

func TestLoadConfigAccess(t *testing.T) {
	dir := t.TempDir()
	OpenFaaSSecrets = dir
	t.Cleanup(func() { OpenFaaSSecrets = "/var/openfaas/secrets" })
	if err := os.WriteFile(filepath.Join(dir, "candado-tokens"), []byte(`{"tokens":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "candado-owner-key"), []byte("k3y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig()
	if err != nil || cfg.TokensFile != filepath.Join(dir, "candado-tokens") || cfg.OwnerKey != "k3y" {
		t.Fatalf("OpenFaaS secrets: %+v, %v", cfg, err)
	}
	t.Setenv("CANDADO_TOKENS_FILE", "/etc/candado/tokens.json")
	t.Setenv("CANDADO_OIDC_ISSUER", "https://kubernetes.default.svc")
	t.Setenv("CANDADO_OIDC_AUDIENCE", "candado")
	t.Setenv("CANDADO_OIDC_CA_FILE", "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
	t.Setenv("CANDADO_MAX_WAITERS_PER_IDENTITY", "7")
	cfg, err = LoadConfig()
	if err != nil || cfg.TokensFile != "/etc/candado/tokens.json" || cfg.OIDCIssuer != "https://kubernetes.default.svc" ||
		cfg.OIDCAudience != "candado" || cfg.OIDCCAFile == "" || cfg.MaxWaitersPerIdentity != 7 {
		t.Fatalf("LoadConfig = %+v, %v", cfg, err)
	}
	for _, tc := range []struct{ name, value, want string }{
		{"CANDADO_OIDC_AUDIENCE", "", "CANDADO_OIDC_AUDIENCE"},
		{"CANDADO_OIDC_ISSUER", "http://kubernetes.default.svc", "loopback"},
		{"CANDADO_OIDC_ISSUER", "", "CANDADO_OIDC_ISSUER"},
		{"CANDADO_MAX_WAITERS_PER_IDENTITY", "-1", "CANDADO_MAX_WAITERS_PER_IDENTITY"},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			t.Setenv(tc.name, tc.value)
			if _, err := LoadConfig(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadConfig: %v, want an error naming %s", err, tc.want)
			}
		})
	}
	// A tokens file that cannot be used stops the service at start.
	c := testConfig("redis://127.0.0.1:1")
	c.TokensFile = filepath.Join(dir, "missing.json")
	if _, err := NewService(c, nil); err == nil {
		t.Fatal("NewService with a missing tokens file: no error")
	}
}

// oidcIssuer is an OIDC issuer on loopback with one RSA key.
type oidcIssuer struct {
	*httptest.Server
	key *rsa.PrivateKey
}

var (
	issuerKeyOnce sync.Once
	issuerKey     *rsa.PrivateKey
)

func newOIDCIssuer(t *testing.T) *oidcIssuer {
	t.Helper()
	issuerKeyOnce.Do(func() {
		var err error
		if issuerKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	is := &oidcIssuer{key: issuerKey}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": is.URL, "jwks_uri": is.URL + "/openid/v1/jwks"})
	})
	mux.HandleFunc("/openid/v1/jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &issuerKey.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	is.Server = httptest.NewServer(mux)
	t.Cleanup(is.Close)
	return is
}

// token is what Knative Eventing's broker filter sends: sub its service
// account, aud the Trigger's audience.
func (is *oidcIssuer) token(t *testing.T, sub, aud string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: is.key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := jwt.Signed(s).Claims(jwt.Claims{Issuer: is.URL, Subject: sub, Audience: jwt.Audience{aud},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestEventingOIDCOverHTTP(t *testing.T) {
	is := newOIDCIssuer(t)
	const broker = "system:serviceaccount:default:broker-filter"
	for _, withFile := range []bool{false, true} {
		file := ""
		if withFile {
			file = writeTokens(t)
		}
		srv, _ := newTestService(t, func(c *Config) {
			c.TokensFile = file
			c.OIDCIssuer, c.OIDCAudience = is.URL, "candado.default"
		})
		good := is.token(t, broker, "candado.default")
		call(t, srv, "POST", "/acquire/jobs/1", "", bearer(good)...).want(t, 200, "")
		call(t, srv, "POST", "/acquire/jobs/1", "", bearer(is.token(t, broker, "someone-else"))...).want(t, 401, "unauthorized")
		stranger := call(t, srv, "POST", "/acquire/jobs/2", "", bearer(is.token(t, "system:serviceaccount:x:y", "candado.default"))...)
		other := call(t, srv, "POST", "/acquire/team-a/1", "", bearer(good)...)
		if withFile {
			// The entry with that subject gives its rights; a subject with
			// no entry is known but may do nothing.
			stranger.want(t, 403, "forbidden")
			other.want(t, 403, "forbidden")
			call(t, srv, "POST", "/acquire/team-a/1", "", bearer("tok-a")...).want(t, 200, "")
		} else {
			// No tokens file: a verified subject has every right.
			stranger.want(t, 200, "")
			other.want(t, 200, "")
		}
	}
}

// event posts a binary-mode CloudEvent with a bearer token and returns the
// status, the reply's type and its envelope.
func event(t *testing.T, srv *httptest.Server, typ, subject, data, token string) (int, string, answer) {
	t.Helper()
	req, err := http.NewRequest("POST", srv.URL+"/", strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Type": typ, "Ce-Source": "/producer",
		"Ce-Id": typ + subject + data, "Ce-Subject": subject, "Content-Type": "application/json", "Authorization": "Bearer " + token} {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	if err := json.NewDecoder(resp.Body).Decode(&a.Env); err != nil {
		t.Fatal(err)
	}
	if len(a.Env.Data) > 0 && string(a.Env.Data) != "null" {
		_ = json.Unmarshal(a.Env.Data, &a.Data)
	}
	return resp.StatusCode, resp.Header.Get("Ce-Type"), a
}

// Each Knative Trigger has its own OIDC service account: the release
// Trigger's events end what the acquire Trigger's took when both are one
// identity (one tokens file entry, or no tokens file), and not when they
// are not.
func TestEventingTriggersShareOneIdentity(t *testing.T) {
	is := newOIDCIssuer(t)
	const acquirer, releaser = "system:serviceaccount:default:candado-acquire-oidc", "system:serviceaccount:default:candado-release-oidc"
	p := filepath.Join(t.TempDir(), "tokens.json")
	file := `{"tokens":[{"name":"eventing","subjects":["` + acquirer + `","` + releaser + `"],"prefixes":["jobs/"],"verbs":["acquire","release","heartbeat"]},
	 {"name":"intruder","subject":"system:serviceaccount:other:x","prefixes":["jobs/"],"verbs":["acquire","release","heartbeat"]}]}`
	if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tokens := range []string{"", p} {
		srv, _ := newTestService(t, func(c *Config) {
			c.TokensFile = tokens
			c.OIDCIssuer, c.OIDCAudience = is.URL, "candado"
		})
		status, typ, acq := event(t, srv, "dev.candado.lock.acquire", "jobs/1", `{"ttl":"30s"}`, is.token(t, acquirer, "candado"))
		if status != 200 || typ != "dev.candado.lock.acquired" || acq.Data.Owner == nil {
			t.Fatalf("tokens %q: acquire: %d %s %+v", tokens, status, typ, acq.Env)
		}
		release := `{"owner":"` + *acq.Data.Owner + `"}`
		if tokens != "" {
			_, typ, _ = event(t, srv, "dev.candado.lock.release", "jobs/1", release, is.token(t, "system:serviceaccount:other:x", "candado"))
			if typ != "dev.candado.lock.rejected" {
				t.Fatalf("another entry's release: %s, want rejected", typ)
			}
		}
		_, typ, _ = event(t, srv, "dev.candado.lock.release", "jobs/1", release, is.token(t, releaser, "candado"))
		if typ != "dev.candado.lock.released" {
			t.Fatalf("tokens %q: the release Trigger's release: %s, want released", tokens, typ)
		}
	}
}
