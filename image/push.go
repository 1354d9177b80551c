package image

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	digest "github.com/opencontainers/go-digest"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
	"golang.org/x/sync/errgroup"

	"github.com/tugcli/tug/remote"
)

// Push progress, per layer, in Docker's words (Docker names a layer being
// pushed by its diff id). StatusCompressing is tug's: Docker compresses
// while it uploads, tug first, into its push cache.
const (
	StatusPushWaiting = "Waiting"
	StatusCompressing = "Compressing"
	StatusPushing     = "Pushing"
	StatusPushed      = "Pushed"
	StatusLayerExists = "Layer already exists"
	StatusMountedFrom = "Mounted from" // followed by the repository
)

// PushEvent reports progress on one layer.
type PushEvent struct {
	Layer   string // the first 12 hex digits of the diff id
	Status  string
	Current int64
	Total   int64
	// Final is set on the layer's last event.
	Final bool
}

// Manifest formats and layer compressions for PushOptions.
const (
	FormatOCI    = "oci"
	FormatDocker = "docker"

	CompressionGzip = "gzip"
	CompressionZstd = "zstd"
)

// PushOptions tune a push.
type PushOptions struct {
	Remote remote.Options
	// Format is the manifest format: FormatOCI, FormatDocker, or "" for
	// the one the image was pulled with (OCI for an image built here), as
	// Podman does; OCI when Compression is zstd.
	Format string
	// Compression is CompressionGzip (the default) or CompressionZstd.
	Compression string
	// Jobs is how many layers are compressed and uploaded at once
	// (default 4).
	Jobs int
	// Progress, if set, is called from several goroutines.
	Progress func(PushEvent)
}

// PushResult is what a push did.
type PushResult struct {
	// Name is the canonical destination, e.g. 127.0.0.1:5000/app:v1.
	Name string
	// Tag is the destination's tag.
	Tag string
	// Digest is the manifest's digest, Size its length.
	Digest string
	Size   int64
	// RecordErr is set when the push worked but its digest could not be
	// recorded on the stored image.
	RecordErr error
}

// ErrNeedsDestination is returned when an image named by id is pushed
// without a destination.
var ErrNeedsDestination = errors.New("an image given by id needs a destination")

