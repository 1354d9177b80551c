package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"

	"github.com/tugcli/tug/remote"
)

// SaveOptions say what Save writes and where.
type SaveOptions struct {
	// Format is the archive format; the zero value is DockerArchive.
	Format ArchiveFormat
	// Path is the file, or for OCIDir the directory, to write. It appears
	// whole or not at all: Save writes a hidden temporary one beside it and
	// renames it into place at the end. An existing file is replaced; a
	// directory for OCIDir must be new or empty.
	Path string
	// Writer receives the archive when Path is empty (tar formats only).
	Writer io.Writer
}

// Save writes the images that refs name into one archive. An image named
// by one of its tags is saved under that tag (under each, when several
// refs name it); one named by id is saved without a name, as docker save
// does. Layers are written uncompressed, as docker save writes them: each
// is read back from the store and checked against its diff id on the way,
// and the config keeps its bytes, so the image id survives a round trip in
// every format. Nothing is written before every ref is found.
func (s *Store) Save(ctx context.Context, refs []string, o SaveOptions) error {
	if o.Format == "" {
		o.Format = DockerArchive
	}
	switch o.Format {
	case DockerArchive, OCIArchive, OCIDir:
	default:
		return fmt.Errorf("unknown archive format %q: use docker-archive, oci-archive or oci-dir", o.Format)
	}
	if len(refs) == 0 {
		return fmt.Errorf("saving: name at least one image")
	}
	if o.Path == "" && (o.Format == OCIDir || o.Writer == nil) {
		return fmt.Errorf("saving as %s: name the directory to write", o.Format)
	}
	s.removeStaleTemp()
	tmp, err := s.tempDir("save")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// The store keeps its layers locked while one is read: copied straight
	// into a pipe, a layer would keep them locked until the reader takes
	// it, and the reader may be waiting for the store (tug save | tug
	// load). So each layer goes to a scratch file first, unless the
	// archive goes to a file.
	images, err := s.imagesToSave(refs, tmp, !toFiles(o))
	if err != nil {
		return err
	}
	write := func(sk sink) error {
		w := &archiveWriter{ctx: ctx, sink: sk, written: map[string]int64{}}
		if o.Format == DockerArchive {
			return w.dockerArchive(images)
		}
		return w.ociLayout(images)
	}
	switch {
	case o.Format == OCIDir:
		return writeDirAtomically(o.Path, func(dir string) error { return write(&dirSink{root: dir}) })
	case o.Path != "":
		return writeFileAtomically(o.Path, func(w io.Writer) error { return writeTar(w, write) })
	default:
		bw := bufio.NewWriterSize(o.Writer, 1<<20)
		if err := writeTar(bw, write); err != nil {
			return err
		}
		return bw.Flush()
	}
}

// saveImage is one image to write: its config, its layers and the names it
// is saved under.
type saveImage struct {
	id     string // the config digest's hex
	config []byte
	names  []string
	layers []saveLayer
}

// saveLayer is one layer to write; open gives its uncompressed tar and its
// length.
type saveLayer struct {
	diffID v1.Hash
	open   func() (io.ReadCloser, int64, error)
}

// imagesToSave looks up every ref before anything is written; refs naming
// one image give one entry with each tag. tmp holds layers whose length
// the store does not know, and with spoolAll every layer, while they are
// written.
func (s *Store) imagesToSave(refs []string, tmp string, spoolAll bool) ([]saveImage, error) {
	var out []saveImage
	at := map[string]int{}
	for _, ref := range refs {
		img, err := s.Lookup(ref)
		if err != nil {
			return nil, err
		}
		i, ok := at[img.ID]
		if !ok {
			si, err := s.saveImageOf(img, tmp, spoolAll)
			if err != nil {
				return nil, err
			}
			i = len(out)
			at[img.ID] = i
			out = append(out, si)
		}
		if n := savedName(ref, img); n != "" && !slices.Contains(out[i].names, n) {
			out[i].names = append(out[i].names, n)
		}
	}
	return out, nil
}

// savedName is the name an image is saved under when ref names it: the
// stored tag ref stands for, or "" when ref is an id or a digest.
func savedName(ref string, img *Image) string {
	r, err := remote.ParseReference(ref)
	if err != nil {
		return ""
	}
	if _, ok := r.(name.Tag); !ok {
		return ""
	}
	if c := remote.Canonical(r); slices.Contains(img.Names, c) {
		return c
	}
	// A short name that the store resolved by another rule (to
	// localhost/NAME, as Podman does for local builds) stands for the
	// stored name HOST/NAME:TAG.
	short := ref
	if i := strings.LastIndex(short, "/"); !strings.Contains(short[i+1:], ":") {
		short += ":" + name.DefaultTag
	}
	match := ""
	for _, n := range img.Names {
		if host, ok := strings.CutSuffix(n, "/"+short); ok && !strings.Contains(host, "/") {
			if match != "" {
				return "" // ambiguous
			}
			match = n
		}
	}
	return match
}

