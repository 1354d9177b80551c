package initproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The container's file system view is built in two steps, mountBase then
// mountRest, after which the init is inside it (pivot_root, or chroot with
// chroot isolation): mounts are made under the old root with every target
// resolved inside rootfs; /proc and /sys paths are masked from inside the
// new root.

// mountBase makes the root file system a mount point and mounts /proc,
// /dev and /sys on it: what needs only spec's Rootfs, Isolation,
// Privileged and HostNetwork (see Prestarted.Mounted). note reports what
// had to be done another way.
func mountBase(spec *Config, note func(format string, args ...any)) error {
	root := spec.Rootfs
	chroot := spec.Isolation == IsolationChroot
	// Nothing mounted here may propagate back to tug's namespace.
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return mountErr("making / a slave mount", "/", err)
	}
	// pivot_root needs the new root to be a mount point.
	if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return mountErr("binding the root filesystem onto itself", root, err)
	}
	// With chroot isolation, /proc, /dev and /sys are what the host
	// allows: one that cannot be mounted is left out, and said so.
	for _, m := range []struct {
		what  string
		mount func() error
	}{
		{"/proc", func() error { return mountProc(root, note) }},
		{"/dev", func() error { return mountDev(root, spec) }},
		{"/sys", func() error { return mountSys(root, spec) }},
	} {
		if err := m.mount(); err != nil {
			if !chroot || !errors.Is(err, unix.EPERM) {
				return err
			}
			note("chroot isolation: %s not mounted: %v", m.what, err)
		}
	}
	return nil
}

// mountRest makes spec's mounts, moves into the root file system and
// hides or protects what the container may not change. A read-only root
// (ReadOnlyRootfs) comes later, once the working directory is made.
func mountRest(spec *Config) error {
	root := spec.Rootfs
	chroot := spec.Isolation == IsolationChroot
	for _, m := range spec.Mounts {
		if err := mountOne(root, m); err != nil {
			return err
		}
	}
	if chroot {
		if err := moveRootChroot(root); err != nil {
			return err
		}
	} else if err := pivotRoot(root); err != nil {
		return err
	}
	if !spec.Privileged {
		for _, p := range spec.MaskedPaths {
			if err := maskPath(p); err != nil {
				return err
			}
		}
		for _, p := range spec.ReadonlyPaths {
			if err := readonlyPath(p); err != nil {
				return err
			}
		}
	}
	return nil
}

func mountErr(what, target string, err error) error {
	return fmt.Errorf("%s (%s): %w", what, target, err)
}

func mountProc(root string, note func(format string, args ...any)) error {
	target, err := mkdirIn(root, "/proc")
	if err != nil {
		return err
	}
	err = unix.Mount("proc", target, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EPERM) {
		// In a user namespace the kernel mounts no fresh proc where the
		// /proc tug sees has paths masked, as in a container: bind that
		// one, masks included (crun's fallback). It shows tug's PID
		// namespace, not the container's.
		if berr := unix.Mount("/proc", target, "", unix.MS_BIND|unix.MS_REC, ""); berr == nil {
			note("/proc: a fresh proc mount was refused (%v), as where tug's own /proc has masked paths (a container's): bound tug's /proc instead, which shows tug's processes", err)
			return nil
		}
	}
	return mountErr("mounting /proc", target, err)
}

// HostDevices are bound from the host: device nodes cannot be made in a
// user namespace.
var HostDevices = []string{"null", "zero", "full", "random", "urandom", "tty"}

func mountDev(root string, spec *Config) error {
	dev, err := mkdirIn(root, "/dev")
	if err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return mountErr("mounting /dev", dev, err)
	}
	for _, d := range HostDevices {
		target := filepath.Join(dev, d)
		f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o666)
		if err != nil {
			return fmt.Errorf("creating /dev/%s: %w", d, err)
		}
		f.Close()
		if err := unix.Mount("/dev/"+d, target, "", unix.MS_BIND, ""); err != nil {
			return mountErr("binding /dev/"+d, target, err)
		}
	}
	pts := filepath.Join(dev, "pts")
	if err := os.Mkdir(pts, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("devpts", pts, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return mountErr("mounting /dev/pts", pts, err)
	}
	if err := os.Symlink("pts/ptmx", filepath.Join(dev, "ptmx")); err != nil {
		return err
	}
	shm := filepath.Join(dev, "shm")
	if err := os.Mkdir(shm, 0o1777); err != nil {
		return err
	}
	size := int64(64 << 20)
	if spec.ShmSize > 0 {
		size = spec.ShmSize
	}
	if err := unix.Mount("shm", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, fmt.Sprintf("mode=1777,size=%d", size)); err != nil {
		return mountErr("mounting /dev/shm", shm, err)
	}
	mq := filepath.Join(dev, "mqueue")
	if err := os.Mkdir(mq, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("mqueue", mq, "mqueue", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return mountErr("mounting /dev/mqueue", mq, err)
	}
	for link, target := range map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
		"stderr": "/proc/self/fd/2", "core": "/proc/kcore",
	} {
		if err := os.Symlink(target, filepath.Join(dev, link)); err != nil {
			return err
		}
	}
	return nil
}