// Push uploads the stored image src to dest ("" for src's own name).
//
// Each layer is compressed once, in parallel (pgzip or zstd), into the push
// cache while its digest is computed and its diff id checked against the
// config; a later push of the layer takes it from there. A pulled layer
// that the registry has, or can mount from the repository it was pulled
// from, is not compressed at all: it goes as the blob it was pulled as.
// Layers upload in parallel, each as soon as it is compressed: the registry
// is asked first and a blob it has is skipped, a blob pushed before to
// another repository of the same registry is mounted from there. The
// manifest goes last, so a killed push leaves no tag; pushing again sends
// only the blobs that did not make it. The manifest digest is then
// recorded on the image (a RepoDigest, as for a pull).
func (s *Store) Push(ctx context.Context, src, dest string, o PushOptions) (*PushResult, error) {
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	progress := o.Progress
	if progress == nil {
		progress = func(PushEvent) {}
	}
	if err := checkPushOptions(o.Format, o.Compression); err != nil {
		return nil, err
	}
	img, err := s.Lookup(src)
	if err != nil {
		return nil, err
	}
	if dest == "" {
		if dest, err = ownName(src, img); err != nil {
			return nil, err
		}
	}
	mt := pushMediaTypes(o.Format, o.Compression, s.storedManifestType(img.ID))
	client := remote.NewClient(o.Remote)
	ref, err := client.Reference(dest)
	if err != nil {
		return nil, err
	}
	tag, ok := ref.(name.Tag)
	if !ok {
		return nil, fmt.Errorf("%s: cannot push to a digest reference: name a tag", dest)
	}
	rawCfg, err := s.s.ImageBigData(img.ID, "sha256:"+img.ID)
	if err != nil {
		return nil, fmt.Errorf("reading config of image %s: %w", shortHex(img.ID), err)
	}
	diffIDs := img.Config.RootFS.DiffIDs
	layerIDs, err := s.layerChain(img.TopLayer)
	if err != nil {
		return nil, err
	}
	if len(diffIDs) != len(layerIDs) {
		return nil, fmt.Errorf("image %s is inconsistent: the store has %d layers for it, its config lists %d", shortHex(img.ID), len(layerIDs), len(diffIDs))
	}
	s.removeStaleTemp()
	cache, err := s.pushCache()
	if err != nil {
		return nil, err
	}
	tmp, err := s.tempDir("push")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	pusher, err := client.NewPusher(ctx, tag)
	if err != nil {
		return nil, err
	}
	registry, repo := tag.Context().RegistryStr(), tag.Context().RepositoryStr()

	// Repositories of this registry the image was pulled from: their blobs
	// can be mounted.
	var pulledFrom []string
	for _, n := range img.Names {
		if r, err := remote.ParseReference(n); err == nil && r.Context().RegistryStr() == registry && r.Context().RepositoryStr() != repo {
			pulledFrom = append(pulledFrom, r.Context().RepositoryStr())
		}
	}
	// One task per distinct layer: an image may hold the same layer twice.
	blobs := make([]*cachedBlob, len(diffIDs))
	first := map[v1.Hash]int{}
	cfgFrom := "" // the config goes where the layers went before
	if len(pulledFrom) > 0 {
		cfgFrom = pulledFrom[0]
	}
	for i, d := range diffIDs {
		if _, ok := first[d]; ok {
			continue
		}
		first[d] = i
		blobs[i] = cache.get(d, mt.compression)
		if blobs[i] != nil {
			if from := blobs[i].mountFrom(registry, repo); from != "" {
				cfgFrom = from
			}
		}
		progress(PushEvent{Layer: shortHex(d.Hex), Status: StatusPushWaiting})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		_, err := pusher.Upload(gctx, static.NewLayer(rawCfg, mt.config), cfgFrom)
		return err
	})
	sem := make(chan struct{}, o.Jobs)
	for i, d := range diffIDs {
		if first[d] != i {
			continue
		}
		g.Go(func() error {
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-gctx.Done():
				return nil
			}
			short := shortHex(d.Hex)
			if blobs[i] == nil {
				// A pulled layer the registry has, or can mount, goes as it came.
				b, status, err := s.reuseLayer(gctx, pusher, layerIDs[i], mt.compression, pulledFrom)
				if err != nil {
					return fmt.Errorf("layer %s: %w", d, err)
				}
				if b != nil {
					blobs[i] = b
					progress(PushEvent{Layer: short, Status: status, Final: true})
					return nil
				}
				b, err = s.compressLayer(gctx, layerIDs[i], d, mt.compression, filepath.Join(tmp, d.Hex), cache, func(n, total int64) {
					progress(PushEvent{Layer: short, Status: StatusCompressing, Current: n, Total: total})
				})
				if err != nil {
					return fmt.Errorf("compressing layer %s: %w", d, err)
				}
				blobs[i] = b
			}
			return uploadLayer(gctx, pusher, blobs[i], mt.layer, d, registry, repo, func(e PushEvent) {
				e.Layer = short
				progress(e)
			})
		})
	}
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("pushing %s: %w", dest, ctx.Err())
		}
		return nil, fmt.Errorf("pushing %s: %w", dest, err)
	}

	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     mt.manifest,
		Config:        v1.Descriptor{MediaType: mt.config, Size: int64(len(rawCfg)), Digest: v1.Hash{Algorithm: "sha256", Hex: img.ID}},
		Layers:        []v1.Descriptor{}, // [] rather than null for an image without layers
	}
	for _, d := range diffIDs {
		b := blobs[first[d]]
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: mt.layer, Size: b.Size, Digest: b.Digest})
	}
	rawManifest, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	md, err := pusher.PutManifest(ctx, rawManifest, mt.manifest)
	if err != nil {
		return nil, fmt.Errorf("pushing %s: %w", dest, err)
	}
	res := &PushResult{Name: remote.Canonical(tag), Tag: tag.TagStr(), Digest: md.String(), Size: int64(len(rawManifest))}
	res.RecordErr = s.recordPush(img.ID, rawManifest, md)
	cache.prune(s.haveDiffID())
	return res, nil
}

// reuseLayer gets a pulled layer into the repository as the registry it
// came from sent it, without compressing it, when the repository has that
// blob or can mount it from one of the repositories in from. It returns a
// nil blob when it cannot.
func (s *Store) reuseLayer(ctx context.Context, p *remote.Pusher, layerID, compression string, from []string) (*cachedBlob, string, error) {
	l, err := s.s.Layer(layerID)
	if err != nil || l.CompressedDigest.Algorithm() != digest.SHA256 || l.CompressedSize <= 0 {
		return nil, "", nil
	}
	switch {
	case compression == CompressionGzip && l.CompressionType == archive.Gzip:
	case compression == CompressionZstd && l.CompressionType == archive.Zstd:
	default:
		return nil, "", nil
	}
	d := v1.Hash{Algorithm: "sha256", Hex: l.CompressedDigest.Encoded()}
	src := ""
	if len(from) > 0 {
		src = from[0]
	}
	outcome, ok, err := p.Reuse(ctx, d, src)
	if err != nil || !ok {
		return nil, "", err
	}
	status := StatusLayerExists
	if outcome == remote.BlobMounted {
		status = StatusMountedFrom + " " + src
	}
	return &cachedBlob{Digest: d, Size: l.CompressedSize}, status, nil
}