func (s *Store) saveImageOf(img *Image, tmp string, spoolAll bool) (saveImage, error) {
	short := shortHex(img.ID)
	raw, err := s.s.ImageBigData(img.ID, "sha256:"+img.ID)
	if err != nil {
		return saveImage{}, fmt.Errorf("reading config of image %s: %w", short, err)
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != img.ID {
		return saveImage{}, fmt.Errorf("the config of image %s in the store does not match the image id: the store is damaged", short)
	}
	diffIDs := img.Config.RootFS.DiffIDs
	var chain []*storage.Layer
	for id := img.TopLayer; id != ""; {
		l, err := s.s.Layer(id)
		if err != nil {
			return saveImage{}, fmt.Errorf("layer %s of image %s is missing from the store: %w", shortHex(id), short, err)
		}
		chain = append(chain, l)
		id = l.Parent
	}
	slices.Reverse(chain)
	if len(chain) != len(diffIDs) {
		return saveImage{}, fmt.Errorf("image %s has %d layers in the store, but its config lists %d", short, len(chain), len(diffIDs))
	}
	si := saveImage{id: img.ID, config: raw}
	for i, l := range chain {
		d := diffIDs[i]
		if d.Algorithm != "sha256" {
			return saveImage{}, fmt.Errorf("image %s: diff id %s is not a sha256 digest", short, d)
		}
		if l.UncompressedDigest != "" && l.UncompressedDigest.String() != d.String() {
			return saveImage{}, fmt.Errorf("layer %s of image %s holds %s, but the image config says %s: the store is damaged", shortHex(l.ID), short, l.UncompressedDigest, d)
		}
		id, size, known := l.ID, l.UncompressedSize, l.UncompressedDigest != "" && l.UncompressedSize > 0
		si.layers = append(si.layers, saveLayer{diffID: d, open: func() (io.ReadCloser, int64, error) {
			none := archive.Uncompressed
			rc, err := s.s.Diff("", id, &storage.DiffOptions{Compression: &none})
			if err != nil {
				return nil, 0, fmt.Errorf("reading layer %s from the store: %w", d, err)
			}
			if known && !spoolAll {
				return rc, size, nil
			}
			return spool(rc, tmp)
		}})
	}
	return si, nil
}

// spool copies rc to a file in dir and closes it: for a layer whose
// length the store did not record (an archive gives each file's length
// before its bytes), and to release the store's lock before the layer is
// written to a pipe. Closing the result removes the file.
func spool(rc io.ReadCloser, dir string) (io.ReadCloser, int64, error) {
	defer rc.Close()
	f, err := os.CreateTemp(dir, "layer-")
	if err != nil {
		return nil, 0, err
	}
	os.Remove(f.Name()) // the open file keeps it until closed
	n, err := io.Copy(f, rc)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("reading layer from the store: %w", err)
	}
	return f, n, nil
}

// toFiles reports whether the archive goes to a regular file or a
// directory, rather than a pipe, a device or a socket.
func toFiles(o SaveOptions) bool {
	if o.Path != "" {
		fi, err := os.Stat(o.Path)
		return err != nil || fi.Mode().IsRegular() || fi.IsDir()
	}
	f, ok := o.Writer.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode().IsRegular()
}

// sink receives the files of an archive: a tar stream or a directory.
type sink interface {
	dir(name string) error
	// file writes name from r, which must give exactly size bytes.
	file(name string, size int64, r io.Reader) error
	symlink(name, target string) error
}

// archiveWriter writes images through a sink, each blob once.
type archiveWriter struct {
	ctx     context.Context
	sink    sink
	written map[string]int64 // path → size
}

