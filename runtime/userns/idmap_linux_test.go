package userns

import (
	"errors"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestParseStatus(t *testing.T) {
	t.Parallel()
	if s, n := ParseStatus("Seccomp:\t2\nNoNewPrivs:\t1\n"); s != 2 || !n {
		t.Fatalf("ParseStatus = %d %t", s, n)
	}
	if s, n := ParseStatus("Name: x\n"); s != -1 || n {
		t.Fatalf("ParseStatus without the fields = %d %t", s, n)
	}
}

// The user's ranges, by name or uid, whatever their order in the file,
// follow the user's own id from 1, lowest first (as Podman maps them).
func TestSubordinateRangesMapped(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "subuid")
	content := "# comment\nother:100000:65536\nalice:500000:1000\n1001:300000:2000\nalice:bad:1\nalice:200000:0\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	rs := ReadSubIDs(path, "alice", 1001)
	if want := []IDRange{{500000, 1000}, {300000, 2000}}; !slices.Equal(rs, want) {
		t.Fatalf("ReadSubIDs = %v, want %v", rs, want)
	}
	got := appendRanges([]IDMap{{0, 1001, 1}}, rs)
	want := []IDMap{{0, 1001, 1}, {1, 300000, 2000}, {2001, 500000, 1000}}
	if !slices.Equal(got, want) {
		t.Fatalf("maps = %v, want %v", got, want)
	}
}

// The package's init comes early only while it imports nothing that
// waits behind most of tug's packages (see the package comment).
func TestEarlyImports(t *testing.T) {
	t.Parallel()
	allowed := map[string]bool{"errors": true, "io": true, "os": true, "os/signal": true, "slices": true, "strconv": true, "syscall": true, "unsafe": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); !allowed[path] {
				t.Errorf("%s imports %s, which would initialize this package late", f, path)
			}
		}
	}
}

// The small readers agree with the standard library's.
func TestReadersAgree(t *testing.T) {
	t.Parallel()
	for _, uid := range []int{0, os.Getuid(), 65534, 4242} {
		want := strconv.Itoa(uid)
		if u, err := user.LookupId(want); err == nil {
			want = u.Username
		}
		if got := userName(uid); got != want {
			t.Errorf("userName(%d) = %q, os/user says %q", uid, got, want)
		}
	}
	for _, name := range []string{"sh", "newuidmap", "no-such-program-here"} {
		want, err := exec.LookPath(name)
		got, ok := lookPath(name)
		if got != want || ok != (err == nil) {
			t.Errorf("lookPath(%q) = %q, %v; exec.LookPath says %q, %v", name, got, ok, want, err)
		}
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	seccomp, nnp := ParseStatus(string(status))
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		if k == "Seccomp" && strconv.Itoa(seccomp) != v || k == "NoNewPrivs" && nnp != (v == "1") {
			t.Errorf("ParseStatus = %d, %v; /proc/self/status has %q", seccomp, nnp, line)
		}
	}
}

// A helper that fails says which, with what it printed.
func TestHelperFailureSaid(t *testing.T) {
	t.Parallel()
	err := startHelper("/bin/sh", "/etc/subuid", []string{"-c", "echo refused >&2; exit 3"}).wait()
	if err == nil || !strings.Contains(err.Error(), "writing id map with /bin/sh -c") || !strings.Contains(err.Error(), ": exit status 3: refused (/bin/sh must be setuid root") {
		t.Fatalf("error = %v", err)
	}
	if err := startHelper("/no/such/helper", "/etc/subuid", helperArgs(1, nil)).wait(); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("error for a missing helper = %v, want ENOENT in its chain", err)
	}
}
