package build

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/tugcli/tug/fixture/hostile"
)

// Fuzz targets of the build: the seeds (testdata/fuzz/FuzzXxx and the
// f.Add calls) run with every `go test`; see README for fuzzing long.

// FuzzDockerfile parses a Dockerfile as Build does and runs every step
// that needs no store: FROM and word expansion with the ARGs and ENV so
// far, the config steps, RUN's command line and flags, COPY's --chmod and
// --exclude, ONBUILD triggers. Errors are ParseErrors naming the file;
// nothing panics; WORKDIR stays absolute and clean; every ENV entry is
// KEY=VALUE; the config survives a JSON round trip unchanged; it ends
// within 10 s.
func FuzzDockerfile(f *testing.F) {
	f.Add([]byte("FROM busybox\nRUN echo hi\n"), "v")
	f.Fuzz(func(t *testing.T, dockerfile []byte, arg string) {
		// A hang is a failure too: the panic ends the fuzz worker, and the
		// fuzzer keeps the input.
		tm := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("parsing and expanding took over 10s: %q", dockerfile)) })
		defer tm.Stop()
		lex, stages, metaArgs, err := parse("Dockerfile", dockerfile)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.File != "Dockerfile" || pe.Line < 0 || pe.Msg == "" {
				t.Fatalf("parse error %#v (%v) is not a ParseError naming the Dockerfile", err, err)
			}
			return
		}
		b := &builder{o: Options{DockerfileName: "Dockerfile", BuildArgs: map[string]string{"A": arg, "HTTP_PROXY": arg}}, lex: lex, runs: map[int]*stageRun{}}
		b.meta = b.metaArgs(metaArgs)
		for _, s := range stages {
			base, _, err := lex.ProcessWord(s.BaseName, mapEnv(b.meta))
			if err != nil {
				continue
			}
			st := &stageState{shell: []string{"/bin/sh", "-c"}, args: map[string]string{}}
			for _, cmd := range s.Commands {
				if err := b.expand(st, cmd); err != nil {
					continue
				}
				_ = fmt.Sprint(cmd)
				fuzzStep(t, b, st, base, cmd)
				if tooBig(st) {
					// ENV A=$A$A doubles A per line: as in Docker, a
					// Dockerfile can ask for any amount of memory.
					return
				}
			}
			checkConfig(t, st)
		}
	})
}

func fuzzStep(t *testing.T, b *builder, st *stageState, base string, cmd instructions.Command) {
	switch c := cmd.(type) {
	case *instructions.RunCommand:
		args := b.commandLine(st, c.ShellDependantCmdLine)
		if c.PrependShell && len(args) != len(st.shell)+1 {
			t.Fatalf("RUN in shell form gives %q, want the shell and one argument", args)
		}
		instructions.GetMounts(c)
		instructions.GetNetwork(c)
		instructions.GetSecurity(c)
		singleHeredoc(c.ShellDependantCmdLine)
	case *instructions.CopyCommand:
		fuzzCopyFlags(c.Chmod, c.ExcludePatterns)
	case *instructions.AddCommand:
		fuzzCopyFlags(c.Chmod, c.ExcludePatterns)
	case *instructions.OnbuildCommand:
		if _, err := b.triggers(base, []string{c.Expression}); err == nil {
			_ = b.configStep(st, cmd)
		}
	case *instructions.ArgCommand:
		b.setArgs(st, c)
		_ = b.argHistory(st, c)
	default:
		_ = b.configStep(st, cmd) // unsupported instructions are errors
	}
}

func fuzzCopyFlags(chmod string, exclude []string) {
	if chmod != "" {
		_, _ = strconv.ParseUint(chmod, 8, 32)
	}
	if len(exclude) > 0 {
		_, _ = excludeSources([]source{{rel: "a/b"}, {rel: "c"}}, exclude)
	}
}

func tooBig(st *stageState) bool {
	n := 0
	for _, kv := range st.cfg.Config.Env {
		n += len(kv)
	}
	for k, v := range st.args {
		n += len(k) + len(v)
	}
	return n > 1<<20
}

func checkConfig(t *testing.T, st *stageState) {
	t.Helper()
	c := st.cfg.Config
	if c.WorkingDir != "" && (!path.IsAbs(c.WorkingDir) || path.Clean(c.WorkingDir) != c.WorkingDir) {
		t.Fatalf("WORKDIR gave %q: not absolute and clean", c.WorkingDir)
	}
	for _, kv := range c.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			t.Fatalf("ENV gave the entry %q: not KEY=VALUE", kv)
		}
	}
	raw, err := json.Marshal(st.cfg)
	if err != nil {
		t.Fatalf("the config does not encode: %v", err)
	}
	again, err := json.Marshal(cloneConfig(st.cfg))
	if err != nil || !bytes.Equal(raw, again) {
		t.Fatalf("the config changes in a JSON round trip:\n%s\n%s", raw, again)
	}
}

