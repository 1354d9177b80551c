package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
	"go.podman.io/storage"

	"github.com/tugcli/tug/remote"
)

// Image is one stored image as tug shows it.
type Image struct {
	ID      string // 64 hex digits: the config digest
	Names   []string
	Digest  string   // the manifest digest it was pulled or pushed by
	Digests []string // every manifest digest known for it
	Created time.Time
	// Size is set by List and Inspect only (see withSize).
	Size     int64
	TopLayer string
	Config   v1.ConfigFile
}

// RepoTags are the image's names that carry a tag.
func (i *Image) RepoTags() []string {
	var out []string
	for _, n := range i.Names {
		if !strings.Contains(n, "@") {
			out = append(out, n)
		}
	}
	return out
}

// RepoDigests are repository@digest for every repository the image is
// named in, as Docker shows them.
func (i *Image) RepoDigests() []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range i.Names {
		repo, _, _ := splitName(n)
		if seen[repo] || i.Digest == "" {
			continue
		}
		seen[repo] = true
		out = append(out, repo+"@"+i.Digest)
	}
	return out
}

// splitName splits a stored name into repository, tag and digest.
func splitName(n string) (repo, tag, dig string) {
	if at := strings.Index(n, "@"); at >= 0 {
		return n[:at], "", n[at+1:]
	}
	slash := strings.LastIndex(n, "/")
	if colon := strings.LastIndex(n, ":"); colon > slash {
		return n[:colon], n[colon+1:], ""
	}
	return n, "", ""
}

// Summary is one row of `tug images`: an image under one of its names.
type Summary struct {
	Image      *Image
	Repository string
	Tag        string
	Digest     string
}

