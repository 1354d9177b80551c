package image

import (
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
)

// V1Image returns the stored image ref as a go-containerregistry v1.Image,
// for push and save: its config as stored, its layers read back from the
// store uncompressed (byte for byte as they were pulled or built: storage
// keeps the tar headers). Compressed forms, and so the manifest's layer
// digests, are made by whoever consumes it.
func (s *Store) V1Image(ref string) (v1.Image, *Image, error) {
	img, err := s.Lookup(ref)
	if err != nil {
		return nil, nil, err
	}
	raw, err := s.s.ImageBigData(img.ID, "sha256:"+img.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("reading config of image %s: %w", shortHex(img.ID), err)
	}
	core := &storedImage{s: s, raw: raw, mediaType: types.OCIManifestSchema1}
	if m, _, err := s.Manifest(img.ID); err == nil {
		var mf struct {
			MediaType types.MediaType `json:"mediaType"`
		}
		if json.Unmarshal(m, &mf) == nil && mf.MediaType == types.DockerManifestSchema2 {
			core.mediaType = types.DockerManifestSchema2
		}
	}
	v, err := partial.UncompressedToImage(core)
	if err != nil {
		return nil, nil, err
	}
	return v, img, nil
}

type storedImage struct {
	s         *Store
	raw       []byte
	mediaType types.MediaType
}

func (i *storedImage) RawConfigFile() ([]byte, error) { return i.raw, nil }

func (i *storedImage) MediaType() (types.MediaType, error) { return i.mediaType, nil }

func (i *storedImage) LayerByDiffID(h v1.Hash) (partial.UncompressedLayer, error) {
	layers, err := i.s.s.LayersByUncompressedDigest(digest.Digest(h.String()))
	if err != nil || len(layers) == 0 {
		return nil, fmt.Errorf("layer %s of the image is not in the store (run 'tug system check'): %w", h, err)
	}
	mt := types.OCIUncompressedLayer
	if i.mediaType == types.DockerManifestSchema2 {
		mt = types.DockerUncompressedLayer
	}
	return &storedLayer{s: i.s, id: layers[0].ID, diffID: h, mediaType: mt}, nil
}

type storedLayer struct {
	s         *Store
	id        string
	diffID    v1.Hash
	mediaType types.MediaType
}

func (l *storedLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

func (l *storedLayer) MediaType() (types.MediaType, error) {
	// The compressed form's type: consumers gzip the uncompressed stream.
	if l.mediaType == types.DockerUncompressedLayer {
		return types.DockerLayer, nil
	}
	return types.OCILayer, nil
}

// Uncompressed reads the layer's tar from the store.
func (l *storedLayer) Uncompressed() (io.ReadCloser, error) {
	none := archive.Uncompressed
	rc, err := l.s.s.Diff("", l.id, &storage.DiffOptions{Compression: &none})
	if err != nil {
		return nil, fmt.Errorf("reading layer %s from the store: %w", l.diffID, err)
	}
	return rc, nil
}
