package build

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/patternmatcher"
	"go.podman.io/storage/pkg/archive"
)

// Context is the build context: a directory, with .dockerignore applied.
// Files are read only when a COPY or ADD uses them.
type Context struct {
	Dir     string
	ignored *patternmatcher.PatternMatcher
}

// OpenContext opens dir as a build context. The ignore file is
// DOCKERFILE.dockerignore beside a named Dockerfile when it exists, else
// .dockerignore at the context's root.
func OpenContext(dir, dockerfile string) (*Context, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("build context %s is not a directory", dir)
	}
	c := &Context{Dir: abs}
	ignoreFile := filepath.Join(abs, ".dockerignore")
	if dockerfile != "" && dockerfile != "-" {
		if _, err := os.Stat(dockerfile + ".dockerignore"); err == nil {
			ignoreFile = dockerfile + ".dockerignore"
		}
	}
	patterns, err := readIgnoreFile(ignoreFile)
	if err != nil {
		return nil, err
	}
	if len(patterns) > 0 {
		if c.ignored, err = patternmatcher.New(patterns); err != nil {
			return nil, fmt.Errorf("%s: %w", ignoreFile, err)
		}
	}
	return c, nil
}

func readIgnoreFile(p string) ([]string, error) {
	f, err := os.Open(p)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// Patterns are relative to the context root; a leading / means the same.
		neg := strings.HasPrefix(line, "!")
		line = strings.TrimPrefix(line, "!")
		line = filepath.Clean(strings.TrimPrefix(filepath.ToSlash(line), "/"))
		if neg {
			line = "!" + line
		}
		out = append(out, line)
	}
	return out, sc.Err()
}

// excluded reports whether rel (slash-separated, relative to the root)
// is left out by .dockerignore.
func (c *Context) excluded(rel string) bool {
	if c.ignored == nil || rel == "." {
		return false
	}
	m, err := c.ignored.MatchesOrParentMatches(rel)
	return err == nil && m
}

// source is one file to copy: its path on the host and where it goes,
// relative to the copy's destination.
type source struct {
	host string // path on the host (or in a mounted layer)
	rel  string // path under the destination, slash-separated; "" for the destination itself
	info fs.FileInfo
}

// resolve expands COPY's source patterns under root (the context, or a
// mounted stage) into files, refusing anything outside root. A directory
// source contributes its contents. honourIgnore applies .dockerignore.
func resolve(root string, patterns []string, ignore func(string) bool) ([]source, bool, error) {
	var out []source
	multi := len(patterns) > 1
	for _, pat := range patterns {
		clean := path.Clean("/" + filepath.ToSlash(pat))[1:] // relative, no .. above root
		if clean == "" {
			clean = "."
		}
		matches := []string{clean}
		if strings.ContainsAny(clean, "*?[") {
			m, err := filepath.Glob(filepath.Join(root, clean))
			if err != nil {
				return nil, false, fmt.Errorf("bad pattern %q: %w", pat, err)
			}
			matches = nil
			for _, x := range m {
				r, _ := filepath.Rel(root, x)
				if ignore == nil || !ignore(filepath.ToSlash(r)) {
					matches = append(matches, filepath.ToSlash(r))
				}
			}
			if len(matches) == 0 {
				return nil, false, fmt.Errorf("COPY failed: no source files were specified by %q", pat)
			}
			if len(matches) > 1 {
				multi = true
			}
		}
		for _, rel := range matches {
			host, err := inside(root, rel)
			if err != nil {
				return nil, false, err
			}
			fi, err := os.Lstat(host)
			if err != nil || (ignore != nil && ignore(rel)) {
				why := "not found in the build context"
				if err == nil {
					why = "excluded by .dockerignore"
				}
				return nil, false, fmt.Errorf("COPY failed: %q: %s", pat, why)
			}
			if !fi.IsDir() {
				out = append(out, source{host: host, rel: path.Base(rel), info: fi})
				continue
			}
			// A directory: its contents, not the directory itself.
			err = filepath.WalkDir(host, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				sub, _ := filepath.Rel(host, p)
				ctxRel, _ := filepath.Rel(root, p)
				if sub == "." {
					return nil
				}
				if ignore != nil && ignore(filepath.ToSlash(ctxRel)) {
					if d.IsDir() {
						return filepath.SkipDir
					}
					return nil
				}
				info, err := d.Info()
				if err != nil {
					return err
				}
				out = append(out, source{host: p, rel: filepath.ToSlash(sub), info: info})
				return nil
			})
			if err != nil {
				return nil, false, fmt.Errorf("reading %s: %w", pat, err)
			}
			multi = true // a directory's contents go under the destination
		}
	}
	return out, multi, nil
}

