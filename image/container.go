package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.podman.io/storage"
	"go.podman.io/storage/pkg/ioutils"
	"go.podman.io/storage/pkg/stringid"
	"golang.org/x/sys/unix"
)

// Container is a container's record in the store: a writable layer on top
// of its image.
type Container struct {
	ID      string
	Names   []string
	ImageID string
	LayerID string
}

// CreateContainer makes a container record with a fresh writable layer on
// the image. name may be empty. A volatile container (one that `run --rm`
// removes anyway) is recorded without fsync, as Podman records its --rm
// containers: a crash loses it, which is what --rm asked for. id may be
// empty for a random one (see NewContainerID).
func (s *Store) CreateContainer(img *Image, id, name string, volatile bool) (*Container, error) {
	var names []string
	if name != "" {
		names = []string{name}
	}
	opts := &storage.ContainerOptions{Volatile: volatile}
	c, err := s.s.CreateContainer(id, names, img.ID, "", `{"created-by":"tug"}`, opts)
	if errors.Is(err, storage.ErrDuplicateName) && s.removeStaleAutoRemoved(name) {
		c, err = s.s.CreateContainer(id, names, img.ID, "", `{"created-by":"tug"}`, opts)
	}
	if errors.Is(err, storage.ErrDuplicateName) {
		return nil, fmt.Errorf("the container name %q is already in use: remove that container or choose another name", name)
	}
	if err != nil {
		return nil, fmt.Errorf("creating a container of image %s: %w", shortHex(img.ID), rewrite(err))
	}
	return &Container{ID: c.ID, Names: c.Names, ImageID: c.ImageID, LayerID: c.LayerID}, nil
}

// removeStaleAutoRemoved removes the container named name where it is one
// that was to go as it exited (--rm) but whose tug was killed: its record
// says it exited (a running record whose tug is gone reads so), which a
// --rm container's own tug never writes. Docker's daemon would have
// removed it; without one, the next command that wants the name does.
// It reports whether it removed one.
func (s *Store) removeStaleAutoRemoved(name string) bool {
	st, err := s.LookupContainer(name)
	if err != nil || !st.abandoned() || st.Name != name {
		return false
	}
	return s.removeAbandoned(st)
}

// SyncNothingMore tells storage not to sync the files it writes with its
// default options, for the rest of this process. Call it only in a
// process that from then on makes, mounts and removes a volatile container
// (`run --rm`) and nothing else: the files left are the run root's
// mountpoints.json, synced six times a run, which a reboot empties
// anyway. The store's own records (layers.json, containers.json) set their
// sync rules themselves and keep them; images.json and a container's data,
// which take the default, must not be written after this.
func SyncNothingMore() {
	ioutils.SetDefaultOptions(ioutils.AtomicFileWriterOptions{NoSync: true})
}

// NewContainerID returns a random container ID, for a caller that needs
// it before CreateContainer.
func NewContainerID() string { return stringid.GenerateRandomID() }

// MountContainer mounts the container's root filesystem and returns where.
func (s *Store) MountContainer(id string) (string, error) {
	p, err := s.s.Mount(id, "")
	if err != nil {
		return "", fmt.Errorf("mounting the root filesystem of container %s: %w", shortHex(id), rewrite(err))
	}
	return p, nil
}

// ContainerRunDir is a per-container directory under the run root, for
// files tug binds into the container (/etc/hosts, ...).
func (s *Store) ContainerRunDir(id string) (string, error) {
	d, err := s.s.ContainerRunDirectory(id)
	if err != nil {
		return "", fmt.Errorf("finding the run directory of container %s: %w", shortHex(id), err)
	}
	return d, nil
}

// DeleteContainer unmounts the container and removes it with its layer.
// Storage unmounts the layer (every mount of it) in the same locked pass
// that deletes it: an Unmount of its own first would cost a second pass,
// about a millisecond of each `run --rm`.
func (s *Store) DeleteContainer(id string) error {
	err := s.s.DeleteContainer(id)
	if errors.Is(err, unix.ENOTEMPTY) && s.clearStrayMountPoint(id) {
		err = s.s.DeleteContainer(id)
	}
	if err != nil {
		return fmt.Errorf("removing container %s: %w", shortHex(id), err)
	}
	return nil
}

// clearStrayMountPoint removes the empty directories in the bare mount
// point of container id's overlay layer, and reports whether it removed
// any. Storage replaces that directory with an empty one after unmounting
// and fails where it is not empty: an older tug could leave /proc and /dev
// there, made by a container's init after the layer was unmounted (see
// commands' run, which now ends that init first). Nothing is touched
// where the layer is mounted, and only empty directories go.
func (s *Store) clearStrayMountPoint(id string) bool {
	c, err := s.s.Container(id)
	if err != nil || s.s.GraphDriverName() != "overlay" {
		return false
	}
	merged := filepath.Join(s.s.GraphRoot(), "overlay", c.LayerID, "merged")
	var st, parent unix.Stat_t
	if unix.Lstat(merged, &st) != nil || unix.Lstat(filepath.Dir(merged), &parent) != nil || st.Dev != parent.Dev {
		return false
	}
	entries, err := os.ReadDir(merged)
	if err != nil {
		return false
	}
	removed := false
	for _, e := range entries {
		if e.IsDir() && os.Remove(filepath.Join(merged, e.Name())) == nil {
			removed = true
		}
	}
	return removed
}

// ContainerDir is a per-container directory in the graph root, kept across
// reboots: the container's spec and log live there.
func (s *Store) ContainerDir(id string) (string, error) {
	d, err := s.s.ContainerDirectory(id)
	if err != nil {
		return "", fmt.Errorf("finding the directory of container %s: %w", shortHex(id), err)
	}
	return d, nil
}

// ReleaseContainer undoes one MountContainer (the root filesystem stays
// mounted while others use it).
func (s *Store) ReleaseContainer(id string) {
	_, _ = s.s.Unmount(id, false)
}
