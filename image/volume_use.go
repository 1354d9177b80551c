package image

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// VolumeOf says which named volume a host path (a bind mount's source)
// is, if any.
func (s *Store) VolumeOf(path string) (string, bool) {
	rel, err := filepath.Rel(s.volumeRoot(), path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", false
	}
	name, rest, _ := strings.Cut(filepath.ToSlash(rel), "/")
	if rest != "_data" && !strings.HasPrefix(rest, "_data/") {
		return "", false
	}
	return name, true
}

// VolumesInUse are the volumes some container (running or not) uses, by
// name, with the container that uses each.
func (s *Store) VolumesInUse() (map[string]string, error) {
	states, err := s.ContainerStates()
	if err != nil {
		return nil, err
	}
	used := map[string]string{}
	for _, st := range states {
		for _, v := range st.Volumes {
			used[v] = st.Name
		}
	}
	return used, nil
}

// PruneVolumes removes every volume no container uses and returns their
// names.
func (s *Store) PruneVolumes() ([]string, error) {
	used, err := s.VolumesInUse()
	if err != nil {
		return nil, err
	}
	vols, err := s.Volumes()
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, v := range vols {
		if _, ok := used[v.Name]; ok {
			continue
		}
		if err := s.RemoveVolume(v.Name); err != nil {
			return removed, err
		}
		removed = append(removed, v.Name)
	}
	return removed, nil
}

// Reset removes everything the store holds: containers (running ones are
// killed first), images, layers, volumes, build and push caches. The
// store is closed and must not be used afterwards.
func (s *Store) Reset() error {
	states, err := s.ContainerStates()
	if err != nil {
		return err
	}
	for _, st := range states {
		if _, err := s.RemoveContainer(st.ID, true); err != nil {
			return fmt.Errorf("system reset: %w", err)
		}
	}
	graph, run := s.s.GraphRoot(), s.s.RunRoot()
	if _, err := s.s.Shutdown(true); err != nil {
		return fmt.Errorf("system reset: unmounting the store: %w", err)
	}
	for _, dir := range []string{graph, run} {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("system reset: removing %s: %w", dir, err)
		}
	}
	return nil
}
