package main

import (
	"path/filepath"
	"testing"

	"handler/function/bench/internal/proc"
)

// Every server the tables measure builds from the repository as it is
// laid out now (cmd/candado became a module of its own, and the harness
// went on building it as a package of the root, so make bench failed).
func TestEveryTargetBuilds(t *testing.T) {
	root, err := findRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, b := range builds(root) {
		if err := proc.Build(filepath.Join(dir, b.name), b.pkg, b.dir); err != nil {
			t.Errorf("%s: %v", b.name, err)
		}
	}
}
