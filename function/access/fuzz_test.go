package access

import (
	"crypto/sha256"
	"testing"
)

// FuzzParsePolicy: no tokens file, however malformed, crashes the parser,
// and a parsed one gives every entry a name, a verb and a prefix.
func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(tokensJSON(tokenEntry("a", "t", `"read"`, ""))))
	f.Add([]byte(`{"tokens":[{"name":"e","subjects":["s","t"],"prefixes":["jobs/"],"verbs":["acquire"]}]}`))
	f.Add([]byte(`{"tokens":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data)
		if err != nil {
			return
		}
		for _, e := range p.tokens {
			if e.name == "" || e.grant.verbs == 0 || len(e.grant.prefixes) == 0 || e.digest == [sha256.Size]byte{} && len(e.subjects) == 0 {
				t.Fatalf("entry %+v parsed incomplete", e)
			}
		}
		for sub, e := range p.subjects {
			if sub == "" || e.name == "" || e.grant.verbs == 0 {
				t.Fatalf("subject %q of entry %+v parsed incomplete", sub, e)
			}
		}
	})
}
