package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"testing"

	"go.podman.io/storage"
	graphdriver "go.podman.io/storage/drivers"
)

// Which failures of storing a layer are worth another try, and which
// kind: the layers again (a parent gone) or the one layer (its staging
// directory gone).
func TestRetryableLayerErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		err            error
		layer, staging bool
	}{
		{"nil", nil, false, false},
		{"parent gone", fmt.Errorf("storing layer x: %w", storage.ErrLayerUnknown), true, false},
		{"parent gone while staging", fmt.Errorf("parent layer %q: %w: %w", "p", graphdriver.ErrLayerUnknown, fs.ErrNotExist), true, false},
		{"chrooted unpacker", errors.New("unpacking failed (error: exit status 1; output: mkdir /data: no such file or directory)"), false, true},
		{"tar-split rename", &os.LinkError{Op: "rename", Old: "/g/overlay-layers/tmp/temp-dir-1/0-addition", New: "/g/overlay-layers/x.tar-split.gz", Err: syscall.ENOENT}, false, true},
		{"disk full", &fs.PathError{Op: "write", Path: "/g/tug-tmp/x", Err: syscall.ENOSPC}, false, false},
		{"bad tar", errors.New("archive/tar: invalid tar header"), false, false},
	} {
		if got := layerGone(tc.err); got != tc.layer {
			t.Errorf("%s: layerGone = %v, want %v", tc.name, got, tc.layer)
		}
		if got := stagingGone(tc.err); got != tc.staging {
			t.Errorf("%s: stagingGone = %v, want %v", tc.name, got, tc.staging)
		}
	}
}
