package contract

import (
	"os"
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
	var names []string
	for _, v := range function.Variables() {
		names = append(names, v.Name)
	}
	for _, name := range names {
		if !strings.Contains(string(doc), "| `"+name+"` |") {
			t.Errorf("docs/API.md has no configuration row for %s", name)
		}
	}
}
