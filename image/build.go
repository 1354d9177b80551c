package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"

	"github.com/tugcli/tug/remote"
)

// The layer-level operations a build needs: a writable layer to run a
// step in, committing it (or a tar made from the build context) as an
// image layer with Podman's chained id, and writing the image record.

// WorkLayer is a writable layer on top of a parent, mounted.
type WorkLayer struct {
	ID     string
	Parent string
	Path   string
}

// NewWorkLayer creates and mounts a writable layer on parent ("" for an
// empty root filesystem).
func (s *Store) NewWorkLayer(parent string) (*WorkLayer, error) {
	l, err := s.s.CreateLayer("", parent, nil, "", true, &storage.LayerOptions{Volatile: true})
	if err != nil {
		return nil, fmt.Errorf("creating a writable layer: %w", rewrite(err))
	}
	p, err := s.s.Mount(l.ID, "")
	if err != nil {
		_ = s.s.DeleteLayer(l.ID)
		return nil, fmt.Errorf("mounting a writable layer: %w", rewrite(err))
	}
	return &WorkLayer{ID: l.ID, Parent: parent, Path: p}, nil
}

// Discard unmounts and deletes a work layer.
func (s *Store) Discard(w *WorkLayer) error {
	if _, err := s.s.Unmount(w.ID, true); err != nil && !errors.Is(err, storage.ErrLayerNotMounted) {
		return fmt.Errorf("unmounting work layer: %w", err)
	}
	s.freeLayerData(w.ID)
	if err := s.s.DeleteLayer(w.ID); err != nil {
		return fmt.Errorf("deleting work layer: %w", err)
	}
	return nil
}

// Commit turns what changed in the work layer into an image layer on its
// parent and discards the work layer, whether or not it succeeds. It
// returns the new layer's id and diff id. transform, if set, rewrites the
// layer's tar on the way (to clamp file times for a reproducible build).
func (s *Store) Commit(w *WorkLayer, transform func(io.Reader) io.Reader) (string, v1.Hash, error) {
	sp, err := s.spoolChanges(w, transform)
	if err != nil {
		_ = s.Discard(w) // not left behind, holding a full disk's space
		return "", v1.Hash{}, err
	}
	defer sp.remove()
	if err := s.s.DeleteLayer(w.ID); err != nil {
		return "", v1.Hash{}, fmt.Errorf("deleting work layer: %w", err)
	}
	return s.putSpooled(w.Parent, sp)
}

// spoolChanges unmounts the work layer and writes what changed in it to
// a scratch file.
func (s *Store) spoolChanges(w *WorkLayer, transform func(io.Reader) io.Reader) (*spooled, error) {
	if _, err := s.s.Unmount(w.ID, true); err != nil && !errors.Is(err, storage.ErrLayerNotMounted) {
		return nil, fmt.Errorf("unmounting work layer: %w", err)
	}
	none := archive.Uncompressed
	rc, err := s.s.Diff(w.Parent, w.ID, &storage.DiffOptions{Compression: &none})
	if err != nil {
		return nil, fmt.Errorf("reading the changes of a build step: %w", err)
	}
	// The diff holds the layer store's lock until closed: spool it first.
	var src io.Reader = rc
	if transform != nil {
		src = transform(rc)
	}
	sp, err := s.spool(src)
	rc.Close()
	return sp, err
}

// AddLayer stores an uncompressed layer tar on parent under its chained id
// (reusing the layer if the store has it) and returns id and diff id.
func (s *Store) AddLayer(parent string, tarStream io.Reader) (string, v1.Hash, error) {
	sp, err := s.spool(tarStream)
	if err != nil {
		return "", v1.Hash{}, err
	}
	defer sp.remove()
	return s.putSpooled(parent, sp)
}

// spooled is a layer tar in a scratch file, with its digest.
type spooled struct {
	dir    string
	path   string
	diffID v1.Hash
}

func (sp *spooled) remove() { os.RemoveAll(sp.dir) }

func (s *Store) spool(r io.Reader) (*spooled, error) {
	dir, err := s.tempDir("layer")
	if err != nil {
		return nil, err
	}
	sp := &spooled{dir: dir, path: filepath.Join(dir, "layer.tar")}
	f, err := os.Create(sp.path)
	if err != nil {
		sp.remove()
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), r); err != nil {
		sp.remove()
		return nil, fmt.Errorf("writing layer: %w", err)
	}
	if err := f.Close(); err != nil {
		sp.remove()
		return nil, err
	}
	sp.diffID = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	return sp, nil
}

func (s *Store) putSpooled(parent string, sp *spooled) (string, v1.Hash, error) {
	id := sp.diffID.Hex
	if parent != "" {
		sum := sha256.Sum256([]byte(parent + "+" + sp.diffID.Hex))
		id = hex.EncodeToString(sum[:])
	}
	if _, err := s.s.Layer(id); err == nil {
		return id, sp.diffID, nil
	}
	f, err := os.Open(sp.path)
	if err != nil {
		return "", v1.Hash{}, err
	}
	defer f.Close()
	err = s.putLayerFile(id, parent, &storage.LayerOptions{UncompressedDigest: digest.Digest(sp.diffID.String())}, f)
	if err != nil {
		return "", v1.Hash{}, fmt.Errorf("storing layer: %w", rewrite(err))
	}
	return id, sp.diffID, nil
}

// HasLayer reports whether the store has a layer.
func (s *Store) HasLayer(id string) bool {
	_, err := s.s.Layer(id)
	return err == nil
}

