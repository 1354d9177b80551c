package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// DiskFullError is a write that failed because a file system was full
// (ENOSPC) or the user's quota on it was used up (EDQUOT). Its message
// says what to do.
type DiskFullError struct {
	Err error
	// Path is the file system's: the store's graph root when the write
	// was there (or nothing says where it was), else the path written.
	Path string
	// Store says the file system is the store's.
	Store bool
}

func (e *DiskFullError) Error() string {
	if !e.Store {
		return fmt.Sprintf("%v (the file system holding %s is full: free space on it, or write somewhere else)", e.Err, e.Path)
	}
	where := "the image store"
	if e.Path != "" {
		where += " " + e.Path
	}
	return fmt.Sprintf("%v (the file system holding %s is full: free space on it; 'tug system prune' removes stopped containers, dangling images and build cache "+
		"(-a: every image no container uses), 'tug image prune -a' images only; or move the store to a larger file system with --root or storage.root in tug's configuration file)", e.Err, where)
}

func (e *DiskFullError) Unwrap() error { return e.Err }

// DiskFull returns err with what to do when it is a full disk or quota,
// and err itself otherwise. root is the store's graph root ("" when not
// known): the remedies name the store when the write was on its file
// system.
func DiskFull(err error, root string) error {
	var done *DiskFullError
	if err == nil || errors.As(err, &done) || !isDiskFull(err) {
		return err
	}
	df := &DiskFullError{Err: err, Path: root, Store: true}
	var pe *fs.PathError
	if errors.As(err, &pe) && filepath.IsAbs(pe.Path) && !onFileSystemOf(pe.Path, root) {
		df.Path, df.Store = pe.Path, false
	}
	return df
}

// isDiskFull reports whether err is ENOSPC or EDQUOT, or says so: storage's
// helper processes and a container's commands report it only as text.
// ENOSPC from starting a process or making a namespace is a kernel limit
// (user.max_user_namespaces, ...), from inotify or keys another: not a
// disk.
func isDiskFull(err error) bool {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Op == "fork/exec" {
		return false
	}
	s := strings.ToLower(err.Error())
	for _, limit := range []string{"fork/exec", "clone", "unshare", "namespace", "inotify", "keyring"} {
		if strings.Contains(s, limit) {
			return false
		}
	}
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		strings.Contains(s, "no space left on device") || strings.Contains(s, "disk quota exceeded")
}

// onFileSystemOf reports whether path is on the file system that holds
// root, judged by the nearest directory of each that exists; true when
// root is not known.
func onFileSystemOf(path, root string) bool {
	if root == "" {
		return true
	}
	dev := func(p string) (uint64, bool) {
		for {
			var st syscall.Stat_t
			if syscall.Stat(p, &st) == nil {
				return uint64(st.Dev), true
			}
			parent := filepath.Dir(p)
			if parent == p {
				return 0, false
			}
			p = parent
		}
	}
	a, okA := dev(path)
	b, okB := dev(root)
	return !okA || !okB || a == b
}

// freeLayerData removes the files of an unmounted writable layer, before
// the layer itself is deleted. On a full disk (a RUN step that filled
// it), storage cannot delete the layer: deleting rewrites its layer list,
// which needs room for a new copy, and the write fails with ENOSPC; the
// layer and the disk both stay full. Emptying the layer's directory
// first gives that room back. The directories are where the drivers
// keep a layer's own files (Podman's on-disk format): overlay/ID/diff,
// vfs/dir/ID. Errors are left to the deletion that follows.
func (s *Store) freeLayerData(id string) {
	if !isHexID(id) || len(id) != 64 {
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
