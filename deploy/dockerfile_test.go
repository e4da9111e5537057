// The Dockerfile and the static binary it builds.

package deploy_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// dockerInstructions returns the Dockerfile's instructions with
// continuation lines joined and comments dropped.
func dockerInstructions(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// shellWords splits a command line as sh would for simple quoting.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				w.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case strings.ContainsRune("&|;$`<>", r):
			return nil, fmt.Errorf("unsupported shell syntax %q in %q", r, s)
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

var envAssign = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

func TestDockerfile(t *testing.T) {
	ins := dockerInstructions(t)
	var froms []string
	var user, expose, entry string
	for _, in := range ins {
		op, rest, _ := strings.Cut(in, " ")
		switch strings.ToUpper(op) {
		case "FROM":
			froms = append(froms, strings.Fields(rest)[0])
		case "USER":
			user = strings.TrimSpace(rest)
		case "EXPOSE":
			expose = strings.TrimSpace(rest)
		case "ENTRYPOINT":
			entry = strings.TrimSpace(rest)
		}
	}
	if len(froms) < 2 || !strings.HasPrefix(froms[0], "golang:") {
		t.Errorf("Dockerfile: want a golang builder stage and a final stage, FROM %v", froms)
	} else {
		goMod, err := os.ReadFile("../go.mod")
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindSubmatch(goMod)
		b := regexp.MustCompile(`^golang:(\d+)\.(\d+)`).FindStringSubmatch(froms[0])
		if m == nil || b == nil {
			t.Errorf("Dockerfile: cannot compare builder %s with go.mod's go line", froms[0])
		} else if bv, mv := atoi(b[1])*1000+atoi(b[2]), atoi(string(m[1]))*1000+atoi(string(m[2])); bv < mv {
			t.Errorf("Dockerfile: builder %s is older than go.mod's go %s.%s", froms[0], m[1], m[2])
		}
	}
	if len(froms) > 0 && froms[len(froms)-1] != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("Dockerfile: final stage %s, want gcr.io/distroless/static-debian12:nonroot", froms[len(froms)-1])
	}
	if user != "nonroot" && user != "65532" && user != "65532:65532" {
		t.Errorf("Dockerfile: USER %q, want nonroot", user)
	}
	if expose != strconv.Itoa(appPort) {
		t.Errorf("Dockerfile: EXPOSE %q, want %d", expose, appPort)
	}
	if entry != `["/candado"]` {
		t.Errorf("Dockerfile: ENTRYPOINT %s, want [\"/candado\"]", entry)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// dockerGoBuild finds the Dockerfile's `go build` and returns its
// environment assignments, its arguments after `go build` without -o,
// and the -o target.
func dockerGoBuild(t *testing.T) (env, args []string, out string) {
	t.Helper()
	for _, in := range dockerInstructions(t) {
		op, rest, _ := strings.Cut(in, " ")
		if !strings.EqualFold(op, "RUN") || !strings.Contains(rest, "go build") {
			continue
		}
		words, err := shellWords(rest)
		if err != nil {
			t.Fatalf("Dockerfile: %v", err)
		}
		i := 0
		for ; i < len(words) && envAssign.MatchString(words[i]); i++ {
			env = append(env, words[i])
		}
		if len(words) < i+2 || words[i] != "go" || words[i+1] != "build" {
			t.Fatalf("Dockerfile: want RUN [VAR=value ...] go build ..., got %q", rest)
		}
		for j := i + 2; j < len(words); j++ {
			if words[j] == "-o" && j+1 < len(words) {
				out = words[j+1]
				j++
				continue
			}
			args = append(args, words[j])
		}
		return env, args, out
	}
	t.Fatal("Dockerfile: no RUN ... go build")
	return nil, nil, ""
}

func TestDockerBuildIsStatic(t *testing.T) {
	env, args, out := dockerGoBuild(t)
	if !slices.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("Dockerfile: go build runs without CGO_ENABLED=0 (env %v)", env)
	}
	if !slices.Contains(args, "-trimpath") {
		t.Errorf("Dockerfile: go build lacks -trimpath: %v", args)
	}
	if i := slices.Index(args, "-ldflags"); i < 0 || i+1 >= len(args) || args[i+1] != "-s -w" {
		t.Errorf("Dockerfile: go build lacks -ldflags \"-s -w\": %v", args)
	}
	if out != "/candado" {
		t.Errorf("Dockerfile: go build -o %q, want /candado (the ENTRYPOINT)", out)
	}
	if len(args) == 0 {
		t.Fatal("Dockerfile: go build names no package")
	}
	// cmd/candado is a module of its own: built with -C (go wants it first).
	var chdir []string
	if len(args) >= 2 && args[0] == "-C" {
		chdir, args = args[:2], args[2:]
	}
	pkg := args[len(args)-1]
	if len(chdir) == 0 || chdir[1] != "cmd/candado" || pkg != "." {
		t.Fatalf("Dockerfile: builds %v %s, want -C cmd/candado .", chdir, pkg)
	}
	if testing.Short() {
		t.Skip("builds the binary; skipped in -short mode")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(chdir[len(chdir)-1]), filepath.FromSlash(pkg))); err != nil {
		t.Skipf("%s does not exist yet: %v", pkg, err)
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}

	bin := filepath.Join(t.TempDir(), "candado")
	cmdArgs := append(append(append([]string{"build"}, chdir...), "-o", bin), args...)
	cmd := exec.Command(goCmd, cmdArgs...)
	cmd.Dir = root
	// The image is linux; the Docker build context has no .git (.dockerignore).
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -buildvcs=false"))
	cmd.Env = append(cmd.Env, env...)
	if outb, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", env, strings.Join(cmdArgs, " "), err, outb)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			t.Error("binary has a PT_INTERP header: it needs a dynamic loader, which distroless/static lacks")
		case elf.PT_DYNAMIC:
			t.Error("binary has a PT_DYNAMIC header: it is dynamically linked")
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		t.Errorf("binary imports shared libraries %v", libs)
	}
	if syms, err := f.ImportedSymbols(); err == nil && len(syms) > 0 {
		t.Errorf("binary imports %d dynamic symbols, e.g. %v", len(syms), syms[0])
	}
	if f.Section(".dynamic") != nil || f.Section(".interp") != nil {
		t.Error("binary has .dynamic or .interp sections")
	}
	// -s drops the symbol table, -w the DWARF data.
	if f.Section(".symtab") != nil {
		t.Error("binary keeps .symtab: -ldflags -s was not applied")
	}
	for _, s := range f.Sections {
		if strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			t.Errorf("binary keeps DWARF section %s: -ldflags -w was not applied", s.Name)
			break
		}
	}
	// -trimpath: no file system paths of this machine in the binary.
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(root+string(filepath.Separator))) {
		t.Errorf("binary contains the source path %s: -trimpath was not applied", root)
	}
}
