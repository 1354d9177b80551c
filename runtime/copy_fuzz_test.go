package runtime

import (
	"bytes"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/tugcli/tug/fixture/hostile"
)

// FuzzCopyIn extracts hostile archives (tug cp into a container) into a
// root that already holds links leading out of it, and checks that
// nothing beside the root changed and that no device node was made.
// Fuzz by hand as an unprivileged user (see README): an extraction bug
// found as root could write anywhere.
func FuzzCopyIn(f *testing.F) {
	hostile.AddSeeds(f.Add)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := hostile.NewSandbox(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		a := hostile.Tar(data, s.Outside)
		dst := a.Dest
		if dst == "" {
			dst = "/"
		}
		// cp -a keeps owners: chosen by the input, so both are fuzzed.
		keep := len(data) > 0 && data[len(data)-1]&1 == 1
		copyErr := CopyIn(s.Root, dst, bytes.NewReader(a.Tar), keep)
		escaped, err := s.Escaped()
		if err != nil {
			t.Fatal(err)
		}
		if len(escaped) > 0 {
			t.Fatalf("CopyIn(%q) (error %v) changed files outside the root:\n%v", dst, copyErr, escaped)
		}
		filepath.WalkDir(s.Root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type()&fs.ModeDevice != 0 {
				t.Errorf("CopyIn made the device node %s", p)
			}
			return nil
		})
	})
}
