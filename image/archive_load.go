package image

import (
	"bufio"
	"compress/bzip2"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	"go.podman.io/storage/pkg/archive"

	"github.com/tugcli/tug/remote"
)

// LoadOptions say what Load reads.
type LoadOptions struct {
	// Input is an archive file (docker-archive or oci-archive, plain or
	// compressed with gzip, bzip2, xz or zstd) or a directory holding an
	// OCI layout; "" reads Stdin.
	Input string
	Stdin io.Reader
	// Jobs is how many layers are verified at once (default 6).
	Jobs int
	// Progress, if set, gets the same events as a pull's, per layer.
	Progress func(PullEvent)
}

// Loaded is one image that Load stored.
type Loaded struct {
	ID string // 64 hex digits: the config digest
	// Names are the names it was loaded under, as the store records them;
	// none for an image the archive does not name.
	Names []string
}

// Load stores every image of an archive, the way Pull stores a pulled
// one. The format is detected: docker save's, an OCI layout in a tar or a
// directory, and a compressed tar. Standard input, and a compressed file,
// are first copied (decompressed) to a scratch file in the store; a plain
// archive file is read in place. Every blob is checked against its digest
// and every layer against its diff id, and no image is recorded unless
// all of them are whole: a corrupt archive loads nothing (layers already
// stored stay, as after a failed pull, unused by any image).
func (s *Store) Load(ctx context.Context, o LoadOptions) ([]Loaded, error) {
	if o.Jobs <= 0 {
		o.Jobs = 6
	}
	progress := o.Progress
	if progress == nil {
		progress = func(PullEvent) {}
	}
	s.removeStaleTemp()
	tmp, err := s.tempDir("load")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	fsys, what, closeArchive, err := openArchive(ctx, o, tmp)
	if err != nil {
		return nil, err
	}
	defer closeArchive()
	images, err := readArchive(ctx, fsys, what)
	if err != nil {
		return nil, err
	}

	prepared := make([]*prepared, len(images))
	for i, ai := range images {
		img, err := partial.CompressedToImage(ai)
		if err != nil {
			return nil, err
		}
		if prepared[i], err = prepare(img, ai.what, ai.rec); err != nil {
			return nil, err
		}
	}
	tops := make([]string, len(prepared))
	for i, p := range prepared {
		if existing, err := s.s.Image(p.cfgDigest.Hex); err == nil && s.layersPresent(existing.TopLayer) {
			for _, l := range p.layers {
				if d, err := l.Digest(); err == nil {
					progress(PullEvent{Layer: shortHex(d.Hex), Status: StatusExists})
				}
			}
			tops[i] = existing.TopLayer
			continue
		}
		if tops[i], err = s.storeLayers(ctx, p, o.Jobs, progress); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("loading %s: %w", what, ctx.Err())
			}
			return nil, err
		}
	}
	// Only now that every image's layers are stored and verified.
	out := make([]Loaded, len(prepared))
	for i, p := range prepared {
		id, err := s.createImage(p, tops[i])
		if layerGone(err) {
			id, err = s.storeImage(ctx, p, o.Jobs, progress)
		}
		if err != nil {
			return nil, err
		}
		out[i] = Loaded{ID: id, Names: p.rec.names}
	}
	return out, nil
}

// openArchive gives the archive as a file system: an OCI layout directory
// as it is, a plain tar file in place, and standard input or a compressed
// file through a scratch copy in tmp.
func openArchive(ctx context.Context, o LoadOptions, tmp string) (fs.FS, string, func(), error) {
	nop := func() {}
	what, src := o.Input, o.Stdin
	var in *os.File // the input file, closed here unless the result reads it
	defer func() {
		if in != nil {
			in.Close()
		}
	}()
	regular := false
	if o.Input != "" {
		fi, err := os.Stat(o.Input)
		if err != nil {
			return nil, "", nop, fmt.Errorf("reading archive: %w", err)
		}
		if fi.IsDir() {
			return os.DirFS(o.Input), what, nop, nil
		}
		if in, err = os.Open(o.Input); err != nil {
			return nil, "", nop, fmt.Errorf("reading archive: %w", err)
		}
		src, regular = in, fi.Mode().IsRegular()
	} else {
		what = "standard input"
		if src == nil {
			return nil, "", nop, errors.New("loading: no archive to read")
		}
	}
	br := bufio.NewReaderSize(src, 1<<16)
	magic, err := br.Peek(10)
	if len(magic) == 0 {
		if err == io.EOF {
			return nil, "", nop, fmt.Errorf("%s is empty: it holds no image archive", what)
		}
		return nil, "", nop, fmt.Errorf("reading %s: %w", what, err)
	}
	var file *os.File
	if comp := archive.DetectCompression(magic); comp == archive.Uncompressed && regular {
		if _, err := in.Seek(0, io.SeekStart); err != nil {
			return nil, "", nop, fmt.Errorf("reading %s: %w", what, err)
		}
		file, in = in, nil
	} else if file, err = scratchCopy(ctx, br, comp, filepath.Join(tmp, "archive.tar"), what); err != nil {
		return nil, "", nop, err
	}
	t, err := indexTar(file, what)
	if err != nil {
		file.Close()
		return nil, "", nop, err
	}
	return t, what, func() { file.Close() }, nil
}

