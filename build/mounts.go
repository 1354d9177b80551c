package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"go.podman.io/storage/pkg/archive"
	"golang.org/x/sys/unix"

	rt "github.com/tugcli/tug/runtime"
)

// Secret is a value a RUN step may read through --mount=type=secret: a
// file's content or an environment variable's, read only when a step
// needs it, and never written into a layer, the history or the cache.
type Secret struct {
	Src string // a file on the host
	Env string // an environment variable of tug's process
}

// ParseSecret parses --secret's value as Docker does:
// id=ID[,src=PATH|,env=VAR][,type=file|env]. With neither src nor env the
// variable named ID is used if set, else the file named ID.
func ParseSecret(spec string) (string, Secret, error) {
	var id, typ string
	var s Secret
	for _, f := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return "", s, fmt.Errorf("--secret %q: %q is not KEY=VALUE", spec, f)
		}
		switch strings.ToLower(k) {
		case "id":
			id = v
		case "src", "source":
			s.Src = v
		case "env":
			s.Env = v
		case "type":
			typ = v
		default:
			return "", s, fmt.Errorf("--secret %q: unknown key %q (want id, src, env or type)", spec, k)
		}
	}
	if id == "" {
		return "", s, fmt.Errorf("--secret %q: id= is required", spec)
	}
	switch {
	case s.Src != "" && s.Env != "":
		return "", s, fmt.Errorf("--secret %q: give src= or env=, not both", spec)
	case s.Src == "" && s.Env == "" && typ == "env":
		s.Env = id
	case s.Src == "" && s.Env == "" && typ == "file":
		s.Src = id
	case s.Src == "" && s.Env == "":
		if _, ok := os.LookupEnv(id); ok {
			s.Env = id
		} else {
			s.Src = id
		}
	}
	if s.Src != "" {
		abs, err := filepath.Abs(s.Src)
		if err != nil {
			return "", s, err
		}
		s.Src = abs
	}
	return id, s, nil
}

func (s Secret) read(id string) ([]byte, error) {
	if s.Env != "" {
		v, ok := os.LookupEnv(s.Env)
		if !ok {
			return nil, fmt.Errorf("secret %s: environment variable %s is not set", id, s.Env)
		}
		return []byte(v), nil
	}
	b, err := os.ReadFile(s.Src)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", id, err)
	}
	return b, nil
}

// mountTarget is a RUN mount's target: relative ones are under WORKDIR.
func mountTarget(st *stageState, t string) string {
	if !path.IsAbs(t) {
		t = path.Join("/", st.cfg.Config.WorkingDir, t)
	}
	return path.Clean(t)
}

