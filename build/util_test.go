package build

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"testing"
)

// ADD of an archive refuses whiteout entries: in the layer they would
// delete the base image's files.
func TestRebaseRefusesWhiteouts(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"etc/.wh.passwd", ".wh..wh..opq", "./a/b/.wh.c"} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "ok", Mode: 0o644})
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644})
		tw.Close()
		err := rebase(&buf, io.Discard, "/dst")
		var wh *whiteoutError
		if !errors.As(err, &wh) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The root entry lands at the destination itself.
	var root bytes.Buffer
	tw := tar.NewWriter(&root)
	tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.Close()
	var wh *whiteoutError
	if err := rebase(&root, io.Discard, "/x/.wh.y"); !errors.As(err, &wh) {
		t.Errorf("a destination named like a whiteout: %v", err)
	}
	var buf bytes.Buffer
	tw = tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "a.wh.b", Mode: 0o644})
	tw.Close()
	if err := rebase(&buf, io.Discard, "/dst"); err != nil {
		t.Fatalf("a name with .wh. inside: %v", err)
	}
}
