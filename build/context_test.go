package build

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func rels(srcs []source) []string {
	var out []string
	for _, s := range srcs {
		out = append(out, s.rel)
	}
	sort.Strings(out)
	return out
}

func TestResolveWithDockerignore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		".dockerignore": "*.log\n!keep.log\nsecret/\n",
		"a.txt":         "a", "b.log": "b", "keep.log": "k", "secret/s": "s", "sub/c.txt": "c",
	})
	c, err := OpenContext(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	srcs, multi, err := resolve(dir, []string{"."}, c.excluded)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(rels(srcs), " ")
	if got != ".dockerignore a.txt keep.log sub sub/c.txt" || !multi {
		t.Fatalf("COPY . sees %q (multi %v)", got, multi)
	}
	if _, _, err := resolve(dir, []string{"b.log"}, c.excluded); err == nil || !strings.Contains(err.Error(), ".dockerignore") {
		t.Fatalf("an excluded source: %v", err)
	}
	srcs, _, err = resolve(dir, []string{"*.txt"}, c.excluded)
	if err != nil || strings.Join(rels(srcs), " ") != "a.txt" {
		t.Fatalf("wildcard: %v %v", rels(srcs), err)
	}
	// ".." cannot climb out of the context: it is cleaned to the root.
	if _, _, err := resolve(dir, []string{"../../etc/passwd"}, nil); err == nil {
		t.Fatal("a source above the context resolved")
	}
}

func TestChecksumSeesContentAndMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"f": "one"})
	sum := func() string {
		srcs, _, err := resolve(dir, []string{"f"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := checksum(srcs)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := sum()
	os.WriteFile(filepath.Join(dir, "f"), []byte("two"), 0o644)
	b := sum()
	os.Chmod(filepath.Join(dir, "f"), 0o755)
	c := sum()
	if a == b || b == c {
		t.Fatalf("checksums did not change with content (%v) or mode (%v)", a != b, b != c)
	}
}

func TestWriteTarPlacesAndOwns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"d/x": "x"})
	srcs, _, err := resolve(dir, []string{"d"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeTar(&buf, srcs, copyOptions{dest: "/app", destDir: true, uid: 1000, gid: 1000}); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if h.Name != "app/x" || h.Uid != 1000 || h.Gid != 1000 {
		t.Fatalf("entry %q owned %d:%d", h.Name, h.Uid, h.Gid)
	}
}

func TestParseErrorsNameFileAndLine(t *testing.T) {
	t.Parallel()
	_, err := Build(t.Context(), nil, Options{Dockerfile: []byte("FROM scratch\nRUNN x\n"), DockerfileName: "Dockerfile"})
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 2 || !strings.HasPrefix(err.Error(), "Dockerfile:2: ") {
		t.Fatalf("parse error = %v", err)
	}
	_, err = Build(t.Context(), nil, Options{Dockerfile: []byte("# only a comment\n")})
	if err == nil {
		t.Fatal("an empty Dockerfile built")
	}
}