// mountsKey is what a RUN's mounts add to its cache key: each mount's
// kind and place, and for a bind mount the content it shows (the context
// files' checksum, or the source stage's key). Cache and tmpfs contents,
// and secrets' values, are not part of it, as in BuildKit.
func (b *builder) mountsKey(ctx context.Context, st *stageState, mounts []*instructions.Mount) (string, error) {
	var parts []string
	for _, m := range mounts {
		p := fmt.Sprintf("%s|%s|%s|%s|%s|%v|%s|%v|%d", m.Type, m.From, m.Source, mountTarget(st, m.Target), m.CacheID, m.ReadOnly, m.CacheSharing, m.Env != nil, m.SizeLimit)
		if m.Env != nil {
			p += "|" + *m.Env
		}
		for _, n := range []*uint64{m.Mode, m.UID, m.GID} {
			if n != nil {
				p += "|" + strconv.FormatUint(*n, 10)
			} else {
				p += "|-"
			}
		}
		if m.Type == instructions.MountTypeCache && m.From != "" {
			// The content a new cache starts from, as BuildKit's key has
			// the base's definition.
			_, key, err := b.mountSource(ctx, m.From)
			if err != nil {
				return "", err
			}
			p += "|" + key
		}
		if m.Type == instructions.MountTypeBind {
			if m.From == "" {
				srcs, _, err := resolve(b.o.Context.Dir, []string{bindSource(m)}, b.o.Context.excluded)
				if err != nil {
					return "", fmt.Errorf("RUN --mount=type=bind,source=%s: %w", m.Source, err)
				}
				sum, err := checksum(srcs)
				if err != nil {
					return "", err
				}
				p += "|" + sum
			} else {
				_, key, err := b.mountSource(ctx, m.From)
				if err != nil {
					return "", err
				}
				p += "|" + key
			}
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "\x00"), nil
}

func bindSource(m *instructions.Mount) string {
	if m.Source == "" {
		return "."
	}
	return m.Source
}

// mountSource finds a bind mount's from=: a stage (by name or index) or
// an image; it returns its top layer and a key for its content.
func (b *builder) mountSource(ctx context.Context, from string) (string, string, error) {
	for j := range b.stages {
		if (b.stages[j].Name != "" && strings.EqualFold(b.stages[j].Name, from)) || strconv.Itoa(j) == from {
			st, err := b.stage(ctx, j)
			if err != nil {
				return "", "", err
			}
			return st.top, st.key, nil
		}
	}
	img, err := b.baseImage(ctx, from)
	if err != nil {
		return "", "", fmt.Errorf("RUN --mount from=%s: %w", from, err)
	}
	return img.TopLayer, keyOf("image", img.ID), nil
}

// runMounts are a RUN step's --mount mounts made ready for the runtime.
type runMounts struct {
	mounts  []rt.Mount
	env     []string // secrets given as environment variables
	targets []string // where they go, for removing the mount points after
	undo    []func()
}

func (r *runMounts) release() {
	for i := len(r.undo) - 1; i >= 0; i-- {
		r.undo[i]()
	}
}

// cacheMountsDir holds RUN --mount=type=cache directories, one per id.
func (b *builder) cacheMountsDir() string {
	return filepath.Join(b.store.GraphRoot(), "tug-build-cache-mounts")
}

// prepareMounts makes a RUN step's mounts: cache directories in the
// store, bind sources, tmpfs, and secrets written to files in runDir
// (which the caller removes). Call release when the step is over.
func (b *builder) prepareMounts(ctx context.Context, st *stageState, mounts []*instructions.Mount, runDir string) (*runMounts, error) {
	r := &runMounts{}
	nSSH := 0
	for i, m := range mounts {
		target := mountTarget(st, m.Target)
		switch m.Type {
		case instructions.MountTypeCache:
			var from *cacheBase
			if m.From != "" {
				top, key, err := b.mountSource(ctx, m.From)
				if err != nil {
					return r, err
				}
				from = &cacheBase{top: top, key: key}
			}
			dir, unlock, err := b.cacheMount(m, target, from)
			if err != nil {
				return r, err
			}
			r.undo = append(r.undo, unlock)
			src := dir
			if s := path.Clean("/" + m.Source); s != "/" {
				if src, err = securejoin.SecureJoin(dir, s); err != nil {
					return r, err
				}
				if err := os.MkdirAll(src, 0o755); err != nil {
					return r, err
				}
			}
			r.mounts = append(r.mounts, rt.Mount{Type: "bind", Source: src, Destination: target, ReadOnly: m.ReadOnly})
		case instructions.MountTypeBind:
			src, err := b.bindMount(ctx, r, m, filepath.Join(runDir, "bind-"+strconv.Itoa(i)))
			if err != nil {
				return r, err
			}
			r.mounts = append(r.mounts, rt.Mount{Type: "bind", Source: src, Destination: target, ReadOnly: m.ReadOnly})
		case instructions.MountTypeTmpfs:
			data := ""
			if m.SizeLimit > 0 {
				data = "size=" + strconv.FormatInt(m.SizeLimit, 10)
			}
			r.mounts = append(r.mounts, rt.Mount{Type: "tmpfs", Destination: target, Data: data, Flags: unix.MS_NOSUID | unix.MS_NODEV})
		case instructions.MountTypeSecret:
			if err := b.secretMount(r, m, filepath.Join(runDir, "secret-"+strconv.Itoa(i))); err != nil {
				return r, err
			}
			continue // its target is set there
		case instructions.MountTypeSSH:
			t, err := b.sshMount(r, m, nSSH, filepath.Join(runDir, "ssh-"+strconv.Itoa(i)+".sock"))
			if err != nil {
				return r, err
			}
			if nSSH == 0 {
				// The first ssh mount is the step's agent, unless the
				// stage sets SSH_AUTH_SOCK itself (BuildKit's rule).
				if _, ok := st.env()["SSH_AUTH_SOCK"]; !ok {
					r.env = append(r.env, "SSH_AUTH_SOCK="+t)
				}
			}
			nSSH++
			continue // its target is set there
		default:
			return r, fmt.Errorf("%s: RUN --mount=type=%s is not supported by tug yet", b.o.DockerfileName, m.Type)
		}
		r.targets = append(r.targets, target)
	}
	return r, nil
}

// cacheBase is what a cache mount's from= names: a stage's or an image's
// top layer ("" for scratch) and a key for its content.
type cacheBase struct {
	top, key string
}

// cacheMount returns the persistent directory of a cache mount, made on
// first use with its uid, gid and mode, and locked for the step when
// sharing is locked or private (tug waits where BuildKit would give a
// private mount a fresh directory). With from=, the directory is another
// cache, one per id, source and content of from (BuildKit keys it on the
// id and the base's snapshot), and starts as a copy of from's source
// path (tug copies only that path, the part the step sees).
func (b *builder) cacheMount(m *instructions.Mount, target string, from *cacheBase) (string, func(), error) {
	id := m.CacheID
	if id == "" {
		id = target
	}
	base := b.cacheMountsDir()
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", nil, fmt.Errorf("cache mount %s: %w", id, err)
	}
	name := keyOf("cache-mount", id)[:32]
	label := id
	if from != nil {
		name = keyOf("cache-mount", id, "from", from.key, path.Clean("/"+m.Source))[:32]
		label = id + " from " + m.From
	}
	dir := filepath.Join(base, name)
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		tmp, err := os.MkdirTemp(base, ".new-")
		if err != nil {
			return "", nil, fmt.Errorf("cache mount %s: %w", id, err)
		}
		if from != nil {
			if err := b.seedCache(tmp, from, m); err != nil {
				os.RemoveAll(tmp)
				return "", nil, fmt.Errorf("cache mount %s: %w", label, err)
			}
		}
		mode := fs.FileMode(0o755)
		if m.Mode != nil {
			mode = fs.FileMode(*m.Mode)
		}
		uid, gid := 0, 0
		if m.UID != nil {
			uid = int(*m.UID)
		}
		if m.GID != nil {
			gid = int(*m.GID)
		}
		err = os.Chmod(tmp, mode)
		if err == nil && (uid != 0 || gid != 0) {
			err = os.Chown(tmp, uid, gid)
		}
		if err == nil {
			// The id, for people looking at the store.
			err = os.WriteFile(tmp+".id", []byte(label+"\n"), 0o600)
		}
		if err == nil {
			if err = os.Rename(tmp+".id", dir+".id"); err == nil {
				// Never over a directory another step made meanwhile (a
				// plain rename replaces an empty one, which that step may
				// already have mounted).
				err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_NOREPLACE)
				if errors.Is(err, unix.EEXIST) {
					err = os.ErrExist
				}
			}
		}
		if err != nil && !os.IsExist(err) && !isNotEmpty(err) {
			os.RemoveAll(tmp)
			return "", nil, fmt.Errorf("cache mount %s: %w", id, err)
		}
		os.RemoveAll(tmp) // lost a race: another build made it
	} else if err != nil {
		return "", nil, fmt.Errorf("cache mount %s: %w", id, err)
	}
	unlock := func() {}
	if m.CacheSharing == instructions.MountSharingLocked || m.CacheSharing == instructions.MountSharingPrivate {
		f, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return "", nil, fmt.Errorf("locking cache mount %s: %w", id, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return "", nil, fmt.Errorf("locking cache mount %s: %w", id, err)
		}
		unlock = func() { f.Close() }
	}
	return dir, unlock, nil
}