// layer writes l as name, unless it is already written, checking it
// against its diff id; it returns the layer's length.
func (w *archiveWriter) layer(name string, l saveLayer) (int64, error) {
	if size, ok := w.written[name]; ok {
		return size, nil
	}
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	rc, size, err := l.open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	h := sha256.New()
	if err := w.sink.file(name, size, io.TeeReader(&ctxReader{ctx: w.ctx, r: rc}, h)); err != nil {
		return 0, fmt.Errorf("writing layer %s: %w", l.diffID, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != l.diffID.Hex {
		return 0, fmt.Errorf("layer %s read back from the store hashes to sha256:%s, not to its diff id: the store does not give back the layer as it was stored", l.diffID, got)
	}
	w.written[name] = size
	return size, nil
}

// blob writes b as name, unless it is already written.
func (w *archiveWriter) blob(name string, b []byte) error {
	if _, ok := w.written[name]; ok {
		return nil
	}
	if err := w.sink.file(name, int64(len(b)), bytes.NewReader(b)); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	w.written[name] = int64(len(b))
	return nil
}

// dockerArchive writes docker save's format as Podman writes it: each
// layer as DIFFID.tar, the config as ID.json, manifest.json naming them
// with the image's tags, and for loaders older than manifest.json, a
// directory per layer (VERSION, json, layer.tar linking to DIFFID.tar)
// and repositories.
func (w *archiveWriter) dockerArchive(images []saveImage) error {
	type entry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifest []entry
	repositories := map[string]map[string]string{}
	for _, im := range images {
		e := entry{Config: im.id + ".json", RepoTags: im.names, Layers: []string{}}
		parent := ""
		for i, l := range im.layers {
			file := l.diffID.Hex + ".tar"
			if _, err := w.layer(file, l); err != nil {
				return err
			}
			e.Layers = append(e.Layers, file)
			var cfg []byte
			if i == len(im.layers)-1 {
				cfg = im.config
			}
			id, err := w.legacyLayer(parent, file, l.diffID, cfg)
			if err != nil {
				return err
			}
			parent = id
		}
		if err := w.blob(e.Config, im.config); err != nil {
			return err
		}
		manifest = append(manifest, e)
		for _, n := range im.names {
			repo, tag, _ := splitName(n)
			if parent == "" || tag == "" {
				continue
			}
			if repositories[repo] == nil {
				repositories[repo] = map[string]string{}
			}
			repositories[repo][tag] = parent
		}
	}
	m, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	if err := w.blob("manifest.json", m); err != nil {
		return err
	}
	r, err := json.Marshal(repositories)
	if err != nil {
		return err
	}
	return w.blob("repositories", r)
}

// legacyLayer writes Docker's pre-1.10 directory for a layer and returns
// its id. The id chains the parent's, and for an image's top layer (cfg
// set) the config too, whose runtime fields that layer's json repeats.
func (w *archiveWriter) legacyLayer(parent, file string, diffID v1.Hash, cfg []byte) (string, error) {
	seed := parent + "\n" + diffID.String()
	layerJSON := map[string]json.RawMessage{}
	if cfg != nil {
		seed += "\n" + string(cfg)
		var all map[string]json.RawMessage
		if err := json.Unmarshal(cfg, &all); err != nil {
			return "", fmt.Errorf("decoding image config: %w", err)
		}
		for _, k := range []string{"architecture", "config", "container", "container_config", "created", "docker_version", "os"} {
			if v, ok := all[k]; ok {
				layerJSON[k] = v
			}
		}
	}
	sum := sha256.Sum256([]byte(seed))
	id := hex.EncodeToString(sum[:])
	if _, ok := w.written[id]; ok {
		return id, nil
	}
	layerJSON["id"], _ = json.Marshal(id)
	if parent != "" {
		layerJSON["parent"], _ = json.Marshal(parent)
	}
	b, err := json.Marshal(layerJSON)
	if err != nil {
		return "", err
	}
	if err := w.sink.dir(id); err != nil {
		return "", err
	}
	w.written[id] = 0
	if err := w.blob(id+"/VERSION", []byte("1.0")); err != nil {
		return "", err
	}
	if err := w.blob(id+"/json", b); err != nil {
		return "", err
	}
	return id, w.sink.symlink(id+"/layer.tar", "../"+file)
}

// ociLayout writes an OCI image layout: each image's config as it is
// stored, its layers uncompressed, a manifest, and an entry in index.json
// per name, named with org.opencontainers.image.ref.name as Podman names
// them (the full name); an image saved without a name gets one entry
// without it.
func (w *archiveWriter) ociLayout(images []saveImage) error {
	if err := w.blob("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := w.sink.dir("blobs"); err != nil {
		return err
	}
	if err := w.sink.dir("blobs/sha256"); err != nil {
		return err
	}
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	for _, im := range images {
		m := v1.Manifest{
			SchemaVersion: 2,
			MediaType:     types.OCIManifestSchema1,
			Config: v1.Descriptor{
				MediaType: types.OCIConfigJSON,
				Size:      int64(len(im.config)),
				Digest:    v1.Hash{Algorithm: "sha256", Hex: im.id},
			},
			Layers: []v1.Descriptor{},
		}
		for _, l := range im.layers {
			size, err := w.layer(blobPath(l.diffID), l)
			if err != nil {
				return err
			}
			m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: size, Digest: l.diffID})
		}
		if err := w.blob(blobPath(m.Config.Digest), im.config); err != nil {
			return err
		}
		raw, err := json.Marshal(m)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(raw)
		desc := v1.Descriptor{MediaType: m.MediaType, Size: int64(len(raw)), Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}}
		if err := w.blob(blobPath(desc.Digest), raw); err != nil {
			return err
		}
		if len(im.names) == 0 {
			index.Manifests = append(index.Manifests, desc)
		}
		for _, n := range im.names {
			d := desc
			d.Annotations = map[string]string{annotationRefName: n}
			index.Manifests = append(index.Manifests, d)
		}
	}
	raw, err := json.Marshal(index)
	if err != nil {
		return err
	}
	return w.blob("index.json", raw)
}

