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
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	"go.podman.io/storage"
	graphdriver "go.podman.io/storage/drivers"
	"golang.org/x/sync/errgroup"

	gname "github.com/google/go-containerregistry/pkg/name"
	"github.com/tugcli/tug/remote"
)

// Pull progress events, per layer, in Docker's words.
const (
	StatusExists     = "Already exists"
	StatusWaiting    = "Waiting"
	StatusDownload   = "Downloading"
	StatusDownloaded = "Download complete"
	StatusExtracting = "Extracting"
	StatusComplete   = "Pull complete"
)

// PullEvent reports progress on one layer.
type PullEvent struct {
	Layer   string // short id: the first 12 hex digits of the blob digest
	Status  string
	Current int64
	Total   int64
}

// PullOptions tune a pull.
type PullOptions struct {
	Remote remote.Options
	// Jobs is how many layers download at once (default 6, as Podman).
	Jobs int
	// Progress, if set, is called from several goroutines, one event at a time per layer.
	Progress func(PullEvent)
}

// PullResult is what a pull stored.
type PullResult struct {
	Image *Image
	// Name is the name the image was stored under.
	Name string
	// Digest is the digest the reference resolved to (the index's, if any).
	Digest string
	// UpToDate is true when the image was already complete in the store.
	UpToDate bool
}

// Pull fetches ref for this platform and stores it under its canonical
// name. Layers already in the store are not fetched; the others download in
// parallel, each verified against its digest and its diff id before
// anything is stored. The image record is written last, so a pull that is
// killed leaves no half image.
func (s *Store) Pull(ctx context.Context, refStr string, o PullOptions) (*PullResult, error) {
	if o.Jobs <= 0 {
		o.Jobs = 6
	}
	progress := o.Progress
	if progress == nil {
		progress = func(PullEvent) {}
	}
	s.removeStaleTemp()
	client := remote.NewClient(o.Remote)
	ref, err := client.Reference(refStr)
	if err != nil {
		return nil, err
	}
	res, err := client.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	for {
		result, err := s.pullResolved(ctx, ref, refStr, res, o, progress)
		if err == nil || !res.Mirror || ctx.Err() != nil {
			return result, err
		}
		// A mirror that served the manifest but not a blob: on to the next
		// mirror, or the registry itself, as registries.conf says.
		next, rerr := client.ResolveFrom(ctx, ref, res.Next)
		if rerr != nil {
			return nil, fmt.Errorf("%w; then: %w", err, rerr)
		}
		res = next
	}
}

// pullResolved stores the image res resolved to.
func (s *Store) pullResolved(ctx context.Context, ref gname.Reference, refStr string, res *remote.Resolved, o PullOptions, progress func(PullEvent)) (*PullResult, error) {
	name := remote.Canonical(ref)
	result := &PullResult{Name: name, Digest: res.ManifestDigest.String()}
	if res.IndexDigest != nil {
		result.Digest = res.IndexDigest.String()
	}
	p, err := prepare(res.Image, refStr, pulledRecord(name, res))
	if err != nil {
		return nil, err
	}
	if existing, err := s.s.Image(p.cfgDigest.Hex); err == nil && s.layersPresent(existing.TopLayer) {
		for _, l := range p.layers {
			if d, err := l.Digest(); err == nil {
				progress(PullEvent{Layer: shortHex(d.Hex), Status: StatusExists})
			}
		}
		if err := s.recordNames(existing.ID, p.rec); err != nil {
			return nil, err
		}
		result.UpToDate = true
		result.Image, err = s.imageByID(existing.ID)
		return result, err
	}
	id, err := s.storeImage(ctx, p, o.Jobs, progress)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("pulling %s: %w", refStr, ctx.Err())
		}
		return nil, err
	}
	result.Image, err = s.imageByID(id)
	return result, err
}

// layerTries is how many times a pull or load stores an image's layers
// when other tugs remove them meanwhile (see layerGone).
const layerTries = 3

// layerGone reports whether err says that a layer this process found
// stored, or just stored, is gone. Until its image is recorded, nothing
// holds a layer: another tug's rmi of an image that shares it, or a
// prune, may remove it between the check and its use as a parent (or
// as the image's top). Storing the layers again fixes that.
func layerGone(err error) bool {
	return errors.Is(err, storage.ErrLayerUnknown) || errors.Is(err, graphdriver.ErrLayerUnknown)
}

// storeImage stores p's layers and records the image, storing the layers
// again when another tug removed some meanwhile.
func (s *Store) storeImage(ctx context.Context, p *prepared, jobs int, progress func(PullEvent)) (string, error) {
	for try := 1; ; try++ {
		top, err := s.storeLayers(ctx, p, jobs, progress)
		if err != nil {
			return "", err
		}
		id, err := s.createImage(p, top)
		if err == nil || !layerGone(err) || try == layerTries || ctx.Err() != nil {
			return id, err
		}
	}
}