// scratchCopy copies r to the file dst, decompressing it, and returns dst
// open at its start.
func scratchCopy(ctx context.Context, r io.Reader, comp archive.Compression, dst, what string) (*os.File, error) {
	if comp != archive.Uncompressed {
		dr, err := decompress(comp, r)
		if err != nil {
			return nil, fmt.Errorf("%s is corrupt: it starts as %s data, but: %w", what, compressionName(comp), err)
		}
		defer dr.Close()
		r = dr
	}
	f, err := os.Create(dst)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(f, &ctxReader{ctx: ctx, r: r})
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if comp != archive.Uncompressed {
			return nil, fmt.Errorf("%s is truncated or corrupt: decompressing it (%s): %w", what, compressionName(comp), err)
		}
		return nil, fmt.Errorf("copying %s to the scratch file %s: %w", what, dst, err)
	}
	return f, nil
}

func decompress(c archive.Compression, r io.Reader) (io.ReadCloser, error) {
	switch c {
	case archive.Gzip:
		return gzip.NewReader(r)
	case archive.Zstd:
		zr, err := zstd.NewReader(r)
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	case archive.Bzip2:
		return io.NopCloser(bzip2.NewReader(r)), nil
	}
	return archive.DecompressStream(r) // xz
}

func compressionName(c archive.Compression) string {
	switch c {
	case archive.Gzip:
		return "gzip"
	case archive.Zstd:
		return "zstd"
	case archive.Bzip2:
		return "bzip2"
	case archive.Xz:
		return "xz"
	}
	return "uncompressed"
}

// archiveImage is one image of an archive, as a go-containerregistry
// partial.CompressedImageCore whose layers read verified blobs from the
// archive.
type archiveImage struct {
	what      string // how errors name it: "NAME from ARCHIVE"
	rawCfg    []byte
	cfgDigest v1.Hash
	manifest  []byte
	mediaType types.MediaType
	layers    map[v1.Hash]*archiveLayer
	rec       record
}

func (a *archiveImage) RawConfigFile() ([]byte, error)      { return a.rawCfg, nil }
func (a *archiveImage) MediaType() (types.MediaType, error) { return a.mediaType, nil }
func (a *archiveImage) RawManifest() ([]byte, error)        { return a.manifest, nil }