// seedCache copies from's source path (owners, modes, times and links
// kept) into a new cache directory at the same path, which the step will
// see; a path from lacks leaves it empty, as an empty cache is.
func (b *builder) seedCache(dir string, from *cacheBase, m *instructions.Mount) error {
	if from.top == "" {
		return nil
	}
	root, err := b.store.MountLayer(from.top)
	if err != nil {
		return err
	}
	defer b.store.UnmountLayer(from.top)
	src, err := securejoin.SecureJoin(root, m.Source)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("from=%s,source=%s: not a directory in %s", m.From, m.Source, m.From)
	}
	dst, err := securejoin.SecureJoin(dir, m.Source)
	if err != nil {
		return err
	}
	if err := archive.NewDefaultArchiver().CopyWithTar(src, dst); err != nil {
		return fmt.Errorf("copying %s from %s: %w", path.Clean("/"+m.Source), m.From, err)
	}
	return nil
}

func isNotEmpty(err error) bool {
	var le *os.LinkError
	return errors.As(err, &le) && (le.Err == syscall.ENOTEMPTY || le.Err == syscall.EEXIST)
}

// bindMount returns the host path a bind mount shows. From the context,
// that is a scratch copy (with .dockerignore applied) unless it is
// read-only and nothing is ignored; from a stage or an image, its layer
// mounted, or a throwaway writable layer on it for rw. Writes never reach
// the context or the step's layer.
func (b *builder) bindMount(ctx context.Context, r *runMounts, m *instructions.Mount, scratch string) (string, error) {
	src := bindSource(m)
	if m.From == "" {
		root := b.o.Context.Dir
		if m.ReadOnly && b.o.Context.ignored == nil {
			p, err := inside(root, path.Clean("/" + filepath.ToSlash(src))[1:])
			if err != nil {
				return "", err
			}
			// The bind follows a symlink: it too must stay in the context.
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				return "", fmt.Errorf("RUN --mount=type=bind,source=%s: %w", src, err)
			}
			rootReal, _ := filepath.EvalSymlinks(root)
			if real != rootReal && !strings.HasPrefix(real, rootReal+string(filepath.Separator)) {
				return "", fmt.Errorf("RUN --mount=type=bind,source=%s: forbidden path outside the build context", src)
			}
			return real, nil
		}
		srcs, multi, err := resolve(root, []string{src}, b.o.Context.excluded)
		if err != nil {
			return "", fmt.Errorf("RUN --mount=type=bind,source=%s: %w", src, err)
		}
		if err := copyTree(srcs, scratch, multi || len(srcs) == 0); err != nil {
			return "", fmt.Errorf("RUN --mount=type=bind,source=%s: %w", src, err)
		}
		return scratch, nil
	}
	top, _, err := b.mountSource(ctx, m.From)
	if err != nil {
		return "", err
	}
	var root string
	switch {
	case !m.ReadOnly:
		w, err := b.store.NewWorkLayer(top)
		if err != nil {
			return "", err
		}
		r.undo = append(r.undo, func() { _ = b.store.Discard(w) })
		root = w.Path
	case top == "":
		root = scratch
		if err := os.MkdirAll(root, 0o755); err != nil {
			return "", err
		}
	default:
		p, err := b.store.MountLayer(top)
		if err != nil {
			return "", err
		}
		r.undo = append(r.undo, func() { b.store.UnmountLayer(top) })
		root = p
	}
	p, err := securejoin.SecureJoin(root, src)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("RUN --mount=type=bind,from=%s,source=%s: not found in %s", m.From, src, m.From)
	}
	return p, nil
}