// FuzzDockerignore reads a .dockerignore as OpenContext does and asks it
// about a path. "." is never excluded; a leading "/" on a pattern changes
// nothing; without "!" patterns, what is below an excluded path is
// excluded too.
func FuzzDockerignore(f *testing.F) {
	f.Add([]byte("*.log\n!keep.log\nsecret/\n"), "secret/x")
	f.Fuzz(func(t *testing.T, ignore []byte, rel string) {
		dir := t.TempDir()
		c := openIgnore(t, dir, ignore)
		if c == nil {
			return
		}
		rel = path.Clean(strings.TrimLeft(filepath.ToSlash(rel), "/"))
		if c.excluded(".") {
			t.Fatal("the context root itself is excluded")
		}
		got := c.excluded(rel)
		rooted := openIgnore(t, filepath.Join(dir, "rooted"), rootPatterns(ignore))
		if rooted == nil {
			t.Fatal("the same patterns with a leading / do not open")
		}
		if r := rooted.excluded(rel); r != got {
			t.Fatalf("%q: excluded %v, but %v with the patterns written /PATTERN", rel, got, r)
		}
		if got && !bytes.Contains(ignore, []byte("!")) && rel != "." && !strings.HasPrefix(rel, "../") && rel != ".." {
			if !c.excluded(rel + "/child") {
				t.Fatalf("%q is excluded but %q below it is not", rel, rel+"/child")
			}
		}
	})
}

func openIgnore(t *testing.T, dir string, ignore []byte) *Context {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), ignore, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := OpenContext(dir, "")
	if err != nil {
		return nil // a bad pattern, or a line too long for the scanner
	}
	return c
}

// rootPatterns writes each pattern of a .dockerignore as /PATTERN.
func rootPatterns(ignore []byte) []byte {
	var out []string
	for line := range strings.SplitSeq(string(ignore), "\n") {
		s := strings.TrimSpace(line)
		switch {
		case s == "" || strings.HasPrefix(s, "#"):
			out = append(out, line)
		case strings.HasPrefix(s, "!"):
			out = append(out, "!/"+s[1:])
		default:
			out = append(out, "/"+s)
		}
	}
	return []byte(strings.Join(out, "\n"))
}

// FuzzCopySources resolves a COPY source pattern in a context that holds
// links leading out of it, with a fuzzed .dockerignore. Every source is
// in the context (lexically, and through the links on its way) and none
// is one that .dockerignore excludes.
func FuzzCopySources(f *testing.F) {
	for _, p := range []string{".", "a", "dir", "dir/*", "*", "../outside/secret", "/../../etc/passwd", "up/secret", "abs/secret", "dir/up/secret", "[", "dir/**", "up", "abs"} {
		f.Add(p, []byte("dir/sub\n"))
	}
	f.Fuzz(func(t *testing.T, pattern string, ignore []byte) {
		parent := t.TempDir()
		root := filepath.Join(parent, "ctx")
		writeFiles(t, root, map[string]string{"a": "a", "dir/b": "b", "dir/sub/c": "c", ".dockerignore": string(ignore)})
		writeFiles(t, parent, map[string]string{"outside/secret": "secret"})
		for name, target := range map[string]string{"up": "../outside", "abs": filepath.Join(parent, "outside"), "dir/up": "../.."} {
			if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
				t.Fatal(err)
			}
		}
		c, err := OpenContext(root, "")
		if err != nil {
			return
		}
		srcs, _, err := resolve(root, []string{pattern}, c.excluded)
		if err != nil {
			return
		}
		realRoot, _ := filepath.EvalSymlinks(root)
		for _, s := range srcs {
			if s.host != root && !strings.HasPrefix(s.host, root+"/") {
				t.Fatalf("pattern %q gave the source %s, outside the context %s", pattern, s.host, root)
			}
			if d, err := filepath.EvalSymlinks(filepath.Dir(s.host)); err == nil && d != realRoot && !strings.HasPrefix(d, realRoot+"/") {
				t.Fatalf("pattern %q gave the source %s, which is reached through a link to %s", pattern, s.host, d)
			}
			rel, _ := filepath.Rel(root, s.host)
			if c.excluded(filepath.ToSlash(rel)) {
				t.Fatalf("pattern %q gave %s, which .dockerignore excludes", pattern, rel)
			}
		}
	})
}

// FuzzAddArchive runs ADD's archive rewriting (rebase) on hostile
// archives: every entry, and every hard link's target, lands under the
// destination, and nothing is dropped or added.
func FuzzAddArchive(f *testing.F) {
	hostile.AddSeeds(func(a ...any) { f.Add(a[0].([]byte), "/dest") })
	f.Fuzz(func(t *testing.T, data []byte, dest string) {
		a := hostile.Tar(data, "/outside")
		dest = path.Clean("/" + dest)
		p := filepath.Join(t.TempDir(), "archive")
		if err := os.WriteFile(p, a.Tar, 0o644); err != nil {
			t.Fatal(err)
		}
		isArchive(p)
		var out bytes.Buffer
		if err := rebase(bytes.NewReader(a.Tar), &out, dest); err != nil {
			return
		}
		in := countEntries(a.Tar)
		n := 0
		tr := tar.NewReader(&out)
		for ; ; n++ {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("rebase wrote an archive that does not read back: %v", err)
			}
			if !under(h.Name, dest) {
				t.Fatalf("entry %q lands outside %s", h.Name, dest)
			}
			if strings.HasPrefix(path.Base("/"+h.Name), ".wh.") {
				t.Fatalf("entry %q is a whiteout in the layer", h.Name)
			}
			if h.Typeflag == tar.TypeLink && !under(h.Linkname, dest) {
				t.Fatalf("hard link %q -> %q points outside %s", h.Name, h.Linkname, dest)
			}
		}
		if n != in {
			t.Fatalf("rebase wrote %d entries of %d", n, in)
		}
	})
}

func under(name, dest string) bool {
	p := path.Clean("/" + name)
	return dest == "/" || p == dest || strings.HasPrefix(p, dest+"/")
}

func countEntries(b []byte) int {
	tr := tar.NewReader(bytes.NewReader(b))
	n := 0
	for {
		if _, err := tr.Next(); err != nil {
			return n
		}
		n++
	}
}