func mountSys(root string, spec *Config) error {
	target, err := mkdirIn(root, "/sys")
	if err != nil {
		return err
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV)
	if !spec.Privileged {
		flags |= unix.MS_RDONLY
	}
	// A fresh sysfs needs a network namespace of our own; with the host's,
	// bind the host's /sys read-only instead.
	if !spec.HostNetwork {
		if err := unix.Mount("sysfs", target, "sysfs", flags, ""); err == nil {
			return nil
		}
	}
	if err := unix.Mount("/sys", target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return mountErr("binding /sys", target, err)
	}
	if !spec.Privileged {
		return remountReadOnly(target)
	}
	return nil
}

// mountOne makes one bind or tmpfs mount at a target resolved inside root.
func mountOne(root string, m Mount) error {
	switch m.Type {
	case "tmpfs":
		target, err := mkdirIn(root, m.Destination)
		if err != nil {
			return err
		}
		flags := m.Flags
		if m.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		if err := unix.Mount("tmpfs", target, "tmpfs", flags, m.Data); err != nil {
			return mountErr("mounting tmpfs", m.Destination, err)
		}
		return nil
	case "bind":
		fi, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("bind mount source %s: %w", m.Source, err)
		}
		var target string
		if fi.IsDir() {
			target, err = mkdirIn(root, m.Destination)
		} else {
			target, err = touchIn(root, m.Destination)
		}
		if err != nil {
			return err
		}
		if err := unix.Mount(m.Source, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return mountErr("binding "+m.Source, m.Destination, err)
		}
		if m.ReadOnly {
			return remountReadOnly(target)
		}
		return nil
	}
	return fmt.Errorf("unknown mount type %q for %s", m.Type, m.Destination)
}

// mkdirIn creates p (a container path) inside root and returns its host path.
func mkdirIn(root, p string) (string, error) {
	target, err := InRoot(root, p)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return "", fmt.Errorf("creating %s in the container: %w", p, err)
	}
	return target, nil
}

// touchIn creates the file p inside root (as a mount point) if missing.
func touchIn(root, p string) (string, error) {
	target, err := InRoot(root, p)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return "", fmt.Errorf("creating %s in the container: %w", filepath.Dir(p), err)
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_RDONLY|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return "", fmt.Errorf("creating %s in the container: %w", p, err)
	}
	f.Close()
	return target, nil
}

// moveRootChroot makes root the / of the mount namespace and chroots into
// it (chroot isolation: runc's --no-pivot): moved over /, the old root is
// out of reach even of a chroot("..") escape. Where the move is refused,
// a plain chroot.
func moveRootChroot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("entering the root filesystem: %w", err)
	}
	_ = unix.Mount(root, "/", "", unix.MS_MOVE, "")
	if err := unix.Chroot("."); err != nil {
		return &os.SyscallError{Syscall: "chroot", Err: err}
	}
	return unix.Chdir("/")
}

// pivotRoot makes root the new /, and detaches the old one.
func pivotRoot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("entering the root filesystem: %w", err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one; it
	// is then unmounted, with no directory needed for it in the image.
	if err := unix.PivotRoot(".", "."); err != nil {
		return mountErr("pivot_root", root, err)
	}
	// The old root is a slave: its unmount must not propagate to the host.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return mountErr("making the old root a slave", "/", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return mountErr("detaching the old root", "/", err)
	}
	return unix.Chdir("/")
}

// maskPath hides p: an empty read-only tmpfs over a directory, /dev/null
// over anything else. A path that does not exist needs no mask.
func maskPath(p string) error {
	fi, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("masking %s: %w", p, err)
	}
	if fi.IsDir() {
		err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "size=0k")
	} else {
		err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return mountErr("masking", p, err)
	}
	return nil
}

// readonlyPath binds p onto itself read-only.
func readonlyPath(p string) error {
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return mountErr("binding read-only", p, err)
	}
	return remountReadOnly(p)
}

// lockedFlags are the mount flags the kernel locks on a mount made in
// another user namespace, as statfs reports them and as mount takes them.
var lockedFlags = [...]struct {
	st int64
	ms uintptr
}{
	{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC},
	{unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME},
}

// remountReadOnly makes the mount at p read-only, keeping the flags the
// kernel locks in a user namespace (nosuid, nodev, noexec, atime): a
// remount that drops one of them fails with EPERM.
func remountReadOnly(p string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return &os.PathError{Op: "statfs", Path: p, Err: err}
	}
	var locked uintptr
	for _, f := range lockedFlags {
		if st.Flags&f.st != 0 {
			locked |= f.ms
		}
	}
	if err := unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|locked, ""); err != nil {
		return mountErr("remounting read-only", p, err)
	}
	return nil
}