// checkPushOptions rejects formats and compressions tug does not write.
func checkPushOptions(format, compression string) error {
	switch format {
	case "", FormatOCI, FormatDocker:
	default:
		return fmt.Errorf("unknown manifest format %q: use oci or docker", format)
	}
	switch compression {
	case "", CompressionGzip:
	case CompressionZstd:
		if format == FormatDocker {
			return errors.New("zstd compression needs the oci format: Docker's manifest has no zstd layers")
		}
	default:
		return fmt.Errorf("unknown compression %q: use gzip or zstd", compression)
	}
	return nil
}

// pushTypes are the media types and compression of one push.
type pushTypes struct {
	manifest, config, layer types.MediaType
	compression             string
}

func pushMediaTypes(format, compression string, stored types.MediaType) pushTypes {
	if compression == "" {
		compression = CompressionGzip
	}
	if format == "" {
		format = FormatOCI
		if stored == types.DockerManifestSchema2 && compression == CompressionGzip {
			format = FormatDocker
		}
	}
	if format == FormatDocker {
		return pushTypes{types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer, compression}
	}
	layer := types.OCILayer
	if compression == CompressionZstd {
		layer = types.OCILayerZStd
	}
	return pushTypes{types.OCIManifestSchema1, types.OCIConfigJSON, layer, compression}
}

// storedManifestType is the media type of the manifest the image was
// pulled with, "" if none.
func (s *Store) storedManifestType(id string) types.MediaType {
	raw, _, err := s.Manifest(id)
	if err != nil {
		return ""
	}
	var mf struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	if json.Unmarshal(raw, &mf) != nil {
		return ""
	}
	return mf.MediaType
}

// ownName is the destination of `tug push IMAGE`: the name IMAGE was
// looked up by, which must be one of the image's names.
func ownName(src string, img *Image) (string, error) {
	if r, err := remote.ParseReference(src); err == nil {
		if c := remote.Canonical(r); slices.Contains(img.Names, c) {
			if _, ok := r.(name.Tag); ok {
				return c, nil
			}
		}
	}
	return "", fmt.Errorf("%s: %w: tug push %s REGISTRY/REPOSITORY[:TAG]", src, ErrNeedsDestination, src)
}

// layerChain lists the store's layers of an image, bottom first.
func (s *Store) layerChain(top string) ([]string, error) {
	var ids []string
	for id := top; id != ""; {
		l, err := s.s.Layer(id)
		if err != nil {
			return nil, fmt.Errorf("layer %s of the image is missing from the store: %w", shortHex(id), err)
		}
		ids = append(ids, id)
		id = l.Parent
	}
	slices.Reverse(ids)
	return ids, nil
}

// haveDiffID reports whether the store has a layer with a diff id.
func (s *Store) haveDiffID() func(digest.Digest) bool {
	layers, err := s.s.Layers()
	if err != nil {
		return func(digest.Digest) bool { return true }
	}
	have := map[digest.Digest]bool{}
	for _, l := range layers {
		have[l.UncompressedDigest] = true
	}
	return func(d digest.Digest) bool { return have[d] }
}

