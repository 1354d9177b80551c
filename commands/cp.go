package commands

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tugcli/tug/image"
	rt "github.com/tugcli/tug/runtime"
)

// CpCmd is `tug cp`.
type CpCmd struct {
	Archive    bool   `short:"a" help:"Archive mode (copy all uid/gid information)."`
	FollowLink bool   `short:"L" name:"follow-link" help:"Always follow symbol link in SRC_PATH."`
	Quiet      bool   `short:"q" help:"Suppress progress output (tug prints none)."`
	Src        string `arg:"" name:"SRC" help:"CONTAINER:SRC_PATH, a local path, or - (a tar archive on stdin)."`
	Dst        string `arg:"" name:"DEST" help:"CONTAINER:DEST_PATH, a local path, or - (a tar archive on stdout)."`
}

// splitCpArg reads docker cp's CONTAINER:PATH; a local path starts with /
// or . or has no colon before its first slash.
func splitCpArg(s string) (ctr, p string) {
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") {
		return "", s
	}
	i := strings.Index(s, ":")
	if i < 0 || strings.Contains(s[:i], "/") {
		return "", s
	}
	return s[:i], s[i+1:]
}

// Run copies between the container and the host, resolving every path in
// the container inside its root filesystem.
func (c *CpCmd) Run(ctx context.Context, env *Env) error {
	srcCtr, src := splitCpArg(c.Src)
	dstCtr, dst := splitCpArg(c.Dst)
	switch {
	case srcCtr != "" && dstCtr != "":
		return errors.New("copying between containers is not supported: copy to the host first")
	case srcCtr == "" && dstCtr == "":
		return errors.New("must specify at least one container source: CONTAINER:PATH")
	}
	ref, cpath := srcCtr, src
	if dstCtr != "" {
		ref, cpath = dstCtr, dst
	}
	if cpath == "" {
		return fmt.Errorf("no path given in the container: use %s:/PATH", ref)
	}
	store, err := env.MountingStore(ctx)
	if err != nil {
		return err
	}
	st, err := store.LookupContainer(ref)
	if err != nil {
		return err
	}
	cfs, release, err := containerFS(store, st)
	if err != nil {
		return err
	}
	defer release()
	if !path.IsAbs(cpath) {
		cpath = "/" + cpath // docker cp: relative to the container's /
	}
	if srcCtr != "" {
		return c.copyOut(cfs, cpath, dst, env)
	}
	return c.copyIn(cfs, src, cpath)
}

// ctrFS is a container's files, reached one of the ways containerFS picks.
type ctrFS interface {
	stat(p string) (rt.CopyStat, error)
	out(src, top string, follow bool, w io.Writer) error
	in(dst string, r io.Reader, keep bool) error
}

