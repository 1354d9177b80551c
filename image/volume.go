package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Volume is a named volume: a directory kept in the store where Podman
// keeps volumes (GRAPHROOT/volumes/NAME/_data).
type Volume struct {
	Name       string
	Driver     string
	Mountpoint string
	CreatedAt  time.Time
	Labels     map[string]string
	Scope      string
	Options    map[string]string
}

var volumeName = lazyRegexp(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// ErrNoSuchVolume is returned for a volume that does not exist.
var ErrNoSuchVolume = errors.New("no such volume")

func (s *Store) volumeRoot() string { return filepath.Join(s.s.GraphRoot(), "volumes") }

// CreateVolume creates the named volume, or returns it if it exists.
func (s *Store) CreateVolume(name string) (*Volume, error) {
	if !volumeName().MatchString(name) {
		return nil, fmt.Errorf("invalid volume name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	data := filepath.Join(s.volumeRoot(), name, "_data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, fmt.Errorf("creating volume %s: %w", name, err)
	}
	return s.Volume(name)
}

// Volume describes one volume.
func (s *Store) Volume(name string) (*Volume, error) {
	data := filepath.Join(s.volumeRoot(), name, "_data")
	fi, err := os.Stat(data)
	if os.IsNotExist(err) || !volumeName().MatchString(name) {
		return nil, fmt.Errorf("%s: %w", name, ErrNoSuchVolume)
	}
	if err != nil {
		return nil, fmt.Errorf("reading volume %s: %w", name, err)
	}
	return &Volume{Name: name, Driver: "local", Mountpoint: data, CreatedAt: fi.ModTime(),
		Labels: map[string]string{}, Scope: "local", Options: map[string]string{}}, nil
}

// Volumes lists every volume by name.
func (s *Store) Volumes() ([]*Volume, error) {
	entries, err := os.ReadDir(s.volumeRoot())
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing volumes: %w", err)
	}
	var out []*Volume
	for _, e := range entries {
		if v, err := s.Volume(e.Name()); err == nil {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// RemoveVolume deletes a volume and its data; a volume a container uses
// is refused, as Docker refuses it.
func (s *Store) RemoveVolume(name string) error {
	if _, err := s.Volume(name); err != nil {
		return err
	}
	used, err := s.VolumesInUse()
	if err != nil {
		return err
	}
	if ctr, ok := used[name]; ok {
		return fmt.Errorf("remove %s: volume is in use by container %s: remove the container first", name, ctr)
	}
	if err := os.RemoveAll(filepath.Join(s.volumeRoot(), name)); err != nil {
		return fmt.Errorf("removing volume %s: %w", name, err)
	}
	return nil
}

// MarshalJSON writes a volume the way docker volume inspect does.
func (v *Volume) MarshalJSON() ([]byte, error) {
	type alias Volume
	return json.Marshal(&struct {
		*alias
		CreatedAt string
	}{(*alias)(v), v.CreatedAt.Format(time.RFC3339)})
}