// compressLayer reads a layer back from the store, compresses it to path
// while hashing both forms, checks the diff id, and moves the result into
// the cache.
func (s *Store) compressLayer(ctx context.Context, layerID string, diffID v1.Hash, compression, path string, cache *pushCache, seen func(n, total int64)) (*cachedBlob, error) {
	var total int64
	if l, err := s.s.Layer(layerID); err == nil && l.UncompressedSize > 0 {
		total = l.UncompressedSize
	}
	none := archive.Uncompressed
	rc, err := s.s.Diff("", layerID, &storage.DiffOptions{Compression: &none})
	if err != nil {
		return nil, fmt.Errorf("reading layer %s from the store: %w", diffID, err)
	}
	defer rc.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer os.Remove(path) // gone by then when all went well
	defer f.Close()

	compressedHash := sha256.New()
	buf := bufio.NewWriterSize(f, 1<<20)
	counter := &counting{}
	out := io.MultiWriter(buf, compressedHash, counter)
	zw, err := newCompressor(out, compression)
	if err != nil {
		return nil, err
	}
	uncompressedHash := sha256.New()
	in := io.TeeReader(&ctxReader{ctx: ctx, r: rc}, uncompressedHash)
	progress := &countingWriter{seen: func(n int64) { seen(n, total) }}
	if _, err := io.Copy(zw, io.TeeReader(in, progress)); err != nil {
		zw.Close()
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := buf.Flush(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if got := hex.EncodeToString(uncompressedHash.Sum(nil)); got != diffID.Hex {
		return nil, fmt.Errorf("the store's copy of layer %s reads back as sha256:%s: refusing to push it (run 'tug system check')", diffID, got)
	}
	d := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(compressedHash.Sum(nil))}
	return cache.put(diffID, compression, path, d, counter.n)
}

// newCompressor returns a parallel compressor writing to w.
func newCompressor(w io.Writer, compression string) (io.WriteCloser, error) {
	if compression == CompressionZstd {
		return zstd.NewWriter(w, zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	}
	// Level 2: measured here (klauspost/compress v1.20) as fast as level 1
	// on binaries with a better ratio (0.445 against 0.457; 0.409 at the
	// default level 6, at half the speed), and three times level 1's speed
	// on incompressible data.
	zw, err := pgzip.NewWriterLevel(w, 2)
	if err != nil {
		return nil, err
	}
	// pgzip compresses blocks of 1 MB on every CPU.
	if err := zw.SetConcurrency(1<<20, runtime.GOMAXPROCS(0)); err != nil {
		return nil, err
	}
	return zw, nil
}

type counting struct{ n int64 }

func (c *counting) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// uploadLayer uploads one compressed layer and records where it went.
func uploadLayer(ctx context.Context, p *remote.Pusher, b *cachedBlob, mt types.MediaType, diffID v1.Hash, registry, repo string, progress func(PushEvent)) error {
	from := b.mountFrom(registry, repo)
	progress(PushEvent{Status: StatusPushing, Total: b.Size})
	l := &pushLayer{b: b, mt: mt, diffID: diffID, seen: func(n int64) {
		progress(PushEvent{Status: StatusPushing, Current: n, Total: b.Size})
	}}
	outcome, err := p.Upload(ctx, l, from)
	if err != nil {
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	if err := b.addRepo(registry + "/" + repo); err != nil {
		return err
	}
	switch outcome {
	case remote.BlobExists:
		progress(PushEvent{Status: StatusLayerExists, Final: true})
	case remote.BlobMounted:
		progress(PushEvent{Status: StatusMountedFrom + " " + from, Final: true})
	default:
		progress(PushEvent{Status: StatusPushed, Current: b.Size, Total: b.Size, Final: true})
	}
	return nil
}

// pushLayer is a cached compressed layer as go-containerregistry uploads it.
type pushLayer struct {
	b      *cachedBlob
	mt     types.MediaType
	diffID v1.Hash
	seen   func(int64)
}

func (l *pushLayer) Digest() (v1.Hash, error)            { return l.b.Digest, nil }
func (l *pushLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *pushLayer) Size() (int64, error)                { return l.b.Size, nil }
func (l *pushLayer) MediaType() (types.MediaType, error) { return l.mt, nil }

func (l *pushLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.b.open()
	if err != nil {
		return nil, err
	}
	return &progressReader{rc: rc, w: &countingWriter{seen: l.seen}}, nil
}

func (l *pushLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("a layer being pushed is only read compressed")
}

type progressReader struct {
	rc io.ReadCloser
	w  *countingWriter
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.rc.Read(b)
	p.w.Write(b[:n])
	return n, err
}

func (p *progressReader) Close() error { return p.rc.Close() }

// recordPush stores the pushed manifest with the image, under Podman's key
// for a manifest by digest; storage adds the digest to the image's
// digests (and makes it the image's digest if it had none).
func (s *Store) recordPush(id string, raw []byte, d v1.Hash) error {
	dg := digest.Digest(d.String())
	if err := s.s.SetImageBigData(id, manifestKey(dg), raw, func([]byte) (digest.Digest, error) { return dg, nil }); err != nil {
		return fmt.Errorf("recording digest %s on image %s: %w", d, shortHex(id), err)
	}
	return nil
}
