package access

import "fmt"

// Verb is a right an identity may hold.
type Verb string

// The verbs of the tokens file.
const (
	// Acquire takes a lease (/acquire/{id}, dev.candado.lock.acquire).
	Acquire Verb = "acquire"
	// Release gives a lease back.
	Release Verb = "release"
	// Heartbeat extends a lease.
	Heartbeat Verb = "heartbeat"
	// Read covers /locks/{id} and every read-only route.
	Read Verb = "read"
	// Admin covers the operator routes.
	Admin Verb = "admin"
)

// verbBits are the verbs as a bit set, for cheap checks.
var verbBits = map[Verb]verbSet{Acquire: 1, Release: 2, Heartbeat: 4, Read: 8, Admin: 16}

// verbSet is a set of verbs.
type verbSet uint8

// allVerbs holds every verb.
const allVerbs verbSet = 31

func (s verbSet) has(v Verb) bool { return s&verbBits[v] != 0 }

// parseVerb reads a verb of the tokens file.
func parseVerb(s string) (verbSet, error) {
	b, ok := verbBits[Verb(s)]
	if !ok {
		return 0, fmt.Errorf("unknown verb %q; want acquire, release, heartbeat, read or admin", s)
	}
	return b, nil
}
