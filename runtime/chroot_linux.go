package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/tugcli/tug/runtime/initproc"
)

// chrootInto makes root the calling process's root directory (chroot
// isolation where nothing can be mounted; moveRootChroot is the variant
// with a mount namespace).
func chrootInto(root string) error {
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("entering the root filesystem: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot %s: %w", root, err)
	}
	return unix.Chdir("/")
}

// prepareChroot puts into spec.Rootfs what chroot isolation without a
// mount namespace cannot mount there: each file the spec binds (/etc/hosts,
// /etc/resolv.conf, /etc/hostname, a RUN step's heredoc or secret) is
// copied in, and /dev gets the device nodes it lacks where mknod is
// allowed. It refuses what only a mount can give (a directory or tmpfs,
// --read-only). undo takes it all out again, and restores what was there
// (the same inode, modification times included), so that nothing of it
// ends up in a layer.
func prepareChroot(spec *Spec) (undo func(), err error) {
	var undos []func() error
	undoAll := func() {
		for i := len(undos) - 1; i >= 0; i-- {
			if err := undos[i](); err != nil {
				spec.debugf("chroot isolation: restoring the root file system: %v", err)
			}
		}
	}
	defer func() {
		if err != nil {
			undoAll()
		}
	}()
	const why = "which chroot isolation cannot give without a mount namespace (this process may not mount: no CAP_SYS_ADMIN, as in a container)"
	if spec.ReadOnlyRootfs {
		return nil, fmt.Errorf("--read-only needs a read-only mount of the root file system, %s", why)
	}
	for _, m := range spec.Mounts {
		if m.Type != "bind" {
			return nil, fmt.Errorf("the %s mount at %s needs a mount, %s", m.Type, m.Destination, why)
		}
		fi, err := os.Stat(m.Source)
		if err != nil {
			return nil, fmt.Errorf("bind mount source %s: %w", m.Source, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("binding %s at %s needs a mount, %s", m.Source, m.Destination, why)
		}
		u, err := copyIntoRoot(spec.Rootfs, m.Source, m.Destination, fi.Mode().Perm())
		if err != nil {
			return nil, err
		}
		undos = append(undos, u)
	}
	made, skipped := []string{}, ""
	for _, d := range initproc.HostDevices {
		u, err := mknodInRoot(spec.Rootfs, "/dev/"+d)
		if err != nil {
			skipped = fmt.Sprintf("%v", err)
			continue
		}
		if u != nil {
			made = append(made, d)
			undos = append(undos, u)
		}
	}
	if len(made) > 0 {
		spec.debugf("chroot isolation: made /dev/%s in the root file system for the command (removed after)", strings.Join(made, ", /dev/"))
	}
	if skipped != "" {
		spec.debugf("chroot isolation: some of /dev not made: %s", skipped)
	}
	spec.debugf("chroot isolation: /proc, /sys, /dev/pts, /dev/shm not mounted")
	return undoAll, nil
}

// copyIntoRoot copies the file src to dest inside root, keeping what was
// at dest aside; undo puts it back.
func copyIntoRoot(root, src, dest string, perm os.FileMode) (func() error, error) {
	target, err := initproc.InRoot(root, dest)
	if err != nil {
		return nil, err
	}
	restoreDirs, err := mkdirsKeepingTimes(root, filepath.Dir(target))
	if err != nil {
		return nil, fmt.Errorf("creating %s in the container: %w", filepath.Dir(dest), err)
	}
	aside := ""
	if fi, err := os.Lstat(target); err == nil {
		if fi.IsDir() {
			restoreDirs()
			return nil, fmt.Errorf("cannot put the file %s at %s: a directory is there", src, dest)
		}
		f, err := os.CreateTemp(filepath.Dir(target), ".tug-chroot-")
		if err != nil {
			restoreDirs()
			return nil, fmt.Errorf("keeping %s aside: %w", dest, err)
		}
		f.Close()
		aside = f.Name()
		if err := os.Rename(target, aside); err != nil {
			os.Remove(aside)
			restoreDirs()
			return nil, fmt.Errorf("keeping %s aside: %w", dest, err)
		}
	}
	undo := func() error {
		err := os.Remove(target)
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
		if aside != "" {
			err = errors.Join(err, os.Rename(aside, target))
		}
		return errors.Join(err, restoreDirs())
	}
	if err := copyFile(src, target, perm); err != nil {
		undo()
		return nil, fmt.Errorf("copying %s to %s in the container: %w", src, dest, err)
	}
	return undo, nil
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}

// mknodInRoot makes the device node p (a path inside root) as the host's
// p is, unless the image has one; undo removes it. It returns a nil undo
// when there was nothing to do.
func mknodInRoot(root, p string) (func() error, error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	target, err := initproc.InRoot(root, p)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(target); err == nil {
		return nil, nil
	}
	restoreDirs, err := mkdirsKeepingTimes(root, filepath.Dir(target))
	if err != nil {
		return nil, err
	}
	if err := unix.Mknod(target, unix.S_IFCHR|0o666, int(st.Rdev)); err != nil {
		restoreDirs()
		return nil, &os.PathError{Op: "mknod", Path: p, Err: err}
	}
	// The umask must not narrow it.
	_ = os.Chmod(target, 0o666)
	return func() error { return errors.Join(os.Remove(target), restoreDirs()) }, nil
}

// mkdirsKeepingTimes creates dir (a host path under root) and its missing
// parents; undo removes those it created and restores the modification
// times of the directory that existed, which the changes below touch.
func mkdirsKeepingTimes(root, dir string) (undo func() error, err error) {
	var created []string
	d := dir
	for {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		created = append(created, d)
		if d == root || d == filepath.Dir(d) {
			break
		}
		d = filepath.Dir(d)
	}
	var st unix.Stat_t
	if err := unix.Lstat(d, &st); err != nil {
		return nil, &os.PathError{Op: "lstat", Path: d, Err: err}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	slices.Reverse(created)
	return func() error {
		var errs []error
		for i := len(created) - 1; i >= 0; i-- {
			if err := os.Remove(created[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		ts := []unix.Timespec{st.Atim, st.Mtim}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, d, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			errs = append(errs, &os.PathError{Op: "utimensat", Path: d, Err: err})
		}
		return errors.Join(errs...)
	}, nil
}