// secretMount reads a secret and gives it to the step: a file bound
// read-only (default /run/secrets/ID, mode 0400), and/or an environment
// variable with env=.
func (b *builder) secretMount(r *runMounts, m *instructions.Mount, file string) error {
	id := m.CacheID
	if m.Source != "" {
		id = m.Source
	}
	if id == "" {
		id = path.Base(m.Target)
	}
	s, ok := b.o.Secrets[id]
	if !ok {
		if m.Required {
			return fmt.Errorf("%s: RUN --mount=type=secret: secret %s is required but was not given (tug build --secret id=%s,src=PATH)", b.o.DockerfileName, id, id)
		}
		return nil
	}
	data, err := s.read(id)
	if err != nil {
		return err
	}
	if m.Env != nil {
		r.env = append(r.env, *m.Env+"="+string(data))
		if m.Target == "" {
			return nil
		}
	}
	target := m.Target
	if target == "" {
		target = "/run/secrets/" + path.Base(id)
	}
	mode := fs.FileMode(0o400)
	if m.Mode != nil {
		mode = fs.FileMode(*m.Mode)
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return err
	}
	if err := os.Chmod(file, mode); err != nil {
		return err
	}
	if m.UID != nil || m.GID != nil {
		uid, gid := 0, 0
		if m.UID != nil {
			uid = int(*m.UID)
		}
		if m.GID != nil {
			gid = int(*m.GID)
		}
		if err := os.Chown(file, uid, gid); err != nil {
			return fmt.Errorf("secret %s: %w", id, err)
		}
	}
	target = path.Clean(target)
	r.mounts = append(r.mounts, rt.Mount{Type: "bind", Source: file, Destination: target, ReadOnly: true})
	r.targets = append(r.targets, target)
	return nil
}