func (a *archiveImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := a.layers[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("%s has no layer %s", a.what, h)
}

type archiveLayer struct {
	fsys      fs.FS
	path      string
	digest    v1.Hash
	size      int64
	mediaType types.MediaType
	what      string
}

func (l *archiveLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *archiveLayer) Size() (int64, error)                { return l.size, nil }
func (l *archiveLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

// Compressed reads the blob, failing at its end if it does not match its
// digest and size.
func (l *archiveLayer) Compressed() (io.ReadCloser, error) {
	f, err := l.fsys.Open(l.path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", l.what, err)
	}
	return newVerifiedReader(f, l.digest, l.size, l.what)
}

// readArchive finds the images of an archive: docker save's format when
// it has manifest.json (Docker 25 and later write an OCI layout with
// manifest.json, which names the tags fully), else an OCI layout.
func readArchive(ctx context.Context, fsys fs.FS, what string) ([]*archiveImage, error) {
	var images []*archiveImage
	var err error
	_, errManifest := fs.Stat(fsys, "manifest.json")
	_, errIndex := fs.Stat(fsys, "index.json")
	_, errLayout := fs.Stat(fsys, "oci-layout")
	switch {
	case errManifest == nil:
		images, err = readDockerArchive(ctx, fsys, what)
	case errIndex == nil && errLayout == nil:
		images, err = readOCILayout(fsys, what)
	default:
		return nil, fmt.Errorf("%s is not an image archive: it has neither manifest.json (docker save) nor index.json and oci-layout (an OCI layout)", what)
	}
	if err != nil {
		return nil, err
	}
	for _, ai := range images {
		ai.what = "image " + ai.cfgDigest.String()[:19] + " from " + what
		if len(ai.rec.names) > 0 {
			ai.what = ai.rec.names[0] + " from " + what
		}
		for _, l := range ai.layers {
			l.what = fmt.Sprintf("%s in %s", l.path, what)
		}
	}
	return images, nil
}

// hex64 finds a sha256 hex digest in a file name.
var hex64 = lazyRegexp(`[0-9a-f]{64}`)

// readDockerArchive reads docker save's manifest.json. The archive has no
// image manifests, so each image gets one made up, Docker schema 2, naming
// the layer files as they are: an uncompressed layer's digest is its diff
// id (checked as it is read), a compressed one's is hashed here.
func readDockerArchive(ctx context.Context, fsys fs.FS, what string) ([]*archiveImage, error) {
	raw, err := readMetadata(fsys, "manifest.json")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var entries []struct {
		Config       string
		RepoTags     []string
		Layers       []string
		LayerSources map[string]json.RawMessage
	}
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("%s is corrupt: its manifest.json is not docker save's: %w", what, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%s holds no images: its manifest.json is empty", what)
	}
	var out []*archiveImage
	for i, e := range entries {
		if len(e.LayerSources) > 0 {
			return nil, fmt.Errorf("image %d of %s has foreign layers (not in the archive), which tug cannot load", i+1, what)
		}
		cfgPath := cleanArchivePath(e.Config)
		if cfgPath == "" {
			return nil, fmt.Errorf("%s is corrupt: manifest.json names the config %q", what, e.Config)
		}
		cfg, err := readMetadata(fsys, cfgPath)
		if err != nil {
			return nil, missing(what, "the config "+cfgPath, err)
		}
		sum := sha256.Sum256(cfg)
		cfgDigest := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
		if named := hex64().FindString(path.Base(cfgPath)); named != "" && named != cfgDigest.Hex {
			return nil, fmt.Errorf("%s is corrupt: the config %s does not match its digest (its content hashes to %s)", what, cfgPath, cfgDigest)
		}
		var cf v1.ConfigFile
		if err := json.Unmarshal(cfg, &cf); err != nil {
			return nil, fmt.Errorf("%s is corrupt: the config %s is not an image config: %w", what, cfgPath, err)
		}
		if len(cf.RootFS.DiffIDs) != len(e.Layers) {
			return nil, fmt.Errorf("%s is corrupt: manifest.json lists %d layers for the config %s, which lists %d diff ids", what, len(e.Layers), cfgPath, len(cf.RootFS.DiffIDs))
		}
		ai := &archiveImage{rawCfg: cfg, cfgDigest: cfgDigest, mediaType: types.DockerManifestSchema2, layers: map[v1.Hash]*archiveLayer{}}
		for _, t := range e.RepoTags {
			n, err := archiveName(t, what)
			if err != nil {
				return nil, err
			}
			if n != "" && !slices.Contains(ai.rec.names, n) {
				ai.rec.names = append(ai.rec.names, n)
			}
		}
		m := v1.Manifest{
			SchemaVersion: 2,
			MediaType:     types.DockerManifestSchema2,
			Config:        v1.Descriptor{MediaType: types.DockerConfigJSON, Size: int64(len(cfg)), Digest: cfgDigest},
			Layers:        []v1.Descriptor{},
		}
		for j, lp := range e.Layers {
			p := cleanArchivePath(lp)
			if p == "" {
				return nil, fmt.Errorf("%s is corrupt: manifest.json names the layer %q", what, lp)
			}
			l, err := dockerArchiveLayer(ctx, fsys, p, cf.RootFS.DiffIDs[j], what)
			if err != nil {
				return nil, err
			}
			ai.layers[l.digest] = l
			m.Layers = append(m.Layers, v1.Descriptor{MediaType: l.mediaType, Size: l.size, Digest: l.digest})
		}
		if ai.manifest, err = json.Marshal(m); err != nil {
			return nil, err
		}
		ai.rec.manifest, ai.rec.manifestDigest = ai.manifest, digest.FromBytes(ai.manifest)
		out = append(out, ai)
	}
	return out, nil
}

func dockerArchiveLayer(ctx context.Context, fsys fs.FS, p string, diffID v1.Hash, what string) (*archiveLayer, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, missing(what, "the layer "+p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	l := &archiveLayer{fsys: fsys, path: p, size: fi.Size()}
	br := bufio.NewReaderSize(f, 1<<16)
	magic, _ := br.Peek(10)
	switch c := archive.DetectCompression(magic); c {
	case archive.Uncompressed:
		l.digest, l.mediaType = diffID, types.DockerUncompressedLayer
		return l, nil
	case archive.Gzip:
		l.mediaType = types.DockerLayer
	case archive.Zstd:
		l.mediaType = types.OCILayerZStd
	default:
		return nil, fmt.Errorf("the layer %s in %s is compressed with %s, which tug does not load", p, what, compressionName(c))
	}
	h := sha256.New()
	if _, err := io.Copy(h, &ctxReader{ctx: ctx, r: br}); err != nil {
		return nil, fmt.Errorf("reading the layer %s in %s: %w", p, what, err)
	}
	l.digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	return l, nil
}

// readOCILayout reads index.json: each entry is an image, or an image
// index of which the image for this host's platform is loaded. Entries
// for one manifest under several names give one image with each name.
func readOCILayout(fsys fs.FS, what string) ([]*archiveImage, error) {
	lb, err := readMetadata(fsys, "oci-layout")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var layout struct {
		Version string `json:"imageLayoutVersion"`
	}
	if json.Unmarshal(lb, &layout) != nil || layout.Version == "" {
		return nil, fmt.Errorf("%s is not an OCI layout: its oci-layout file says no imageLayoutVersion", what)
	}
	ib, err := readMetadata(fsys, "index.json")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(ib, &idx); err != nil {
		return nil, fmt.Errorf("%s is corrupt: its index.json is not an OCI image index: %w", what, err)
	}
	if len(idx.Manifests) == 0 {
		return nil, fmt.Errorf("%s holds no images: its index.json is empty", what)
	}
	var out []*archiveImage
	byManifest := map[v1.Hash]*archiveImage{}
	for i, d := range idx.Manifests {
		n, err := ociName(d.Annotations, what)
		if err != nil {
			return nil, err
		}
		desc := d
		var rawIndex []byte
		if d.MediaType.IsIndex() {
			if rawIndex, desc, err = pickPlatform(fsys, d, what); err != nil {
				return nil, err
			}
		}
		if !desc.MediaType.IsImage() {
			return nil, fmt.Errorf("entry %d of index.json in %s is %q, which is not an image", i+1, what, desc.MediaType)
		}
		ai := byManifest[desc.Digest]
		if ai == nil {
			if ai, err = ociImage(fsys, desc, what); err != nil {
				return nil, err
			}
			if rawIndex != nil {
				ai.rec.index, ai.rec.indexDigest = rawIndex, digest.Digest(d.Digest.String())
			}
			byManifest[desc.Digest] = ai
			out = append(out, ai)
		}
		if n != "" && !slices.Contains(ai.rec.names, n) {
			ai.rec.names = append(ai.rec.names, n)
		}
	}
	return out, nil
}

// ociName is the image name an index.json entry gives: containerd's
// annotation, else ref.name when it is a name (Podman) rather than only a
// tag (the OCI spec's example, Docker's); "" for none.
func ociName(annotations map[string]string, what string) (string, error) {
	if n := annotations[annotationContainerdName]; n != "" {
		return archiveName(n, what)
	}
	if n := annotations[annotationRefName]; strings.ContainsAny(n, "/:") {
		return archiveName(n, what)
	}
	return "", nil
}

// archiveName turns a name found in an archive into the name the store
// records: docker.io/library/busybox:latest for busybox. A digest
// reference names no tag: "".
func archiveName(n, what string) (string, error) {
	r, err := remote.ParseReference(n)
	if err != nil {
		return "", fmt.Errorf("%s names an image %q, which is not a valid image name: %w", what, n, err)
	}
	if _, ok := r.(name.Tag); !ok {
		return "", nil
	}
	return remote.Canonical(r), nil
}

// pickPlatform reads the image index d and picks the image for this host.
func pickPlatform(fsys fs.FS, d v1.Descriptor, what string) ([]byte, v1.Descriptor, error) {
	raw, err := readBlob(fsys, d, "image index", what)
	if err != nil {
		return nil, d, err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, d, fmt.Errorf("%s is corrupt: the image index %s is not valid: %w", what, d.Digest, err)
	}
	host := remote.HostPlatform()
	var have []string
	for _, m := range idx.Manifests {
		if !m.MediaType.IsImage() {
			continue
		}
		if m.Platform == nil {
			have = append(have, "unknown")
			continue
		}
		have = append(have, m.Platform.String())
		if _, err := fs.Stat(fsys, blobPath(m.Digest)); err == nil && m.Platform.Satisfies(host) {
			return raw, m, nil
		}
	}
	return nil, d, fmt.Errorf("the image index %s in %s has no image for %s (it has: %s)", d.Digest, what, host.String(), strings.Join(have, ", "))
}

// ociImage reads an image manifest and its config, verified, and checks
// that every layer blob is there with its size.
func ociImage(fsys fs.FS, d v1.Descriptor, what string) (*archiveImage, error) {
	raw, err := readBlob(fsys, d, "manifest", what)
	if err != nil {
		return nil, err
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s is corrupt: the manifest %s is not valid: %w", what, d.Digest, err)
	}
	if !m.Config.MediaType.IsConfig() {
		return nil, fmt.Errorf("the manifest %s in %s is not an image's: its config is %q", d.Digest, what, m.Config.MediaType)
	}
	cfg, err := readBlob(fsys, m.Config, "config", what)
	if err != nil {
		return nil, err
	}
	mt := d.MediaType
	if m.MediaType != "" {
		mt = m.MediaType
	}
	ai := &archiveImage{rawCfg: cfg, cfgDigest: m.Config.Digest, manifest: raw, mediaType: mt, layers: map[v1.Hash]*archiveLayer{}}
	ai.rec.manifest, ai.rec.manifestDigest = raw, digest.Digest(d.Digest.String())
	for _, l := range m.Layers {
		if !l.MediaType.IsLayer() {
			return nil, fmt.Errorf("the manifest %s in %s has a layer of type %q, which tug does not load", d.Digest, what, l.MediaType)
		}
		if !l.MediaType.IsDistributable() {
			return nil, fmt.Errorf("the manifest %s in %s has a foreign layer %s (not in the archive), which tug cannot load", d.Digest, what, l.Digest)
		}
		p, err := checkedBlobPath(l.Digest, what)
		if err != nil {
			return nil, err
		}
		fi, err := fs.Stat(fsys, p)
		if err != nil {
			return nil, missing(what, "the layer blob "+p, err)
		}
		if fi.Size() != l.Size {
			return nil, fmt.Errorf("%s is truncated or corrupt: the layer blob %s has %d bytes, its manifest says %d", what, p, fi.Size(), l.Size)
		}
		ai.layers[l.Digest] = &archiveLayer{fsys: fsys, path: p, digest: l.Digest, size: l.Size, mediaType: l.MediaType}
	}
	return ai, nil
}

// readBlob reads a small blob (a manifest, a config, an index) of an OCI
// layout and checks it against its descriptor.
func readBlob(fsys fs.FS, d v1.Descriptor, kind, what string) ([]byte, error) {
	p, err := checkedBlobPath(d.Digest, what)
	if err != nil {
		return nil, err
	}
	b, err := readMetadata(fsys, p)
	if err != nil {
		return nil, missing(what, "the "+kind+" "+p, err)
	}
	if int64(len(b)) != d.Size {
		return nil, fmt.Errorf("%s is truncated or corrupt: the %s %s has %d bytes, its descriptor says %d", what, kind, p, len(b), d.Size)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != d.Digest.Hex {
		return nil, fmt.Errorf("%s is corrupt: the %s %s does not match its digest (its content hashes to sha256:%s)", what, kind, p, hex.EncodeToString(sum[:]))
	}
	return b, nil
}

func checkedBlobPath(h v1.Hash, what string) (string, error) {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 || hex64().FindString(h.Hex) != h.Hex {
		return "", fmt.Errorf("%s names a blob by %q: only sha256 digests are supported", what, h.String())
	}
	return blobPath(h), nil
}

// missing explains a file an archive's metadata names but the archive
// lacks.
func missing(what, file string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s is truncated or incomplete: it lacks %s, which its metadata names", what, file)
	}
	return fmt.Errorf("%s: reading %s: %w", what, file, err)
}
