package access

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Grant is what an identity may do: a set of verbs on lock ids that start
// with one of its prefixes.
type Grant struct {
	verbs    verbSet
	prefixes []string
}

// everything is the grant of CANDADO_AUTH_TOKEN, of an open service and of a
// verified OIDC subject when there is no tokens file.
var everything = Grant{verbs: allVerbs, prefixes: []string{""}}

// Allows reports whether g covers verb on id. A prefix matches by string
// prefix: "team-a/" covers "team-a/x" but not "team-a". An empty id (a route
// that names no lock) is covered only by the prefix "".
func (g Grant) Allows(verb Verb, id string) bool {
	if !g.verbs.has(verb) {
		return false
	}
	for _, p := range g.prefixes {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

// entry is one identity of the tokens file: a token (by its digest) or one
// or more OIDC subjects.
type entry struct {
	name     string
	digest   [sha256.Size]byte // zero for a subject entry
	subjects []string
	grant    Grant
}

// Policy is a parsed tokens file. Its zero value knows nobody.
type Policy struct {
	tokens   []entry
	subjects map[string]entry
}

// fileEntry is an entry as the tokens file writes it.
type fileEntry struct {
	Name     string   `json:"name"`
	SHA256   string   `json:"sha256"`
	Subject  string   `json:"subject"`
	Subjects []string `json:"subjects"`
	Prefixes []string `json:"prefixes"`
	Verbs    []string `json:"verbs"`
}

// ParsePolicy reads a tokens file:
//
//	{"tokens": [{"name": "team-a", "sha256": "<hex SHA-256 of the token>",
//	  "prefixes": ["team-a/"], "verbs": ["acquire", "release", "heartbeat", "read"]},
//	 {"name": "eventing", "subject": "system:serviceaccount:default:broker-filter",
//	  "prefixes": ["jobs/"], "verbs": ["acquire", "release", "heartbeat"]}]}
//
// Each entry has a unique name, either sha256 or subjects (in "subject",
// "subjects" or both), at least one prefix ("" for every lock) and at least
// one verb. An entry is one identity: the subjects it lists (say, the OIDC
// service accounts of the three Knative Triggers of one application) share
// its rights and its owners. Unknown fields are
// refused, so a misspelt "prefix" does not silently grant nothing. Errors
// name the entry, never a digest.
func ParsePolicy(data []byte) (*Policy, error) {
	var f struct {
		Tokens []fileEntry `json:"tokens"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("tokens file is not a JSON object {\"tokens\": [...]}: %w", err)
	}
	if dec.More() {
		return nil, errors.New("tokens file holds more than one JSON value")
	}
	if f.Tokens == nil {
		return nil, errors.New(`tokens file has no "tokens" list`)
	}
	p := &Policy{subjects: make(map[string]entry)}
	names := make(map[string]bool)
	seen := make(map[[sha256.Size]byte]string)
	for i, fe := range f.Tokens {
		e, err := parseEntry(fe)
		if err != nil {
			if fe.Name != "" {
				return nil, fmt.Errorf("tokens file entry %d (%q): %w", i, fe.Name, err)
			}
			return nil, fmt.Errorf("tokens file entry %d: %w", i, err)
		}
		if names[e.name] {
			return nil, fmt.Errorf("tokens file entry %d: name %q is used twice", i, e.name)
		}
		names[e.name] = true
		if len(e.subjects) > 0 {
			for _, sub := range e.subjects {
				if other, dup := p.subjects[sub]; dup {
					return nil, fmt.Errorf("tokens file entry %d (%q): subject %q is also entry %q's", i, e.name, sub, other.name)
				}
				p.subjects[sub] = e
			}
			continue
		}
		if other, dup := seen[e.digest]; dup {
			return nil, fmt.Errorf("tokens file entry %d (%q): same token as entry %q", i, e.name, other)
		}
		seen[e.digest] = e.name
		p.tokens = append(p.tokens, e)
	}
	return p, nil
}

func parseEntry(fe fileEntry) (entry, error) {
	e := entry{name: fe.Name}
	if fe.Subject != "" {
		e.subjects = append(e.subjects, fe.Subject)
	}
	for _, sub := range fe.Subjects {
		if sub == "" {
			return e, errors.New("subjects holds an empty subject")
		}
		if !slices.Contains(e.subjects, sub) {
			e.subjects = append(e.subjects, sub)
		}
	}
	if fe.Name == "" {
		return e, errors.New("name is missing")
	}
	switch {
	case fe.SHA256 != "" && len(e.subjects) > 0:
		return e, errors.New("give sha256 or subjects, not both")
	case fe.SHA256 == "" && len(e.subjects) == 0:
		return e, errors.New("give sha256 (of a token) or subject(s) (OIDC identities)")
	case fe.SHA256 != "":
		b, err := hex.DecodeString(fe.SHA256)
		if err != nil || len(b) != sha256.Size {
			return e, errors.New("sha256 must be 64 hex digits (sha256sum of the token)")
		}
		copy(e.digest[:], b)
	}
	if len(fe.Prefixes) == 0 {
		return e, errors.New(`prefixes is empty; [""] covers every lock`)
	}
	e.grant.prefixes = append([]string(nil), fe.Prefixes...)
	if len(fe.Verbs) == 0 {
		return e, errors.New("verbs is empty")
	}
	for _, v := range fe.Verbs {
		b, err := parseVerb(v)
		if err != nil {
			return e, err
		}
		e.grant.verbs |= b
	}
	return e, nil
}

// token finds the entry whose digest is digest. It compares against every
// entry in constant time and never stops early, so how long it takes says
// nothing about which digest, or how much of it, matched.
func (p *Policy) token(digest [sha256.Size]byte) (entry, bool) {
	var found entry
	ok := 0
	for i := range p.tokens {
		eq := subtle.ConstantTimeCompare(p.tokens[i].digest[:], digest[:])
		if eq == 1 {
			found = p.tokens[i]
		}
		ok |= eq
	}
	return found, ok == 1
}

// subject finds the entry of an OIDC subject.
func (p *Policy) subject(sub string) (entry, bool) {
	e, ok := p.subjects[sub]
	return e, ok
}
