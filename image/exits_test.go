package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The exit status of a removed --rm container is found by its full id,
// and statuses kept past exitsKept go at the next pruning, at most one a
// minute.
func TestRecordExit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("opens a store: needs root (tug's user namespace otherwise)")
	}
	s, err := Open(Options{GraphRoot: t.TempDir(), RunRoot: t.TempDir(), Driver: "vfs"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.s.Shutdown(true) })
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	if err := s.RecordExit(a, 7); err != nil {
		t.Fatal(err)
	}
	if code, ok := s.RecordedExit(a); !ok || code != 7 {
		t.Fatalf("RecordedExit(a) = %d, %v; want 7, true", code, ok)
	}
	for _, id := range []string{b, exitsPruned, "../" + a[:10]} {
		if _, ok := s.RecordedExit(id); ok {
			t.Errorf("RecordedExit(%q) found a status", id)
		}
	}
	dir := filepath.Join(s.s.RunRoot(), exitsDir)
	old := time.Now().Add(-exitsKept - time.Minute)
	os.Chtimes(filepath.Join(dir, a), old, old)
	// Pruned a moment ago: a's stays for now.
	if err := s.RecordExit(b, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.RecordedExit(a); !ok {
		t.Fatal("a status went before its time to prune")
	}
	stale := time.Now().Add(-2 * time.Minute)
	os.Chtimes(filepath.Join(dir, exitsPruned), stale, stale)
	if err := s.RecordExit(b, 1); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.RecordedExit(a); ok {
		t.Error("a status kept past exitsKept was not pruned")
	}
	if code, ok := s.RecordedExit(b); !ok || code != 1 {
		t.Errorf("RecordedExit(b) = %d, %v; want 1, true", code, ok)
	}
}
