package userns

import (
	"os"
	"path/filepath"
	"slices"
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