// inside joins rel to root and refuses a path that leaves root through
// "..": COPY's sources stay in the context.
func inside(root, rel string) (string, error) {
	p := filepath.Join(root, rel)
	if p != root && !strings.HasPrefix(p, root+string(filepath.Separator)) {
		return "", fmt.Errorf("forbidden path outside the build context: %s", rel)
	}
	if p == root {
		return p, nil
	}
	// Symlinks on the way must not lead out either.
	real, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err == nil {
		rootReal, _ := filepath.EvalSymlinks(root)
		if real != rootReal && !strings.HasPrefix(real, rootReal+string(filepath.Separator)) {
			return "", fmt.Errorf("forbidden path outside the build context: %s (through a symlink)", rel)
		}
	}
	return p, nil
}

// copyOptions are COPY's per-file choices.
type copyOptions struct {
	dest     string // absolute destination in the image
	destDir  bool   // sources go under dest; else the single file becomes dest
	uid, gid int
	chmod    *fs.FileMode
	mtime    func(fs.FileInfo) int64
}

// checksum is the cache key of a set of sources: names, modes, owners,
// link targets and contents.
func checksum(srcs []source) (string, error) {
	h := sha256.New()
	sorted := append([]source{}, srcs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].rel < sorted[j].rel })
	for _, s := range sorted {
		fmt.Fprintf(h, "%s\x00%o\x00%d\x00", s.rel, s.info.Mode(), s.info.Size())
		switch {
		case s.info.Mode()&fs.ModeSymlink != 0:
			t, _ := os.Readlink(s.host)
			fmt.Fprintf(h, "%s\x00", t)
		case s.info.Mode().IsRegular():
			f, err := os.Open(s.host)
			if err != nil {
				return "", err
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return "", err
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeTar writes srcs as a layer tar placing them per o.
func writeTar(w io.Writer, srcs []source, o copyOptions) error {
	tw := tar.NewWriter(w)
	for _, s := range srcs {
		name := o.dest
		if o.destDir {
			name = path.Join(o.dest, s.rel)
		}
		if strings.HasPrefix(path.Base(name), archive.WhiteoutPrefix) {
			return &whiteoutError{entry: s.rel}
		}
		link := ""
		if s.info.Mode()&fs.ModeSymlink != 0 {
			t, err := os.Readlink(s.host)
			if err != nil {
				return err
			}
			link = t
		}
		hdr, err := tar.FileInfoHeader(s.info, link)
		if err != nil {
			return fmt.Errorf("%s: %w", s.host, err)
		}
		hdr.Name = strings.TrimPrefix(name, "/")
		if s.info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = o.uid, o.gid, "", ""
		hdr.Format = tar.FormatPAX
		if o.chmod != nil {
			hdr.Mode = int64(*o.chmod)
		}
		if o.mtime != nil {
			hdr.ModTime = unixTime(o.mtime(s.info))
		}
		hdr.AccessTime, hdr.ChangeTime = hdr.ModTime, hdr.ModTime
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if s.info.Mode().IsRegular() {
			f, err := os.Open(s.host)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("copying %s: %w", s.host, err)
			}
		}
	}
	return tw.Close()
}
