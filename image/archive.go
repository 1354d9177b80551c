package image

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ArchiveFormat is a format of `tug save` and `tug load`.
type ArchiveFormat string

// The archive formats, named as Podman names them.
const (
	// DockerArchive is `docker save`'s tar: manifest.json, repositories,
	// the config and one tar per layer (plus Docker's legacy per-layer
	// directories, as Podman writes them).
	DockerArchive ArchiveFormat = "docker-archive"
	// OCIArchive is a tar of an OCI image layout.
	OCIArchive ArchiveFormat = "oci-archive"
	// OCIDir is an OCI image layout in a directory.
	OCIDir ArchiveFormat = "oci-dir"
)

// Annotations that name an image in an OCI layout's index.json: Podman
// writes the full name in ref.name; Docker (25 and later) and containerd
// write it in io.containerd.image.name and only the tag in ref.name.
const (
	annotationRefName        = "org.opencontainers.image.ref.name"
	annotationContainerdName = "io.containerd.image.name"
)

// maxMetadata bounds what load reads into memory at once: manifest.json,
// index.json, manifests and configs.
const maxMetadata = 32 << 20

// verifiedReader checks a blob as it is read: at EOF it fails unless the
// bytes hash to want and, when size >= 0, there are exactly size of them.
type verifiedReader struct {
	rc   io.ReadCloser
	h    hash.Hash
	want v1.Hash
	size int64
	n    int64
	what string // e.g. "blob blobs/sha256/abcd in x.tar"
}

func newVerifiedReader(rc io.ReadCloser, want v1.Hash, size int64, what string) (*verifiedReader, error) {
	if want.Algorithm != "sha256" {
		rc.Close()
		return nil, fmt.Errorf("%s has digest %s: only sha256 digests are supported", what, want)
	}
	return &verifiedReader{rc: rc, h: sha256.New(), want: want, size: size, what: what}, nil
}

func (v *verifiedReader) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.size >= 0 && v.n > v.size {
		return n, fmt.Errorf("%s is longer than the %d bytes its descriptor says", v.what, v.size)
	}
	if err == io.EOF {
		if v.size >= 0 && v.n != v.size {
			return n, fmt.Errorf("%s is truncated: it has %d of the %d bytes its descriptor says", v.what, v.n, v.size)
		}
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.Hex {
			return n, fmt.Errorf("%s does not match its digest %s (its content hashes to sha256:%s): the archive is corrupt", v.what, v.want, got)
		}
	}
	return n, err
}

func (v *verifiedReader) Close() error { return v.rc.Close() }

// tarFS serves the regular files of a tar archive on disk, read in place:
// indexing reads only the headers, and each file is a section of the
// archive. Symbolic and hard links resolve to the files they name.
type tarFS struct {
	f       *os.File
	entries map[string]*tarEntry
}

type tarEntry struct {
	hdr    *tar.Header
	offset int64
}

// indexTar reads the headers of the tar archive f. name is how errors call
// the archive.
func indexTar(f *os.File, name string) (*tarFS, error) {
	t := &tarFS{f: f, entries: map[string]*tarEntry{}}
	tr := tar.NewReader(f)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			if n == 0 {
				return nil, fmt.Errorf("%s is not an image archive: it is an empty tar archive", name)
			}
			return t, nil
		}
		if err != nil {
			if n == 0 {
				return nil, fmt.Errorf("%s is not an image archive: it is not a tar archive (nor gzip, bzip2, xz or zstd compressed one) or an OCI layout directory", name)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%s is truncated: the tar archive ends in the middle of an entry (after %d complete ones)", name, n)
			}
			return nil, fmt.Errorf("%s is corrupt: reading tar entry %d: %w", name, n+1, err)
		}
		// tar.Reader does not read ahead: the file's offset is where this
		// entry's data starts.
		off, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		p := cleanArchivePath(hdr.Name)
		if p == "" {
			continue
		}
		t.entries[p] = &tarEntry{hdr: hdr, offset: off}
	}
}

// cleanArchivePath turns a tar entry name or a path in an archive's
// metadata into an fs.FS name; "" when it leaves the archive.
func cleanArchivePath(p string) string {
	p = path.Clean(strings.TrimLeft(p, "/"))
	if p == "." || !fs.ValidPath(p) {
		return ""
	}
	return p
}

func (t *tarFS) Open(name string) (fs.File, error) {
	e, err := t.lookup(name, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &tarFile{SectionReader: io.NewSectionReader(t.f, e.offset, e.hdr.Size), fi: e.hdr.FileInfo()}, nil
}

func (t *tarFS) lookup(name string, depth int) (*tarEntry, error) {
	if depth > 16 {
		return nil, errors.New("too many levels of links")
	}
	e, ok := t.entries[name]
	if !ok {
		return nil, fs.ErrNotExist
	}
	switch e.hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		for k := range e.hdr.PAXRecords {
			if strings.HasPrefix(k, "GNU.sparse.") {
				return nil, errors.New("sparse files are not supported in image archives")
			}
		}
		return e, nil
	case tar.TypeSymlink:
		target := e.hdr.Linkname
		if !strings.HasPrefix(target, "/") {
			target = path.Join(path.Dir(name), target)
		}
		if target = cleanArchivePath(target); target == "" {
			return nil, fmt.Errorf("link to %q leaves the archive", e.hdr.Linkname)
		}
		return t.lookup(target, depth+1)
	case tar.TypeLink:
		target := cleanArchivePath(e.hdr.Linkname)
		if target == "" {
			return nil, fmt.Errorf("link to %q leaves the archive", e.hdr.Linkname)
		}
		return t.lookup(target, depth+1)
	case tar.TypeGNUSparse:
		return nil, errors.New("sparse files are not supported in image archives")
	}
	return nil, fmt.Errorf("not a regular file (tar type %q)", e.hdr.Typeflag)
}

type tarFile struct {
	*io.SectionReader
	fi fs.FileInfo
}

func (f *tarFile) Stat() (fs.FileInfo, error) { return f.fi, nil }
func (f *tarFile) Close() error               { return nil }

// readMetadata reads a small file of an archive: a manifest, a config, an
// index.
func readMetadata(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetadata+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(b) > maxMetadata {
		return nil, fmt.Errorf("%s is larger than %d MiB: it is no image metadata", name, maxMetadata>>20)
	}
	return b, nil
}