// record is what an image record holds besides its config and layers: its
// names and the manifests it is known by.
type record struct {
	names []string
	// manifest is the one the image is stored with; index, when set, is
	// the image index it was found through.
	manifest, index             []byte
	manifestDigest, indexDigest digest.Digest
}

func pulledRecord(name string, res *remote.Resolved) record {
	rec := record{names: []string{name}, manifest: res.RawManifest, manifestDigest: digest.Digest(res.ManifestDigest.String())}
	if res.IndexDigest != nil {
		rec.index, rec.indexDigest = res.RawIndex, digest.Digest(res.IndexDigest.String())
	}
	return rec
}

// prepared is an image whose config has been read and checked against its
// digest, ready for storeLayers and createImage.
type prepared struct {
	what      string // how errors name the image: the reference pulled, the archive entry loaded
	cfgDigest v1.Hash
	rawCfg    []byte
	cfg       v1.ConfigFile
	layers    []v1.Layer
	diffIDs   []v1.Hash
	rec       record
}

// prepare reads img's config, refusing one that does not match its digest
// or whose diff ids do not match the layers.
func prepare(img v1.Image, what string, rec record) (*prepared, error) {
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("fetching image config of %s: %w", what, err)
	}
	cfgDigest, err := img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("reading config digest of %s: %w", what, err)
	}
	if sum := sha256.Sum256(rawCfg); hex.EncodeToString(sum[:]) != cfgDigest.Hex {
		return nil, fmt.Errorf("image config of %s does not match its digest %s: refusing to store it", what, cfgDigest)
	}
	p := &prepared{what: what, cfgDigest: cfgDigest, rawCfg: rawCfg, rec: rec}
	if err := json.Unmarshal(rawCfg, &p.cfg); err != nil {
		return nil, fmt.Errorf("decoding image config of %s: %w", what, err)
	}
	if p.layers, err = img.Layers(); err != nil {
		return nil, fmt.Errorf("reading layers of %s: %w", what, err)
	}
	p.diffIDs = p.cfg.RootFS.DiffIDs
	if len(p.diffIDs) != len(p.layers) {
		return nil, fmt.Errorf("image %s is malformed: its manifest has %d layers but its config lists %d diff ids", what, len(p.layers), len(p.diffIDs))
	}
	return p, nil
}

// storeLayers stores the layers of p that the store lacks and returns the
// id of the top one. Up to jobs layers are fetched at once, each to a
// scratch file, verified against its digest (by the layer's reader) and
// against its diff id before it is stored; they are stored in order as
// they arrive. When another tug removes one meanwhile (layerGone), they
// are stored again.
func (s *Store) storeLayers(ctx context.Context, p *prepared, jobs int, progress func(PullEvent)) (string, error) {
	for try := 1; ; try++ {
		top, err := s.storeLayersOnce(ctx, p, jobs, progress)
		if err == nil || !layerGone(err) || try == layerTries || ctx.Err() != nil {
			return top, err
		}
	}
}

func (s *Store) storeLayersOnce(ctx context.Context, p *prepared, jobs int, progress func(PullEvent)) (string, error) {
	layers, diffIDs, refStr := p.layers, p.diffIDs, p.what
	ids := ChainIDs(diffIDs)
	tmp, err := s.tempDir("pull")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)

	type fetched struct {
		path   string
		digest v1.Hash
		size   int64
		diffID v1.Hash
	}
	files := make([]*fetched, len(layers))
	stored := make([]bool, len(layers))
	ready := make([]chan struct{}, len(layers))
	g, gctx := errgroup.WithContext(ctx)
	slots := make(chan struct{}, jobs)
	for i, l := range layers {
		ready[i] = make(chan struct{})
		d, err := l.Digest()
		if err != nil {
			return "", fmt.Errorf("reading layer digest of %s: %w", refStr, err)
		}
		short := shortHex(d.Hex)
		if _, err := s.s.Layer(ids[i]); err == nil {
			progress(PullEvent{Layer: short, Status: StatusExists})
			stored[i] = true
			close(ready[i])
			continue
		}
		progress(PullEvent{Layer: short, Status: StatusWaiting})
		size, _ := l.Size()
		g.Go(func() error {
			defer close(ready[i])
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			case <-gctx.Done():
				return nil
			}
			path := filepath.Join(tmp, strconv.Itoa(i))
			diffID, err := download(gctx, l, path, func(n int64) {
				progress(PullEvent{Layer: short, Status: StatusDownload, Current: n, Total: size})
			})
			if err != nil {
				return fmt.Errorf("fetching layer %s of %s: %w", d, refStr, err)
			}
			if diffID != diffIDs[i] {
				return fmt.Errorf("layer %s of %s decompresses to %s, but the image config says %s: refusing to store it", d, refStr, diffID, diffIDs[i])
			}
			progress(PullEvent{Layer: short, Status: StatusDownloaded, Current: size, Total: size})
			files[i] = &fetched{path: path, digest: d, size: size, diffID: diffID}
			return nil
		})
	}

	// Apply in order as downloads finish; storage needs each layer's parent.
	applyErr := func() error {
		parent := ""
		for i := range layers {
			select {
			case <-ready[i]:
			case <-gctx.Done():
				return nil // the download error is reported by g.Wait
			}
			f := files[i]
			if f == nil && !stored[i] {
				return nil // its download failed: g.Wait reports why
			}
			if f != nil {
				if err := s.putLayer(ids[i], parent, f.path, f.digest, f.size, f.diffID, func(st string) {
					progress(PullEvent{Layer: shortHex(f.digest.Hex), Status: st, Current: f.size, Total: f.size})
				}); err != nil {
					return fmt.Errorf("storing layer %s of %s: %w", f.digest, refStr, err)
				}
			}
			parent = ids[i]
		}
		return nil
	}()
	waitErr := g.Wait()
	if err := errors.Join(waitErr, applyErr); err != nil {
		return "", err
	}
	top := ""
	if len(ids) > 0 {
		top = ids[len(ids)-1]
	}
	return top, nil
}

