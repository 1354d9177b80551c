package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"go.podman.io/storage"
)

// CheckResult is what `tug system check` found, by object.
type CheckResult struct {
	Layers     map[string][]error
	Images     map[string][]error
	Containers map[string][]error
	// Repaired lists what --repair removed.
	Repaired []string
}

// Clean reports whether nothing is damaged.
func (r *CheckResult) Clean() bool {
	return len(r.Layers) == 0 && len(r.Images) == 0 && len(r.Containers) == 0
}

// Check verifies the store: layers present and matching their recorded
// digests, images' layers present, containers' images and layers present.
// With repair, damaged layers and images (and, with removeContainers,
// damaged containers) are removed; images that were whole stay.
func (s *Store) Check(repair, removeContainers bool) (*CheckResult, error) {
	report, err := s.s.Check(storage.CheckMost())
	if err != nil {
		return nil, fmt.Errorf("checking the store: %w", err)
	}
	res := &CheckResult{Layers: map[string][]error{}, Images: map[string][]error{}, Containers: map[string][]error{}}
	for id, errs := range report.Layers {
		res.Layers[id] = errs
	}
	for id, errs := range report.ROLayers {
		res.Layers[id] = append(res.Layers[id], errs...)
	}
	for id, errs := range report.Images {
		res.Images[id] = errs
	}
	for id, errs := range report.ROImages {
		res.Images[id] = append(res.Images[id], errs...)
	}
	for id, errs := range report.Containers {
		res.Containers[id] = errs
	}
	if repair && !res.Clean() {
		errs := s.s.Repair(report, &storage.RepairOptions{RemoveContainers: removeContainers})
		if len(errs) > 0 {
			return res, fmt.Errorf("repairing the store: %v", errs)
		}
		for id := range res.Images {
			res.Repaired = append(res.Repaired, "image "+id)
		}
		for id := range res.Layers {
			res.Repaired = append(res.Repaired, "layer "+id)
		}
		if removeContainers {
			for id := range res.Containers {
				res.Repaired = append(res.Repaired, "container "+id)
			}
		}
		sort.Strings(res.Repaired)
	}
	return res, nil
}

// Usage is `tug system df`: what images, containers, volumes and the build
// cache take.
type Usage struct {
	Images, ActiveImages          int
	ImagesSize                    int64
	Containers, RunningContainers int
	ContainersSize                int64
	Volumes                       int
	VolumesSize                   int64
	BuildCacheSize                int64
}

// DiskUsage adds up what the store holds.
func (s *Store) DiskUsage() (*Usage, error) {
	u := &Usage{}
	imgs, err := s.s.Images()
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", err)
	}
	ctrs, err := s.ContainerStates()
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, c := range ctrs {
		used[c.ImageID] = true
		u.Containers++
		if c.Running() {
			u.RunningContainers++
		}
		if sc, err := s.s.Container(c.ID); err == nil {
			if n, err := s.s.DiffSize("", sc.LayerID); err == nil {
				u.ContainersSize += n
			}
		}
	}
	seen := map[string]bool{}
	for _, img := range imgs {
		u.Images++
		if used[img.ID] {
			u.ActiveImages++
		}
		for id := img.TopLayer; id != "" && !seen[id]; {
			seen[id] = true
			l, err := s.s.Layer(id)
			if err != nil {
				break
			}
			u.ImagesSize += l.UncompressedSize
			id = l.Parent
		}
	}
	vols, err := s.Volumes()
	if err != nil {
		return nil, err
	}
	for _, v := range vols {
		u.Volumes++
		u.VolumesSize += dirSize(v.Mountpoint)
	}
	u.BuildCacheSize = dirSize(filepath.Join(s.GraphRoot(), "tug-build-cache-mounts"))
	return u, nil
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// PruneImages removes dangling images (no names), or with all every image
// no container uses. It returns the ids removed.
func (s *Store) PruneImages(all bool) ([]string, error) {
	imgs, err := s.s.Images()
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", err)
	}
	ctrs, err := s.s.Containers()
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	used := map[string]bool{}
	for _, c := range ctrs {
		used[c.ImageID] = true
	}
	var removed []string
	for _, img := range imgs {
		if used[img.ID] || (!all && len(img.Names) > 0) {
			continue
		}
		unlock, err := s.lockForRemoval(img.ID)
		if errors.Is(err, ErrUsedByBuild) {
			continue // a running build's base
		}
		if err != nil {
			return removed, err
		}
		_, err = s.s.DeleteImage(img.ID, true)
		unlock()
		if errors.Is(err, storage.ErrImageUnknown) {
			continue // another tug removed it since it was listed
		}
		if err != nil {
			return removed, fmt.Errorf("removing image %s: %w", shortHex(img.ID), err)
		}
		removed = append(removed, img.ID)
	}
	return removed, nil
}