// MountLayer mounts a layer (read-only use) and returns its path; call
// UnmountLayer when done.
func (s *Store) MountLayer(id string) (string, error) {
	p, err := s.s.Mount(id, "")
	if err != nil {
		return "", fmt.Errorf("mounting layer %s: %w", shortHex(id), rewrite(err))
	}
	return p, nil
}

// UnmountLayer releases MountLayer.
func (s *Store) UnmountLayer(id string) {
	_, _ = s.s.Unmount(id, false)
}

// CommitImage writes an image record for a built image: cfg (whose RootFS
// lists the diff ids of the layers up to top), an OCI manifest of
// uncompressed layers, and names (short names become localhost/NAME as
// Podman names local builds). It returns the image.
func (s *Store) CommitImage(cfg *v1.ConfigFile, top string, names []string, created time.Time) (*Image, error) {
	rawCfg, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding image config: %w", err)
	}
	cfgDigest := digest.FromBytes(rawCfg)
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(rawCfg)), Digest: v1.Hash{Algorithm: "sha256", Hex: cfgDigest.Encoded()}},
	}
	for _, d := range cfg.RootFS.DiffIDs {
		l, err := s.s.LayersByUncompressedDigest(digest.Digest(d.String()))
		if err != nil || len(l) == 0 {
			return nil, fmt.Errorf("layer %s of the built image is not in the store", d)
		}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.OCIUncompressedLayer, Size: l[0].UncompressedSize, Digest: d})
	}
	rawManifest, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding image manifest: %w", err)
	}
	md := digest.FromBytes(rawManifest)
	id := cfgDigest.Encoded()
	_, err = s.s.CreateImage(id, nil, top, "", &storage.ImageOptions{
		CreationDate: created,
		Digest:       md,
		Digests:      []digest.Digest{md},
		BigData: []storage.ImageBigDataOption{
			{Key: cfgDigest.String(), Data: rawCfg, Digest: cfgDigest},
			{Key: storage.ImageDigestBigDataKey, Data: rawManifest, Digest: md},
			{Key: manifestKey(md), Data: rawManifest, Digest: md},
		},
	})
	if err != nil && !errors.Is(err, storage.ErrDuplicateID) {
		return nil, fmt.Errorf("recording the built image: %w", err)
	}
	var canonical []string
	for _, n := range names {
		c, err := LocalName(n)
		if err != nil {
			return nil, err
		}
		canonical = append(canonical, c)
	}
	if len(canonical) > 0 {
		if err := s.s.AddNames(id, canonical); err != nil {
			return nil, fmt.Errorf("naming the built image: %w", err)
		}
	}
	return s.imageByID(id)
}

// LocalName is the name a locally made image is stored under: a name with
// a registry keeps it, a short one gets localhost/ as in Podman.
func LocalName(name string) (string, error) {
	r, err := remote.ParseReference(name)
	if err != nil {
		return "", err
	}
	c := remote.Canonical(r)
	if !remote.HasRegistry(name) {
		c = "localhost/" + r.Context().RepositoryStr()
		switch r := r.(type) {
		case interface{ TagStr() string }:
			c += ":" + r.TagStr()
		case interface{ DigestStr() string }: // kept: a name needs one or the other
			c += "@" + r.DigestStr()
		}
		c = stripLibrary(c)
	}
	return c, nil
}

func stripLibrary(c string) string {
	const p = "localhost/library/"
	if len(c) > len(p) && c[:len(p)] == p {
		return "localhost/" + c[len(p):]
	}
	return c
}

// UsedLayers is the set of layers that images and containers hold: every
// layer in the chain under an image's top layer or a container's layer.
func (s *Store) UsedLayers() (map[string]bool, error) {
	layers, err := s.s.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing layers: %w", rewrite(err))
	}
	parent := map[string]string{}
	for _, l := range layers {
		parent[l.ID] = l.Parent
	}
	used := map[string]bool{}
	mark := func(id string) {
		for ; id != "" && !used[id]; id = parent[id] {
			used[id] = true
		}
	}
	imgs, err := s.s.Images()
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", rewrite(err))
	}
	for _, img := range imgs {
		mark(img.TopLayer)
		for _, m := range img.MappedTopLayers {
			mark(m)
		}
	}
	ctrs, err := s.s.Containers()
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", rewrite(err))
	}
	for _, c := range ctrs {
		mark(c.LayerID)
	}
	return used, nil
}

// PruneLayers deletes those of candidates that no image or container uses
// and no other layer is built on, again and again as deleting a layer
// frees its parent, and returns the bytes their contents held. It assumes
// no build runs at the same time.
func (s *Store) PruneLayers(candidates []string) (int64, error) {
	used, err := s.UsedLayers()
	if err != nil {
		return 0, err
	}
	layers, err := s.s.Layers()
	if err != nil {
		return 0, fmt.Errorf("listing layers: %w", rewrite(err))
	}
	byID := map[string]storage.Layer{}
	children := map[string]int{}
	for _, l := range layers {
		byID[l.ID] = l
		if l.Parent != "" {
			children[l.Parent]++
		}
	}
	want := map[string]bool{}
	for _, id := range candidates {
		want[id] = true
	}
	var freed int64
	for progress := true; progress; {
		progress = false
		for id := range want {
			l, ok := byID[id]
			if !ok || used[id] || children[id] > 0 {
				continue
			}
			if err := s.s.DeleteLayer(id); err != nil {
				return freed, fmt.Errorf("deleting layer %s: %w", shortHex(id), rewrite(err))
			}
			delete(want, id)
			delete(byID, id)
			if l.UncompressedSize > 0 {
				freed += l.UncompressedSize
			}
			if l.Parent != "" {
				children[l.Parent]--
			}
			progress = true
		}
	}
	return freed, nil
}