func blobPath(h v1.Hash) string {
	return "blobs/" + h.Algorithm + "/" + h.Hex
}

// writeTar runs write with a sink that makes a tar stream on w.
func writeTar(w io.Writer, write func(sink) error) error {
	tw := tar.NewWriter(w)
	if err := write(&tarSink{tw: tw}); err != nil {
		return err
	}
	return tw.Close()
}

// tarSink writes entries owned by root with fixed times, so that saving
// the same images twice gives the same bytes.
type tarSink struct{ tw *tar.Writer }

func (t *tarSink) header(h *tar.Header) error {
	h.ModTime = time.Unix(0, 0)
	return t.tw.WriteHeader(h)
}

func (t *tarSink) dir(name string) error {
	return t.header(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755})
}

func (t *tarSink) file(name string, size int64, r io.Reader) error {
	if err := t.header(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644}); err != nil {
		return err
	}
	n, err := io.Copy(t.tw, r)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s: got %d bytes, expected %d", name, n, size)
	}
	return nil
}

func (t *tarSink) symlink(name, target string) error {
	return t.header(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777})
}

// dirSink writes files under root.
type dirSink struct{ root string }

func (d *dirSink) dir(name string) error {
	return os.Mkdir(filepath.Join(d.root, filepath.FromSlash(name)), 0o755)
}

func (d *dirSink) file(name string, size int64, r io.Reader) error {
	f, err := os.OpenFile(filepath.Join(d.root, filepath.FromSlash(name)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("%s: got %d bytes, expected %d", name, n, size)
	}
	return err
}

func (d *dirSink) symlink(name, target string) error {
	return os.Symlink(target, filepath.Join(d.root, filepath.FromSlash(name)))
}

// writeFileAtomically writes p through a hidden temporary file beside it,
// renamed over p only when write succeeded; a failed save leaves nothing.
// A p that exists and is no regular file (a device such as /dev/null, a
// pipe) is written in place: renaming over it would replace it.
func writeFileAtomically(p string, write func(io.Writer) error) (err error) {
	if fi, err := os.Stat(p); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("cannot write the archive to %s: it is a directory", p)
		}
		if !fi.Mode().IsRegular() {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				return err
			}
			bw := bufio.NewWriterSize(f, 1<<20)
			err = write(bw)
			if err == nil {
				err = bw.Flush()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		}
	}
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tug-save-*")
	if err != nil {
		return fmt.Errorf("creating %s: %w", p, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	// os.CreateTemp makes the file 0600; give it the mode os.Create would.
	if err := f.Chmod(0o666 &^ umask()); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// writeDirAtomically writes the directory p through a hidden temporary
// one beside it, renamed to p only when write succeeded. p must not exist
// or be an empty directory.
func writeDirAtomically(p string, write func(dir string) error) (err error) {
	if fi, err := os.Stat(p); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("cannot write an OCI layout to %s: it exists and is not a directory", p)
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return err
		}
		if len(entries) > 0 {
			return fmt.Errorf("cannot write an OCI layout to %s: the directory is not empty (remove it or name a new one)", p)
		}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(p), "."+filepath.Base(p)+".tug-save-*")
	if err != nil {
		return fmt.Errorf("creating %s: %w", p, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o777&^umask()); err != nil {
		return err
	}
	if err := write(tmp); err != nil {
		return err
	}
	// os.Rename refuses to replace a directory, even an empty one.
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// umask reads the process's umask without changing it (Linux 4.7 and
// later show it in /proc/self/status); 022 when it cannot.
func umask() os.FileMode {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return os.FileMode(m)
				}
			}
		}
	}
	return 0o022
}
