package runtime

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// Copying into and out of a container's root filesystem (tug cp). Every
// path inside the container is resolved as if the root were "/" (openat2
// RESOLVE_IN_ROOT, through filepath-securejoin), and everything below it
// is reached by file descriptor with O_NOFOLLOW, so neither a symlink in
// the image nor one swapped in by a running container while the copy runs
// (docker cp's CVE-2018-15664) leads outside the root.

// CopyStat is what a path in the container is.
type CopyStat struct {
	Exists bool
	IsDir  bool
	// Uid, Gid and Mode (st_mode's permission and setuid/setgid/sticky
	// bits) are for CopyUp; they do not travel to tug cp's role.
	Uid, Gid uint32 `json:"-"`
	Mode     uint32 `json:"-"`
}

// openRoot opens a container root directory.
func openRoot(root string) (*os.File, error) {
	f, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the container's root filesystem: %w", err)
	}
	return f, nil
}

// StatInRoot says whether p exists in the container under root and is a
// directory (symlinks followed inside the root).
func StatInRoot(root, p string) (CopyStat, error) {
	rf, err := openRoot(root)
	if err != nil {
		return CopyStat{}, err
	}
	defer rf.Close()
	h, err := pathrs.OpenatInRoot(rf, p)
	if errors.Is(err, os.ErrNotExist) {
		return CopyStat{}, nil
	}
	if err != nil {
		return CopyStat{}, fmt.Errorf("resolving %s in the container: %w", p, err)
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return CopyStat{}, err
	}
	return CopyStat{Exists: true, IsDir: st.Mode&unix.S_IFMT == unix.S_IFDIR, Uid: st.Uid, Gid: st.Gid, Mode: st.Mode & 0o7777}, nil
}

// CopyOut writes src (a path in the container under root) to w as a tar
// stream whose top entry is named top; with top "" a directory's contents
// are written without it. A symlink at src is copied as one unless follow.
func CopyOut(root, src, top string, follow bool, w io.Writer) error {
	rf, err := openRoot(root)
	if err != nil {
		return err
	}
	defer rf.Close()
	dir, base := path.Split(path.Clean("/" + src))
	tw := tar.NewWriter(w)
	if base == "" || follow {
		// The root itself, or the target of a symlink: resolve it whole.
		h, err := pathrs.OpenatInRoot(rf, src)
		if err != nil {
			return fmt.Errorf("could not find %s in the container: %w", src, err)
		}
		defer h.Close()
		d, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
		if err != nil {
			return fmt.Errorf("opening %s in the container: %w", src, err)
		}
		defer d.Close()
		var st unix.Stat_t
		if err := unix.Fstat(int(d.Fd()), &st); err != nil {
			return err
		}
		if err := writeEntry(tw, d, "", &st, top); err != nil {
			return err
		}
		return tw.Close()
	}
	ph, err := pathrs.OpenatInRoot(rf, dir)
	if err != nil {
		return fmt.Errorf("could not find %s in the container: %w", src, err)
	}
	defer ph.Close()
	parent, err := pathrs.Reopen(ph, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("could not find %s in the container: %w", src, err)
	}
	defer parent.Close()
	if err := walkOut(tw, parent, base, top); err != nil {
		return err
	}
	return tw.Close()
}

// walkOut writes the entry name of directory dir (and, for a directory,
// everything below it) as tarName.
func walkOut(tw *tar.Writer, dir *os.File, name, tarName string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(int(dir.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("could not find %s in the container: no such file or directory", name)
		}
		return fmt.Errorf("reading %s in the container: %w", name, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		target, err := readlinkat(dir, name)
		if err != nil {
			return err
		}
		return writeHeader(tw, tarName, &st, target)
	case unix.S_IFREG, unix.S_IFDIR:
		fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("opening %s in the container: %w", name, err)
		}
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		// Checked again on the open file: it may have been swapped.
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		return writeEntry(tw, f, tarName, &st, tarName)
	case unix.S_IFSOCK:
		return nil // sockets do not travel in archives
	default:
		return writeHeader(tw, tarName, &st, "")
	}
}

// writeEntry writes the open file f (stat st) as name, recursing into
// directories; top renames a top-level entry ("" for the root's contents).
func writeEntry(tw *tar.Writer, f *os.File, name string, st *unix.Stat_t, top string) error {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if err := writeHeader(tw, top, st, ""); err != nil {
			return err
		}
		_, err := io.CopyN(tw, f, st.Size)
		if err != nil {
			return fmt.Errorf("reading %s in the container: %w", top, err)
		}
		return nil
	case unix.S_IFDIR:
		if top != "" {
			if err := writeHeader(tw, top, st, ""); err != nil {
				return err
			}
		}
		ents, err := f.ReadDir(-1)
		if err != nil {
			return fmt.Errorf("listing %s in the container: %w", name, err)
		}
		for _, e := range ents {
			if err := walkOut(tw, f, e.Name(), path.Join(top, e.Name())); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("copying %s: not a file or directory", name)
}

func readlinkat(dir *os.File, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(int(dir.Fd()), name, buf)
	if err != nil {
		return "", fmt.Errorf("reading the link %s in the container: %w", name, err)
	}
	return string(buf[:n]), nil
}

func writeHeader(tw *tar.Writer, name string, st *unix.Stat_t, link string) error {
	h := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		h.Typeflag, h.Size = tar.TypeReg, st.Size
	case unix.S_IFDIR:
		h.Typeflag, h.Name = tar.TypeDir, name+"/"
	case unix.S_IFLNK:
		h.Typeflag, h.Linkname = tar.TypeSymlink, link
	case unix.S_IFCHR, unix.S_IFBLK:
		h.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	}
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("writing the archive: %w", err)
	}
	return nil
}