// List returns a row per image name, newest image first; an image without
// names gets one row with repository and tag "<none>".
func (s *Store) List() ([]Summary, error) {
	imgs, err := s.s.Images()
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", err)
	}
	var rows []Summary
	for idx := range imgs {
		img, err := s.fromStorage(&imgs[idx])
		if errors.Is(err, storage.ErrImageUnknown) {
			continue // removed by another tug since it was listed
		}
		if err != nil {
			return nil, err
		}
		s.withSize(img)
		if len(img.Names) == 0 {
			rows = append(rows, Summary{Image: img, Repository: "<none>", Tag: "<none>", Digest: orNone(img.Digest)})
			continue
		}
		for _, n := range img.Names {
			repo, tag, dig := splitName(n)
			if tag == "" {
				tag = "<none>"
			}
			if dig == "" {
				dig = img.Digest
			}
			rows = append(rows, Summary{Image: img, Repository: repo, Tag: tag, Digest: orNone(dig)})
		}
	}
	slices.SortStableFunc(rows, func(a, b Summary) int {
		if c := b.Image.Created.Compare(a.Image.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Repository+":"+a.Tag, b.Repository+":"+b.Tag)
	})
	return rows, nil
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// isHexID reports whether s is an image id or a prefix of one: 1 to 64
// lowercase hex digits, "sha256:" before them or not (a regular
// expression compiled for it was a tenth of a millisecond of every run).
func isHexID(s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range []byte(s) {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// Lookup finds an image by full id, name (Docker's short forms included)
// or unique id prefix, in Docker's order.
func (s *Store) Lookup(ref string) (*Image, error) {
	if isHexID(ref) && len(strings.TrimPrefix(ref, "sha256:")) == 64 {
		if img, err := s.s.Image(strings.TrimPrefix(ref, "sha256:")); err == nil {
			return s.fromStorage(img)
		}
	}
	if r, err := remote.ParseReference(ref); err == nil {
		if img, err := s.s.Image(remote.Canonical(r)); err == nil {
			return s.fromStorage(img)
		}
		// A short name also finds a local build, as in Podman.
		if !remote.HasRegistry(ref) {
			if local, err := LocalName(ref); err == nil {
				if img, err := s.s.Image(local); err == nil {
					return s.fromStorage(img)
				}
			}
		}
	}
	if isHexID(ref) {
		prefix := strings.TrimPrefix(ref, "sha256:")
		imgs, err := s.s.Images()
		if err != nil {
			return nil, fmt.Errorf("listing images: %w", err)
		}
		var match []*storage.Image
		for i := range imgs {
			if strings.HasPrefix(imgs[i].ID, prefix) {
				match = append(match, &imgs[i])
			}
		}
		if len(match) == 1 {
			return s.fromStorage(match[0])
		}
		if len(match) > 1 {
			return nil, fmt.Errorf("%s: image id prefix matches %d images: give more digits", ref, len(match))
		}
	}
	return nil, fmt.Errorf("%s: %w", ref, ErrNotFound)
}

func (s *Store) imageByID(id string) (*Image, error) {
	img, err := s.s.Image(id)
	if err != nil {
		return nil, fmt.Errorf("reading image %s: %w", id, err)
	}
	return s.fromStorage(img)
}

func (s *Store) fromStorage(img *storage.Image) (*Image, error) {
	out := &Image{ID: img.ID, Names: img.Names, Digest: img.Digest.String(), Created: img.Created, TopLayer: img.TopLayer}
	for _, d := range img.Digests {
		out.Digests = append(out.Digests, d.String())
	}
	raw, err := s.s.ImageBigData(img.ID, "sha256:"+img.ID)
	if err != nil {
		return nil, fmt.Errorf("reading config of image %s: %w (run 'tug system check')", img.ID, err)
	}
	if err := json.Unmarshal(raw, &out.Config); err != nil {
		return nil, fmt.Errorf("decoding config of image %s: %w", img.ID, err)
	}
	return out, nil
}

// withSize fills in img.Size, which fromStorage leaves out: summing the
// layers takes storage's locks again, and only listings and inspect show
// it (a run has no use for it).
func (s *Store) withSize(img *Image) *Image {
	if size, err := s.s.ImageSize(img.ID); err == nil {
		img.Size = size
	}
	return img
}

// Tag gives the image src the name dst; the name leaves any other image
// that had it, as with docker tag.
func (s *Store) Tag(src, dst string) error {
	img, err := s.Lookup(src)
	if err != nil {
		return err
	}
	r, err := remote.ParseReference(dst)
	if err != nil {
		return err
	}
	if _, ok := r.(name.Digest); ok {
		return fmt.Errorf("refusing to create a tag with a digest reference: %s", dst)
	}
	if err := s.s.AddNames(img.ID, []string{remote.Canonical(r)}); err != nil {
		return fmt.Errorf("tagging %s as %s: %w", src, dst, err)
	}
	return nil
}

// RemoveReport says what removing one reference did, in Docker's words.
type RemoveReport struct {
	Untagged []string
	Deleted  []string
}

// ErrInUse is returned when a container uses the image to be removed.
var ErrInUse = errors.New("image is in use by a container")

// Remove untags ref, and deletes the image (and the layers only it used)
// when ref was its last name or its id. With force, an image named several
// times is deleted by id anyway; an image a container uses is never deleted.
func (s *Store) Remove(ref string, force bool) (*RemoveReport, error) {
	img, err := s.Lookup(ref)
	if err != nil {
		return nil, err
	}
	rep := &RemoveReport{}
	byName := ""
	if r, err := remote.ParseReference(ref); err == nil && slices.Contains(img.Names, remote.Canonical(r)) {
		byName = remote.Canonical(r)
	}
	if byName != "" && len(img.Names) > 1 {
		if err := s.s.RemoveNames(img.ID, []string{byName}); err != nil {
			return nil, fmt.Errorf("untagging %s: %w", byName, err)
		}
		rep.Untagged = append(rep.Untagged, byName)
		return rep, nil
	}
	if byName == "" && len(img.Names) > 1 && !force {
		return nil, fmt.Errorf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", shortHex(img.ID))
	}
	ctrs, err := s.s.Containers()
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	for _, c := range ctrs {
		if c.ImageID == img.ID {
			return nil, fmt.Errorf("conflict: unable to remove %s: %w %s (remove the container first)", ref, ErrInUse, shortHex(c.ID))
		}
	}
	unlock, err := s.lockForRemoval(img.ID)
	if errors.Is(err, ErrUsedByBuild) {
		return nil, fmt.Errorf("conflict: unable to remove %s: %w (cannot be forced): wait for the build to finish", ref, err)
	}
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := s.s.DeleteImage(img.ID, true); err != nil {
		return nil, fmt.Errorf("deleting image %s: %w", shortHex(img.ID), err)
	}
	for _, n := range img.Names {
		if !strings.Contains(n, "@") {
			rep.Untagged = append(rep.Untagged, n)
		}
	}
	for _, d := range img.RepoDigests() {
		rep.Untagged = append(rep.Untagged, d)
	}
	rep.Deleted = append(rep.Deleted, "sha256:"+img.ID)
	return rep, nil
}

// Manifest returns the manifest the image was stored with.
func (s *Store) Manifest(id string) ([]byte, digest.Digest, error) {
	b, err := s.s.ImageBigData(id, storage.ImageDigestBigDataKey)
	if err != nil {
		return nil, "", fmt.Errorf("reading manifest of image %s: %w", id, err)
	}
	return b, digest.FromBytes(b), nil
}

// LayerSizes returns the uncompressed size of each of the image's layers,
// bottom first.
func (s *Store) LayerSizes(img *Image) ([]int64, error) {
	var sizes []int64
	for id := img.TopLayer; id != ""; {
		l, err := s.s.Layer(id)
		if err != nil {
			return nil, fmt.Errorf("reading layer %s of image %s: %w", shortHex(id), shortHex(img.ID), err)
		}
		sizes = append([]int64{l.UncompressedSize}, sizes...)
		id = l.Parent
	}
	return sizes, nil
}
