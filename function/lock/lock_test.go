package lock

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateID(t *testing.T) {
	good := []string{"a", "orders/42", "A-Z_a.z:0@9", "a/b/c", "..a", "a..", strings.Repeat("x", 255)}
	for _, id := range good {
		if err := ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v, want nil", id, err)
		}
	}
	bad := []string{"", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b", "a b", "a%2Fb", "é", "a\x00", "{tag}", "a?b", strings.Repeat("x", 256)}
	for _, id := range bad {
		if err := ValidateID(id); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateID(%q) = %v, want ErrInvalid", id, err)
		}
	}
}

func TestValidateOwner(t *testing.T) {
	if err := ValidateOwner(strings.Repeat("o", 128)); err != nil {
		t.Errorf("128 bytes: %v", err)
	}
	for _, o := range []string{"", strings.Repeat("o", 129)} {
		if err := ValidateOwner(o); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateOwner(%d bytes) = %v, want ErrInvalid", len(o), err)
		}
	}
}

func TestNewOwner(t *testing.T) {
	a, b := NewOwner(), NewOwner()
	if len(a) != 32 || a == b {
		t.Fatalf("NewOwner gave %q and %q: want two different 128-bit hex tokens", a, b)
	}
}

// FuzzValidateID checks that every id ValidateID accepts is one the key
// layout can carry: no braces (the hash tag), no control bytes, bounded.
func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"orders/42", "a/../b", "", "{x}", "a//b", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if ValidateID(id) != nil {
			return
		}
		if len(id) == 0 || len(id) > MaxIDLen || strings.ContainsAny(id, "{} \x00?#%") {
			t.Fatalf("accepted %q", id)
		}
		for _, seg := range strings.Split(id, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("accepted %q with segment %q", id, seg)
			}
		}
	})
}