// CopyIn extracts the tar stream r into the directory dst of the
// container under root, creating dst if it is missing. Entries are owned
// by the container's root unless keepOwner (cp -a).
func CopyIn(root, dst string, r io.Reader, keepOwner bool) error {
	rf, err := openRoot(root)
	if err != nil {
		return err
	}
	defer rf.Close()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the archive: %w", err)
		}
		name := path.Clean("/" + h.Name)
		if name == "/" {
			continue
		}
		parentPath, base := path.Split(name)
		parent, err := pathrs.MkdirAllHandle(rf, path.Join(dst, parentPath), 0o755)
		if err != nil {
			return fmt.Errorf("creating %s in the container: %w", path.Join(dst, parentPath), err)
		}
		err = extractEntry(parent, base, h, tr, keepOwner)
		parent.Close()
		if err != nil {
			return fmt.Errorf("copying %s into the container: %w", path.Join(dst, name), err)
		}
	}
}

// extractEntry creates base in the directory handle parent (an O_PATH
// handle) from one tar entry, never following a symlink at base.
func extractEntry(parent *os.File, base string, h *tar.Header, r io.Reader, keepOwner bool) error {
	dir, err := pathrs.Reopen(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return err
	}
	defer dir.Close()
	dfd := int(dir.Fd())
	mode := uint32(h.Mode & 0o7777)
	replace := func() {
		var st unix.Stat_t
		if unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			_ = unix.Unlinkat(dfd, base, 0)
		}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(dfd, base, mode); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		fd, err := unix.Openat(dfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		_ = unix.Fchmod(fd, mode)
		return ownAndTime(fd, h, keepOwner)
	case tar.TypeReg:
		replace()
		fd, err := unix.Openat(dfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), base)
		defer f.Close()
		if _, err := io.Copy(f, r); err != nil {
			return err
		}
		_ = unix.Fchmod(fd, mode)
		return ownAndTime(fd, h, keepOwner)
	case tar.TypeSymlink:
		replace()
		if err := unix.Symlinkat(h.Linkname, dfd, base); err != nil {
			return err
		}
		if keepOwner {
			_ = unix.Fchownat(dfd, base, h.Uid, h.Gid, unix.AT_SYMLINK_NOFOLLOW)
		}
		return nil
	case tar.TypeFifo:
		replace()
		return unix.Mkfifoat(dfd, base, mode)
	case tar.TypeChar, tar.TypeBlock:
		return errors.New("device nodes cannot be copied into a container")
	case tar.TypeLink:
		return errors.New("hard links in the archive are not supported: copy the files themselves")
	}
	return fmt.Errorf("unsupported archive entry type %q", h.Typeflag)
}

func ownAndTime(fd int, h *tar.Header, keepOwner bool) error {
	if keepOwner {
		if err := unix.Fchown(fd, h.Uid, h.Gid); err != nil {
			return fmt.Errorf("keeping the owner %d:%d: %w", h.Uid, h.Gid, err)
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(h.ModTime.UnixNano()), unix.NsecToTimespec(h.ModTime.UnixNano())}
	_ = unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH)
	return nil
}

// CopyUp fills vol, a named volume's directory, with what the container's
// root file system under root has at p, as Docker fills a volume on its
// mount: only where vol is empty and p is a directory (symlinks followed
// inside the root), ownership and modes kept, and vol then takes p's
// owner and mode.
func CopyUp(root, p, vol string) error {
	if entries, err := os.ReadDir(vol); err != nil || len(entries) > 0 {
		return err
	}
	st, err := StatInRoot(root, p)
	if err != nil || !st.IsDir {
		return err
	}
	r, w := io.Pipe()
	out := make(chan error, 1)
	go func() {
		err := CopyOut(root, p, "", true, w)
		w.CloseWithError(err)
		out <- err
	}()
	err = CopyIn(vol, "/", r, true)
	r.CloseWithError(err)
	if oerr := <-out; err == nil {
		err = oerr
	}
	if err != nil {
		return fmt.Errorf("copying %s from the image into the volume: %w", p, err)
	}
	if err := os.Lchown(vol, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("giving the volume the owner of %s: %w", p, err)
	}
	if err := os.Chmod(vol, os.FileMode(st.Mode&0o777)|modeBits(st.Mode)); err != nil {
		return fmt.Errorf("giving the volume the mode of %s: %w", p, err)
	}
	return nil
}

// modeBits are the setuid, setgid and sticky bits of a stat mode as Go's.
func modeBits(m uint32) os.FileMode {
	var fm os.FileMode
	if m&unix.S_ISUID != 0 {
		fm |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		fm |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		fm |= os.ModeSticky
	}
	return fm
}
