package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"go.podman.io/storage/pkg/archive"
)

func unixTime(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

// tailWriter passes output on and keeps its last lines for error messages.
type tailWriter struct {
	mu   sync.Mutex
	w    io.Writer
	buf  bytes.Buffer
	tail []string
}

const tailLines = 5

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	for {
		line, err := t.buf.ReadString('\n')
		if err != nil {
			t.buf.WriteString(line)
			break
		}
		t.tail = append(t.tail, strings.TrimRight(line, "\n"))
		if len(t.tail) > tailLines {
			t.tail = t.tail[1:]
		}
	}
	return t.w.Write(p)
}

func (t *tailWriter) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string{}, t.tail...)
	if rest := strings.TrimSpace(t.buf.String()); rest != "" {
		out = append(out, rest)
	}
	return out
}

// isArchive reports whether a local file is a tar archive (compressed or
// not), which ADD unpacks.
func isArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	r, err := archive.DecompressStream(bufio.NewReader(f))
	if err != nil {
		return false
	}
	defer r.Close()
	_, err = tar.NewReader(r).Next()
	return err == nil
}

// addArchive runs ADD of a local archive: its entries, placed under dest,
// become the layer.
func (b *builder) addArchive(st *stageState, src source, dest, text, history string) (bool, error) {
	sum, err := checksum([]source{src})
	if err != nil {
		return false, err
	}
	key := keyOf(st.key, "ADD", text, sum)
	if b.useCache(st, key) {
		return true, nil
	}
	f, err := os.Open(src.host)
	if err != nil {
		return false, err
	}
	defer f.Close()
	dr, err := archive.DecompressStream(bufio.NewReader(f))
	if err != nil {
		return false, fmt.Errorf("ADD %s: %w", src.rel, err)
	}
	defer dr.Close()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(rebase(dr, pw, dest)) }()
	top, diffID, err := b.store.AddLayer(st.top, pr)
	pr.Close()
	var wh *whiteoutError
	if errors.As(err, &wh) {
		return false, fmt.Errorf("ADD %s: %w", src.rel, wh)
	}
	if err != nil {
		return false, fmt.Errorf("ADD %s: %w", src.rel, err)
	}
	b.layerStep(st, key, top, diffID, history)
	return false, nil
}

// whiteoutError is an archive entry, or a file to copy, named like a
// layer whiteout.
type whiteoutError struct {
	entry     string
	inArchive bool
}

func (e *whiteoutError) Error() string {
	if e.inArchive {
		return fmt.Sprintf("the archive holds a whiteout entry %q (%s): in a layer it would delete files of the image below, so tug refuses the archive; remove that entry from it", path.Base(e.entry), e.entry)
	}
	return fmt.Sprintf("%q is named like a layer whiteout (.wh.*): in a layer it would delete files of the image below, so tug refuses to copy it; rename it or leave it out", e.entry)
}

// rebase copies a tar stream, putting every entry under dest and refusing
// entries that climb out of it. It refuses whiteout entries (.wh.NAME,
// .wh..wh..opq) too: Docker writes them as plain files, which then act
// as whiteouts in the layer and delete the base image's files.
func rebase(r io.Reader, w io.Writer, dest string) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return fmt.Errorf("reading archive: %w", err)
		}
		if strings.HasPrefix(path.Base(path.Clean("/"+h.Name)), archive.WhiteoutPrefix) {
			return &whiteoutError{entry: strings.TrimPrefix(path.Clean("/"+h.Name), "/"), inArchive: true}
		}
		name := path.Clean("/" + h.Name)
		h.Name = strings.TrimPrefix(path.Join(dest, name), "/")
		if strings.HasPrefix(path.Base("/"+h.Name), archive.WhiteoutPrefix) {
			// The archive's root entry, named after the destination.
			return &whiteoutError{entry: dest}
		}
		if strings.HasSuffix(path.Clean("/"+h.Name), "/..") {
			return fmt.Errorf("archive entry %q leaves the destination", h.Name)
		}
		if h.Typeflag == tar.TypeLink {
			h.Linkname = strings.TrimPrefix(path.Join(dest, path.Clean("/"+h.Linkname)), "/")
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// clampTimes rewrites a layer tar so that no file is newer than t, as
// BuildKit's rewrite-timestamp does for SOURCE_DATE_EPOCH.
func clampTimes(r io.Reader, t time.Time) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		tr := tar.NewReader(r)
		tw := tar.NewWriter(pw)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				pw.CloseWithError(tw.Close())
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			if h.ModTime.After(t) {
				h.ModTime = t
			}
			h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
			h.Format = tar.FormatPAX
			if err := tw.WriteHeader(h); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := io.Copy(tw, tr); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return pr
}

// IsArchive reports whether a local file is a tar archive (compressed or
// not), as ADD unpacks it; `tug build -` takes one as the context.
func IsArchive(p string) bool { return isArchive(p) }
