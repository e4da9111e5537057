package access

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func digestHex(token string) string {
	d := sha256.Sum256([]byte(token))
	return hex.EncodeToString(d[:])
}

func TestGrantPrefixesMatchByStringPrefix(t *testing.T) {
	g := Grant{verbs: verbBits[Acquire] | verbBits[Read], prefixes: []string{"team-a/", "shared:"}}
	for _, tc := range []struct {
		verb Verb
		id   string
		want bool
	}{
		{Acquire, "team-a/x", true},
		{Acquire, "team-a/x/y", true},
		{Read, "shared:1", true},
		{Acquire, "team-a", false}, // the prefix, not the name without its slash
		{Acquire, "team-ab/x", false},
		{Acquire, "team-b/x", false},
		{Acquire, "", false}, // a route naming no lock needs the prefix ""
		{Release, "team-a/x", false},
		{Admin, "team-a/x", false},
	} {
		if got := g.Allows(tc.verb, tc.id); got != tc.want {
			t.Errorf("Allows(%s, %q) = %v, want %v", tc.verb, tc.id, got, tc.want)
		}
	}
	all := Grant{verbs: verbBits[Admin], prefixes: []string{""}}
	if !all.Allows(Admin, "") || !all.Allows(Admin, "anything") {
		t.Error(`the prefix "" should cover every id and routes that name none`)
	}
}

func TestParsePolicyRefusesBadFiles(t *testing.T) {
	good := `{"name":"a","sha256":"` + digestHex("x") + `","prefixes":[""],"verbs":["read"]}`
	for name, body := range map[string]string{
		"not JSON":          `{`,
		"no tokens list":    `{}`,
		"unknown field":     `{"tokens":[{"name":"a","sha256":"` + digestHex("x") + `","prefix":["a/"],"verbs":["read"]}]}`,
		"unknown verb":      `{"tokens":[{"name":"a","sha256":"` + digestHex("x") + `","prefixes":[""],"verbs":["write"]}]}`,
		"no verbs":          `{"tokens":[{"name":"a","sha256":"` + digestHex("x") + `","prefixes":[""],"verbs":[]}]}`,
		"no prefixes":       `{"tokens":[{"name":"a","sha256":"` + digestHex("x") + `","verbs":["read"]}]}`,
		"no name":           `{"tokens":[{"sha256":"` + digestHex("x") + `","prefixes":[""],"verbs":["read"]}]}`,
		"short digest":      `{"tokens":[{"name":"a","sha256":"abcd","prefixes":[""],"verbs":["read"]}]}`,
		"token in clear":    `{"tokens":[{"name":"a","sha256":"s3cret-token-in-clear","prefixes":[""],"verbs":["read"]}]}`,
		"digest and sub":    `{"tokens":[{"name":"a","sha256":"` + digestHex("x") + `","subject":"s","prefixes":[""],"verbs":["read"]}]}`,
		"empty subjects":    `{"tokens":[{"name":"a","subjects":[""],"prefixes":[""],"verbs":["read"]}]}`,
		"subject twice":     `{"tokens":[{"name":"a","subjects":["s"],"prefixes":[""],"verbs":["read"]},{"name":"b","subjects":["t","s"],"prefixes":[""],"verbs":["read"]}]}`,
		"neither":           `{"tokens":[{"name":"a","prefixes":[""],"verbs":["read"]}]}`,
		"duplicate name":    `{"tokens":[` + good + `,{"name":"a","sha256":"` + digestHex("y") + `","prefixes":[""],"verbs":["read"]}]}`,
		"duplicate token":   `{"tokens":[` + good + `,{"name":"b","sha256":"` + digestHex("x") + `","prefixes":[""],"verbs":["read"]}]}`,
		"duplicate subject": `{"tokens":[{"name":"a","subject":"s","prefixes":[""],"verbs":["read"]},{"name":"b","subject":"s","prefixes":[""],"verbs":["read"]}]}`,
		"two values":        `{"tokens":[]} {}`,
	} {
		_, err := ParsePolicy([]byte(body))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), digestHex("x")) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows a digest or token: %v", name, err)
		}
	}
	p, err := ParsePolicy([]byte(`{"tokens":[` + good + `,{"name":"ev","subject":"system:serviceaccount:default:x","prefixes":["jobs/"],"verbs":["acquire"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := p.token(sha256.Sum256([]byte("x"))); !ok || e.name != "a" {
		t.Errorf("token x = %+v, %v; want entry a", e, ok)
	}
	if _, ok := p.token(sha256.Sum256([]byte("y"))); ok {
		t.Error("token y found, want none")
	}
	if e, ok := p.subject("system:serviceaccount:default:x"); !ok || e.name != "ev" {
		t.Errorf("subject = %+v, %v; want entry ev", e, ok)
	}
}
