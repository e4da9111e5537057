package access

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// issueFile is the tokens file of the issue.
func issueFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokens.json")
	body := tokensJSON(
		tokenEntry("team-a", "tok-team-a", `"acquire","release","heartbeat","read"`, "team-a/"),
		tokenEntry("ops", "tok-ops", `"read","admin"`, ""),
		`{"name":"eventing","subject":"`+testSubject+`","prefixes":["jobs/"],"verbs":["acquire","release","heartbeat"]}`,
	)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func request(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

func TestAuthorizeScopedTokens(t *testing.T) {
	var logs syncBuffer
	counts := map[string]uint64{}
	a, err := New(Config{AuthToken: "root-token", TokensFile: issueFile(t), Log: slog.New(slog.NewJSONHandler(&logs, nil)),
		Count: func(identity, outcome string) { counts[identity+"/"+outcome]++ }})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		header string
		verb   Verb
		id     string
		want   error // nil, ErrUnauthorized or ErrForbidden
		ident  string
	}{
		{"team-a acquires its own", "Bearer tok-team-a", Acquire, "team-a/x", nil, "team-a"},
		{"team-a reads its own", "Bearer tok-team-a", Read, "team-a/x/y", nil, "team-a"},
		{"team-a outside its prefix", "Bearer tok-team-a", Acquire, "team-b/x", ErrForbidden, "team-a"},
		{"team-a on its bare prefix name", "Bearer tok-team-a", Acquire, "team-a", ErrForbidden, "team-a"},
		{"team-a without admin", "Bearer tok-team-a", Admin, "", ErrForbidden, "team-a"},
		{"ops reads anything", "Bearer tok-ops", Read, "team-b/x", nil, "ops"},
		{"ops admin", "Bearer tok-ops", Admin, "", nil, "ops"},
		{"ops may not acquire", "Bearer tok-ops", Acquire, "team-a/x", ErrForbidden, "ops"},
		{"auth token has every right", "Bearer root-token", Admin, "", nil, "auth-token"},
		{"auth token acquires anything", "Bearer root-token", Acquire, "x", nil, "auth-token"},
		{"scheme is case-insensitive", "bearer tok-ops", Read, "x", nil, "ops"},
		{"missing", "", Read, "x", ErrUnauthorized, ""},
		{"unknown", "Bearer tok-team-b", Read, "x", ErrUnauthorized, ""},
		{"a digest is not a token", "Bearer " + digestHex("tok-ops"), Read, "x", ErrUnauthorized, ""},
		{"basic auth", "Basic dG9rLW9wczo=", Read, "x", ErrUnauthorized, ""},
		{"empty bearer", "Bearer ", Read, "x", ErrUnauthorized, ""},
		{"a subject entry is no token", "Bearer " + testSubject, Read, "jobs/x", ErrUnauthorized, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			ident, err := a.Authorize(r, tc.verb, tc.id)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("Authorize = %v, want allowed", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("Authorize = %v, want %v", err, tc.want)
			}
			if tc.want == ErrForbidden && errors.Is(err, ErrUnauthorized) {
				t.Fatalf("a known token out of scope is unauthorized, want only forbidden")
			}
			if ident.Name != tc.ident {
				t.Errorf("identity %q, want %q", ident.Name, tc.ident)
			}
		})
	}
	out := logs.String()
	for _, secret := range []string{"tok-team-a", "tok-ops", "tok-team-b", "root-token", digestHex("tok-ops"), digestHex("root-token")} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows %q", secret)
		}
	}
	if !strings.Contains(out, `"identity":"team-a"`) {
		t.Errorf("the log does not name the forbidden token:\n%s", out)
	}
	if counts["team-a/forbidden"] != 3 || counts["team-a/allowed"] != 2 || counts["unknown/unauthorized"] != 6 {
		t.Errorf("decisions = %v", counts)
	}
}

func TestOpenServiceHasEveryRight(t *testing.T) {
	a, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Open() {
		t.Fatal("nothing configured, yet not open")
	}
	ident, err := a.Authorize(request(""), Admin, "")
	if err != nil || ident.Kind != Anonymous || ident.Principal() != "" {
		t.Fatalf("Authorize = %+v, %v; want anonymous with every right", ident, err)
	}
	if b, _ := New(Config{AuthToken: "x"}); b.Open() {
		t.Error("with an auth token the service is still open")
	}
}