// putLayer stores one downloaded layer, tolerating another tug or Podman
// having stored the same layer meanwhile.
func (s *Store) putLayer(id, parent, path string, d v1.Hash, size int64, diffID v1.Hash, status func(string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	status(StatusExtracting)
	err = s.putLayerFile(id, parent, &storage.LayerOptions{
		OriginalDigest:     digest.Digest(d.String()),
		OriginalSize:       &size,
		UncompressedDigest: digest.Digest(diffID.String()),
	}, f)
	if err != nil {
		return rewrite(err)
	}
	status(StatusComplete)
	return nil
}

// createImage writes the image record with Podman's conventions: id =
// config digest, config and manifests as big data under Podman's keys.
func (s *Store) createImage(p *prepared, top string) (string, error) {
	cfgDigest, rec := p.cfgDigest, p.rec
	id := cfgDigest.Hex
	big := []storage.ImageBigDataOption{{Key: cfgDigest.String(), Data: p.rawCfg, Digest: digest.Digest(cfgDigest.String())}}
	big = append(big, manifestBigData(rec)...)
	digests := []digest.Digest{rec.manifestDigest}
	if rec.indexDigest != "" {
		digests = append(digests, rec.indexDigest)
	}
	// Where no other image has the names, the image is made with them:
	// a pull killed just after leaves it named. Otherwise they are added
	// afterwards: AddNames moves a name from the image that has it
	// (docker tag semantics), which CreateImage would refuse.
	names := rec.names
	for _, n := range names {
		if _, err := s.s.Image(n); err == nil {
			names = nil
			break
		}
	}
	opts := &storage.ImageOptions{
		CreationDate: p.cfg.Created.Time,
		Digest:       digests[0],
		Digests:      digests,
		BigData:      big,
	}
	_, err := s.s.CreateImage(id, names, top, "", opts)
	if names != nil && errors.Is(err, storage.ErrDuplicateName) {
		// Another tug stored an image with one of the names meanwhile.
		names = nil
		_, err = s.s.CreateImage(id, nil, top, "", opts)
	}
	if errors.Is(err, storage.ErrDuplicateID) {
		return id, s.recordNames(id, rec)
	}
	if err != nil {
		return "", fmt.Errorf("recording image %s: %w", p.what, err)
	}
	if names == nil {
		if err := s.addNames(id, rec.names); err != nil {
			return "", err
		}
	}
	return id, nil
}

func manifestBigData(rec record) []storage.ImageBigDataOption {
	md := rec.manifestDigest
	big := []storage.ImageBigDataOption{
		{Key: storage.ImageDigestBigDataKey, Data: rec.manifest, Digest: md},
		{Key: manifestKey(md), Data: rec.manifest, Digest: md},
	}
	if rec.indexDigest != "" {
		big = append(big, storage.ImageBigDataOption{Key: manifestKey(rec.indexDigest), Data: rec.index, Digest: rec.indexDigest})
	}
	return big
}

func manifestKey(d digest.Digest) string {
	return storage.ImageDigestManifestBigDataNamePrefix + "-" + d.String()
}

// recordNames adds the names and the manifests of rec to an image that is
// already stored.
func (s *Store) recordNames(id string, rec record) error {
	for _, b := range manifestBigData(rec) {
		if b.Key == storage.ImageDigestBigDataKey {
			continue // keep the manifest the image was first stored with
		}
		if err := s.s.SetImageBigData(id, b.Key, b.Data, func([]byte) (digest.Digest, error) { return b.Digest, nil }); err != nil {
			return fmt.Errorf("recording manifest of %s: %w", strings.Join(rec.names, ", "), err)
		}
	}
	return s.addNames(id, rec.names)
}

func (s *Store) addNames(id string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	if err := s.s.AddNames(id, names); err != nil {
		return fmt.Errorf("naming image %s: %w", strings.Join(names, ", "), err)
	}
	return nil
}

// layersPresent reports whether a layer and all its parents are stored.
func (s *Store) layersPresent(id string) bool {
	for id != "" {
		l, err := s.s.Layer(id)
		if err != nil {
			return false
		}
		id = l.Parent
	}
	return true
}

// ChainIDs gives the storage layer ids for a list of diff ids, as Podman
// computes them: the first layer's id is its diff id, each later one
// sha256(parent id + "+" + diff id).
func ChainIDs(diffIDs []v1.Hash) []string {
	ids := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			ids[i] = d.Hex
			continue
		}
		sum := sha256.Sum256([]byte(ids[i-1] + "+" + d.Hex))
		ids[i] = hex.EncodeToString(sum[:])
	}
	return ids
}

