package contract

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"handler/function/function"
)

// Every variable the service reads is documented in docs/API.md, so a new
// setting cannot ship without its line in the contract.
func TestAPIDocumentsEveryConfigVariable(t *testing.T) {
	doc, err := os.ReadFile(repoFile(t, "docs/API.md"))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"PORT"}
	typ := reflect.TypeOf(function.Config{})
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Tag.Get("ignored") == "true" {
			continue // not read from the environment (Origins, notices, the deadline)
		}
		tag, ok := f.Tag.Lookup("envconfig")
		if !ok || tag == "-" {
			t.Errorf("Config.%s has no envconfig name; the check cannot tell which variable it reads", f.Name)
			continue
		}
		name := tag // a whole name, or one envconfig prefixes with CANDADO_
		if !strings.HasPrefix(tag, function.Prefix+"_") {
			name = function.Prefix + "_" + strings.ToUpper(tag)
		}
		names = append(names, name)
	}
	// The secrets may also come from files (see LoadConfig).
	names = append(names, function.Prefix+"_REDIS_URL_FILE", function.Prefix+"_AUTH_TOKEN_FILE", function.Prefix+"_OWNER_KEY_FILE")
	for _, name := range names {
		if !strings.Contains(string(doc), "| `"+name+"` |") {
			t.Errorf("docs/API.md has no configuration row for %s", name)
		}
	}
}