func TestOIDCSubjectGetsItsEntrysRights(t *testing.T) {
	is := newTestIssuer(t)
	a, c := oidcAuthorizer(t, is, issueFile(t))
	tok := sign(t, jose.RS256, rsaKey1, "rsa1", testClaims(is.URL, c.now()))
	ident, err := a.Authorize(bearer(tok), Acquire, "jobs/1")
	if err != nil {
		t.Fatalf("eventing on jobs/: %v", err)
	}
	if ident.Name != "eventing" || ident.Principal() != "entry:eventing" {
		t.Errorf("identity = %+v", ident)
	}
	if _, err := a.Authorize(bearer(tok), Acquire, "team-a/1"); !errors.Is(err, ErrForbidden) {
		t.Errorf("eventing on team-a/: %v, want ErrForbidden", err)
	}
	if _, err := a.Authorize(bearer(tok), Read, "jobs/1"); !errors.Is(err, ErrForbidden) {
		t.Errorf("eventing read: %v, want ErrForbidden", err)
	}
	// A verified subject the file does not name is known but may do nothing.
	cl := testClaims(is.URL, c.now())
	cl.Subject = anotherTestSubject
	other := sign(t, jose.RS256, rsaKey1, "rsa1", cl)
	if _, err := a.Authorize(bearer(other), Acquire, "jobs/1"); !errors.Is(err, ErrForbidden) {
		t.Errorf("unlisted subject: %v, want ErrForbidden", err)
	}
	// Scoped tokens work next to OIDC.
	if _, err := a.Authorize(request("tok-team-a"), Acquire, "team-a/1"); err != nil {
		t.Errorf("team-a token with OIDC on: %v", err)
	}
}

func TestIdentityFromContext(t *testing.T) {
	r := request("")
	if _, ok := FromContext(r.Context()); ok {
		t.Fatal("identity in a bare context")
	}
	ctx := WithIdentity(r.Context(), Identity{Kind: Token, Name: "team-a"})
	if id, ok := FromContext(ctx); !ok || id.Name != "team-a" {
		t.Fatalf("FromContext = %+v, %v", id, ok)
	}
}

func TestPrincipalsAreDistinct(t *testing.T) {
	ps := map[string]bool{}
	for _, id := range []Identity{
		{Kind: AuthToken, Name: "auth-token"},
		{Kind: Token, Name: "auth-token", Entry: "auth-token"},
		{Kind: Token, Name: "x", Entry: "x"},
		{Kind: Subject, Name: "x", Subject: "x"}, // no tokens file
		{Kind: Subject, Name: "eventing", Subject: "y", Entry: "eventing"},
	} {
		p := id.Principal()
		if p == "" || ps[p] {
			t.Errorf("principal %q of %+v is empty or taken", p, id)
		}
		ps[p] = true
	}
}

// Knative gives each Trigger its own OIDC service account: an entry listing
// several subjects makes them one identity, so the release Trigger can end
// what the acquire Trigger took; with no tokens file every verified subject
// is that one identity.
func TestSubjectsOfOneEntryAreOneIdentity(t *testing.T) {
	is := newTestIssuer(t)
	p := filepath.Join(t.TempDir(), "tokens.json")
	body := `{"tokens":[{"name":"app","subjects":["system:serviceaccount:ns:acquire-oidc","system:serviceaccount:ns:release-oidc"],` +
		`"prefixes":["jobs/"],"verbs":["acquire","release"]},` +
		`{"name":"other","subject":"system:serviceaccount:ns:other","prefixes":["jobs/"],"verbs":["acquire","release"]}]}`
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	principal := func(a *Authorizer, c *clock, sub string) string {
		t.Helper()
		cl := testClaims(is.URL, c.now())
		cl.Subject = sub
		ident, err := a.Authorize(bearer(sign(t, jose.RS256, rsaKey1, "rsa1", cl)), Release, "jobs/1")
		if err != nil {
			t.Fatalf("%s: %v", sub, err)
		}
		return ident.Principal()
	}
	a, c := oidcAuthorizer(t, is, p)
	acq, rel := principal(a, c, "system:serviceaccount:ns:acquire-oidc"), principal(a, c, "system:serviceaccount:ns:release-oidc")
	if acq != rel || acq != "entry:app" {
		t.Errorf("the subjects of one entry are %q and %q, want one identity", acq, rel)
	}
	if other := principal(a, c, "system:serviceaccount:ns:other"); other == acq {
		t.Errorf("another entry's subject shares the identity %q", other)
	}
	open, c2 := oidcAuthorizer(t, is, "")
	if x, y := principal(open, c2, "system:serviceaccount:ns:a"), principal(open, c2, "system:serviceaccount:ns:b"); x != y || x != "oidc" {
		t.Errorf("with no tokens file, verified subjects are %q and %q, want one identity", x, y)
	}
}
