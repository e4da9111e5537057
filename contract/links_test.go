package contract

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"unicode"
)

// repoFile is the path of a file of the repository, from its root.
func repoFile(tb testing.TB, rel string) string {
	tb.Helper()
	_, here, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("cannot locate the test's source file")
	}
	return filepath.Join(filepath.Dir(here), "..", filepath.FromSlash(rel))
}

// repoRoot is the checkout's root directory.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	return filepath.Clean(repoFile(tb, "."))
}

// walkRepo calls fn for every file of the checkout, outside .git and
// downloaded dependencies.
func walkRepo(tb testing.TB, fn func(rel string, data []byte)) {
	tb.Helper()
	root := repoRoot(tb)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "vendor":
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fn(filepath.ToSlash(rel), data)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// The repository stands alone: no file points at the build machine's
// shared folder beside the checkout, which nobody else has.
func TestNoFilePointsOutsideTheRepository(t *testing.T) {
	for _, outside := range [][]byte{[]byte(".." + "/shared"), []byte("/work/" + "shared")} {
		walkRepo(t, func(rel string, data []byte) {
			if bytes.Contains(data, outside) {
				t.Errorf("%s mentions %s, a folder outside the repository", rel, outside)
			}
		})
	}
}

// mdLink matches the target of an inline Markdown link or image.
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// Every relative link in the repository's Markdown names a file that exists
// and, with a #fragment, a heading in it.
func TestMarkdownLinksResolve(t *testing.T) {
	root := repoRoot(t)
	walkRepo(t, func(rel string, data []byte) {
		if !strings.HasSuffix(rel, ".md") {
			return
		}
		for _, m := range mdLink.FindAllSubmatch(withoutCode(data), -1) {
			target := string(m[1])
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, fragment, _ := strings.Cut(target, "#")
			path := filepath.Join(root, filepath.FromSlash(rel))
			if file != "" {
				path = filepath.Join(filepath.Dir(path), filepath.FromSlash(file))
			}
			info, err := os.Stat(path)
			if err != nil {
				t.Errorf("%s links %s, which does not exist", rel, target)
				continue
			}
			if fragment == "" || info.IsDir() {
				continue
			}
			doc, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !anchors(doc)[fragment] {
				t.Errorf("%s links %s, but %s has no heading #%s", rel, target, file, fragment)
			}
		}
	})
}

// withoutCode blanks fenced code blocks, whose brackets are not links.
func withoutCode(md []byte) []byte {
	var out [][]byte
	inFence := false
	for _, line := range bytes.Split(md, []byte("\n")) {
		if bytes.HasPrefix(bytes.TrimSpace(line), []byte("```")) {
			inFence = !inFence
			continue
		}
		if !inFence {
			out = append(out, line)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// anchors are the fragment names of a Markdown file's headings, as GitHub
// renders them: lower case, punctuation dropped, spaces as hyphens.
func anchors(md []byte) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(string(withoutCode(md)), "\n") {
		text, ok := strings.CutPrefix(line, "#")
		if !ok {
			continue
		}
		text = strings.TrimSpace(strings.TrimLeft(text, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		names[b.String()] = true
	}
	return names
}