// containerFS reaches the container's files: through its init (a detached
// container: the copy runs inside, confined as the container is), through
// its root in /proc (a running container without one; root only), or in
// its root filesystem mounted here (a stopped one).
func containerFS(store *image.Store, st *image.ContainerState) (ctrFS, func(), error) {
	if st.Running() && st.Pid > 0 {
		runDir, err := store.ContainerRunDir(st.ID)
		if err != nil {
			return nil, nil, err
		}
		if sock := filepath.Join(runDir, execSocket); fileExists(sock) {
			return execFS{socket: sock}, func() {}, nil
		}
		return rootFS{root: "/proc/" + strconv.Itoa(st.Pid) + "/root"}, func() {}, nil
	}
	root, err := store.MountContainer(st.ID)
	if err != nil {
		return nil, nil, err
	}
	return rootFS{root: root}, func() { store.ReleaseContainer(st.ID) }, nil
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// rootFS is a container's root directory seen from here.
type rootFS struct{ root string }

func (f rootFS) stat(p string) (rt.CopyStat, error) { return rt.StatInRoot(f.root, p) }
func (f rootFS) out(src, top string, follow bool, w io.Writer) error {
	return rt.CopyOut(f.root, src, top, follow, w)
}
func (f rootFS) in(dst string, r io.Reader, keep bool) error { return rt.CopyIn(f.root, dst, r, keep) }

// execFS copies through the container's init, which runs tug's copy role
// inside the container.
type execFS struct{ socket string }

func (f execFS) run(args []string, stdin io.Reader, stdout io.Writer) error {
	inR, inW, err := os.Pipe()
	if err != nil {
		return err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return err
	}
	done := make(chan error, 3)
	go func() {
		var err error
		if stdin != nil {
			_, err = io.Copy(inW, stdin)
		}
		inW.Close()
		done <- err
	}()
	go func() {
		_, err := io.Copy(stdout, outR)
		outR.Close()
		done <- err
	}()
	var msg strings.Builder
	go func() {
		_, err := io.Copy(&msg, errR)
		errR.Close()
		done <- err
	}()
	code, err := rt.Exec(f.socket, rt.ExecRequest{Args: append([]string{rt.CopyRole}, args...), User: "0", Self: true}, inR, outW, errW)
	inR.Close()
	outW.Close()
	errW.Close()
	var ioErr error
	for i := 0; i < 3; i++ {
		if e := <-done; e != nil && ioErr == nil {
			ioErr = e
		}
	}
	switch {
	case err != nil:
		return err
	case code != 0:
		return errors.New(strings.TrimSpace(msg.String()))
	}
	return ioErr
}

func (f execFS) stat(p string) (rt.CopyStat, error) {
	var out strings.Builder
	var st rt.CopyStat
	if err := f.run([]string{"stat", p}, nil, &out); err != nil {
		return st, err
	}
	return st, json.Unmarshal([]byte(out.String()), &st)
}

func (f execFS) out(src, top string, follow bool, w io.Writer) error {
	return f.run([]string{"out", src, top, flag01(follow)}, nil, w)
}

func (f execFS) in(dst string, r io.Reader, keep bool) error {
	return f.run([]string{"in", dst, flag01(keep)}, r, io.Discard)
}

func flag01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// copyOut copies src from the container to the host path dst (or to
// stdout as a tar archive for -).
func (c *CpCmd) copyOut(cfs ctrFS, src, dst string, env *Env) error {
	if !strings.HasPrefix(src, "/") {
		src = "/" + src
	}
	contents := strings.HasSuffix(src, "/.")
	top := path.Base(path.Clean(src))
	if contents || top == "/" {
		top = ""
	}
	if dst == "-" {
		return cfs.out(src, top, c.FollowLink, env.Stdout)
	}
	sst, err := cfs.stat(src)
	if err != nil {
		return err
	}
	if !sst.Exists {
		return fmt.Errorf("could not find the file %s in the container", src)
	}
	into := dst
	fi, err := os.Stat(dst)
	switch {
	case err == nil && fi.IsDir():
	case err == nil && sst.IsDir:
		return fmt.Errorf("cannot copy the directory %s to %s: it is a file", src, dst)
	case err == nil || os.IsNotExist(err):
		if os.IsNotExist(err) && strings.HasSuffix(dst, "/") && !sst.IsDir {
			return fmt.Errorf("the destination directory %s does not exist", dst)
		}
		if contents {
			if err := os.Mkdir(dst, 0o755); err != nil && !os.IsExist(err) {
				return err
			}
		} else {
			into, top = filepath.Dir(filepath.Clean(dst)), filepath.Base(filepath.Clean(dst))
			if fi, err := os.Stat(into); err != nil || !fi.IsDir() {
				return fmt.Errorf("the destination directory %s does not exist", into)
			}
		}
	default:
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(cfs.out(src, top, c.FollowLink, pw)) }()
	err = extractOnHost(into, pr)
	pr.CloseWithError(err)
	return err
}

// copyIn copies the host path src (or a tar archive on stdin for -) to
// dst in the container.
func (c *CpCmd) copyIn(cfs ctrFS, src, dst string) error {
	if src == "-" {
		return cfs.in(dst, os.Stdin, c.Archive)
	}
	fi, err := os.Lstat(src)
	if c.FollowLink && err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		fi, err = os.Stat(src)
	}
	if err != nil {
		return fmt.Errorf("could not find the file %s on the host: %w", src, err)
	}
	contents := strings.HasSuffix(src, "/.") || src == "."
	top := filepath.Base(filepath.Clean(src))
	if contents {
		top = ""
	}
	dst = path.Clean(dst)
	into := dst
	dstat, err := cfs.stat(dst)
	if err != nil {
		return err
	}
	switch {
	case dstat.IsDir:
	case dstat.Exists && fi.IsDir():
		return fmt.Errorf("cannot copy the directory %s to %s: it is a file in the container", src, dst)
	case !contents:
		into, top = path.Dir(dst), path.Base(dst)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarHostPath(pw, src, top, c.FollowLink)) }()
	err = cfs.in(into, pr, c.Archive)
	pr.CloseWithError(err)
	return err
}

// tarHostPath writes the host path src as a tar stream, its top entry
// named top ("" for a directory's contents); symlinks are not followed
// below the top.
func tarHostPath(w io.Writer, src, top string, follow bool) error {
	tw := tar.NewWriter(w)
	first := true
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if first && follow && fi.Mode()&fs.ModeSymlink != 0 {
			fi, err = os.Stat(p)
		}
		first = false
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		name := filepath.ToSlash(filepath.Join(top, rel))
		if name == "." || name == "" {
			return nil // the contents of src, without src itself
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = name
		if fi.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.CopyN(tw, f, fi.Size())
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading %s on the host: %w", src, err)
	}
	return tw.Close()
}

// extractOnHost writes a tar stream into the host directory dir; entries
// cannot reach outside it (os.Root).
func extractOnHost(dir string, r io.Reader) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if name == "" {
			continue
		}
		mode := fs.FileMode(h.Mode & 0o777)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.Mkdir(name, mode|0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("creating %s: %w", filepath.Join(dir, name), err)
			}
		case tar.TypeReg:
			if fi, err := root.Lstat(name); err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
				_ = root.Remove(name)
			}
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
			if err != nil {
				return fmt.Errorf("writing %s: %w", filepath.Join(dir, name), err)
			}
			_, err = io.Copy(f, tr)
			f.Close()
			if err != nil {
				return fmt.Errorf("writing %s: %w", filepath.Join(dir, name), err)
			}
			_ = root.Chmod(name, mode)
			_ = root.Chtimes(name, h.ModTime, h.ModTime)
		case tar.TypeSymlink:
			_ = root.Remove(name)
			if err := root.Symlink(h.Linkname, name); err != nil {
				return fmt.Errorf("creating the link %s: %w", filepath.Join(dir, name), err)
			}
		default:
			// Devices and fifos are not recreated on the host.
		}
	}
}
