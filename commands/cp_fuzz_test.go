package commands

import (
	"bytes"
	"testing"

	"github.com/tugcli/tug/fixture/hostile"
)

// FuzzExtractOnHost extracts hostile archives (tug cp out of a container,
// onto the host) into a directory that already holds links leading out
// of it, and checks that nothing beside that directory changed.
func FuzzExtractOnHost(f *testing.F) {
	hostile.AddSeeds(f.Add)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := hostile.NewSandbox(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		a := hostile.Tar(data, s.Outside)
		extractErr := extractOnHost(s.Root, bytes.NewReader(a.Tar))
		escaped, err := s.Escaped()
		if err != nil {
			t.Fatal(err)
		}
		if len(escaped) > 0 {
			t.Fatalf("extractOnHost (error %v) changed files outside its directory:\n%v", extractErr, escaped)
		}
	})
}
