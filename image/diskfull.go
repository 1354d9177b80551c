package image

import (
	"os"
	"path/filepath"
)

// freeLayerData removes the files of an unmounted writable layer, before
// the layer itself is deleted. On a full disk (a RUN step that filled
// it), storage cannot delete the layer: deleting rewrites its layer list,
// which needs room for a new copy, and the write fails with ENOSPC; the
// layer and the disk both stay full. Emptying the layer's directory
// first gives that room back. The directories are where the drivers
// keep a layer's own files (Podman's on-disk format): overlay/ID/diff,
// vfs/dir/ID. Errors are left to the deletion that follows.
func (s *Store) freeLayerData(id string) {
	if !hexID.MatchString(id) || len(id) != 64 {
		return
	}
	var dir string
	switch s.s.GraphDriverName() {
	case "overlay":
		dir = filepath.Join(s.s.GraphRoot(), "overlay", id, "diff")
	case "vfs":
		dir = filepath.Join(s.s.GraphRoot(), "vfs", "dir", id)
	default:
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}