// download writes a layer's blob to path while decompressing it on the fly
// to compute its diff id. go-containerregistry fails the read at EOF if the
// blob does not match its digest or size.
func download(ctx context.Context, l v1.Layer, path string, seen func(int64)) (v1.Hash, error) {
	rc, err := l.Compressed()
	if err != nil {
		return v1.Hash{}, err
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return v1.Hash{}, err
	}
	defer f.Close()

	pr, pw := io.Pipe()
	type sum struct {
		h   v1.Hash
		err error
	}
	done := make(chan sum, 1)
	go func() {
		h, err := diffID(pr)
		pr.CloseWithError(err)
		done <- sum{h, err}
	}()
	counter := &countingWriter{seen: seen}
	_, err = io.Copy(io.MultiWriter(f, pw, counter), &ctxReader{ctx: ctx, r: rc})
	pw.CloseWithError(err)
	d := <-done
	if err != nil {
		return v1.Hash{}, err
	}
	if d.err != nil {
		return v1.Hash{}, fmt.Errorf("decompressing: %w", d.err)
	}
	return d.h, f.Close()
}

// diffID hashes the uncompressed content of a gzip, zstd or plain tar stream.
func diffID(r io.Reader) (v1.Hash, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, _ := br.Peek(4)
	var src io.Reader = br
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return v1.Hash{}, err
		}
		defer zr.Close()
		src = zr
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		zr, err := zstd.NewReader(br)
		if err != nil {
			return v1.Hash{}, err
		}
		defer zr.Close()
		src = zr
	}
	h := sha256.New()
	if _, err := io.Copy(h, src); err != nil {
		return v1.Hash{}, err
	}
	// Drain trailing bytes so the writer never blocks.
	_, _ = io.Copy(io.Discard, br)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, nil
}

type countingWriter struct {
	n    int64
	last time.Time
	seen func(int64)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	if now := time.Now(); now.Sub(c.last) > 100*time.Millisecond {
		c.last = now
		c.seen(c.n)
	}
	return len(p), nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// tempDir makes a scratch directory in the graph root (same filesystem as
// the layers).
func (s *Store) tempDir(kind string) (string, error) {
	base := filepath.Join(s.s.GraphRoot(), "tug-tmp")
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", fmt.Errorf("creating %s: %w", base, err)
	}
	dir, err := os.MkdirTemp(base, fmt.Sprintf("%s-%d-", kind, os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("creating scratch directory in %s: %w", base, err)
	}
	return dir, nil
}

// removeStaleTemp removes scratch directories of tug processes that died.
func (s *Store) removeStaleTemp() {
	base := filepath.Join(s.s.GraphRoot(), "tug-tmp")
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		// Names are KIND-PID-RANDOM; a dead PID's directory is stale.
		parts := strings.Split(e.Name(), "-")
		if len(parts) == 3 {
			if pid, err := strconv.Atoi(parts[1]); err == nil && !processAlive(pid) {
				os.RemoveAll(filepath.Join(base, e.Name()))
			}
		}
	}
}

// processAlive reports whether pid runs; a zombie (dead, not yet reaped
// by whoever adopted it) does not.
func processAlive(pid int) bool {
	// A killed Go process's leader turns zombie before its other threads
	// have exited and closed its files (listening sockets among them):
	// it is alive while any of its threads is.
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return false
	}
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/stat")
		if err != nil {
			continue
		}
		// The state follows the command name, which is in parentheses.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) {
			continue
		}
		if state := b[i+2]; state != 'Z' && state != 'X' {
			return true
		}
	}
	return false
}

func shortHex(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