// copyTree copies resolved sources to dst: a directory of them (dir), or
// the one file.
func copyTree(srcs []source, dst string, dir bool) error {
	if dir {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
	}
	for _, s := range srcs {
		p := dst
		if dir {
			p = filepath.Join(dst, filepath.FromSlash(s.rel))
		}
		mode := s.info.Mode()
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(p, mode.Perm()|0o700); err != nil {
				return err
			}
		case mode&fs.ModeSymlink != 0:
			t, err := os.Readlink(s.host)
			if err != nil {
				return err
			}
			if err := os.Symlink(t, p); err != nil {
				return err
			}
		case mode.IsRegular():
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := copyFile(s.host, p, mode.Perm()); err != nil {
				return err
			}
		}
	}
	return nil
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// The mount points the runtime always makes; a step's mounts add theirs.
var runtimeMountPoints = []string{"/proc", "/dev", "/sys", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}

// mountPoints returns the paths (relative to root, symlinks resolved
// inside it) that are missing for targets, which the runtime will create
// as mount points: they are removed again before the layer is taken.
func mountPoints(root string, targets []string) []string {
	seen := map[string]bool{}
	var missing []string
	for _, t := range targets {
		cur := "/"
		for _, part := range strings.Split(strings.Trim(path.Clean("/"+t), "/"), "/") {
			if part == "" {
				break
			}
			host, err := securejoin.SecureJoin(root, path.Join(cur, part))
			if err != nil {
				break
			}
			rel, err := filepath.Rel(root, host)
			if err != nil || strings.HasPrefix(rel, "..") {
				break
			}
			cur = "/" + filepath.ToSlash(rel)
			if _, err := os.Lstat(host); os.IsNotExist(err) && !seen[cur] {
				seen[cur] = true
				missing = append(missing, cur)
			}
		}
	}
	return missing
}

// removeMountPoints removes what mountPoints listed, deepest first, each
// only if still empty (a step may have put files beside a mount point)
// and only where the path still leads through no symlink.
func removeMountPoints(root string, created []string) {
	sorted := append([]string{}, created...)
	sort.Slice(sorted, func(i, j int) bool { return strings.Count(sorted[i], "/") > strings.Count(sorted[j], "/") })
	for _, rel := range sorted {
		want := filepath.Join(root, filepath.FromSlash(rel))
		host, err := securejoin.SecureJoin(root, rel)
		if err != nil || host != want {
			continue
		}
		fi, err := os.Lstat(host)
		if err != nil || (fi.Mode().IsRegular() && fi.Size() != 0) {
			continue
		}
		_ = os.Remove(host) // a directory only if empty
	}
}
