package build

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/tugcli/tug/image"
)

// PruneReport is what Prune removed.
type PruneReport struct {
	// Deleted are the ids of the cache records and cache mounts removed.
	Deleted []string
	// Reclaimed is the bytes freed: layers, records and cache mounts.
	Reclaimed int64
	// Busy says the cache was kept because a build was running.
	Busy bool
}

// lockBuilds takes the store's build lock: shared by every running build,
// exclusive for Prune, so that a prune never removes the cache records,
// layers or cache mounts of a build under way. A flock(2) lock: a killed
// build holds none.
func lockBuilds(store *image.Store, how int) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(store.GraphRoot(), "tug-builds.lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking the build cache: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Prune removes the build cache: the step records whose layers no image
// uses, with those layers (all records with all, and then also the
// RUN --mount=type=cache directories). Layers an image or a container
// still holds stay. It assumes no build runs at the same time.
func Prune(store *image.Store, all bool) (*PruneReport, error) {
	lock, err := lockBuilds(store, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return &PruneReport{Busy: true}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("locking the build cache: %w", err)
	}
	defer lock.Close()
	b := &builder{store: store}
	used, err := store.UsedLayers()
	if err != nil {
		return nil, err
	}
	rep := &PruneReport{}
	ents, err := os.ReadDir(b.cacheDir())
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("reading the build cache: %w", err)
	}
	var candidates []string
	for _, e := range ents {
		p := filepath.Join(b.cacheDir(), e.Name())
		if strings.Contains(e.Name(), ".tmp") { // a record a killed build left half-written
			rep.Reclaimed += fileSize(p)
			_ = os.Remove(p)
			continue
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading the build cache: %w", err)
		}
		var r cacheRecord
		if json.Unmarshal(raw, &r) == nil && r.Top != "" && used[r.Top] && !all {
			continue
		}
		if err := os.Remove(p); err != nil {
			return nil, fmt.Errorf("removing a build cache record: %w", err)
		}
		rep.Deleted = append(rep.Deleted, e.Name())
		rep.Reclaimed += int64(len(raw))
		if r.Top != "" {
			candidates = append(candidates, r.Top)
		}
	}
	freed, err := store.PruneLayers(candidates)
	rep.Reclaimed += freed
	if err != nil {
		return rep, err
	}
	if all {
		mounts, err := os.ReadDir(b.cacheMountsDir())
		if err != nil && !os.IsNotExist(err) {
			return rep, fmt.Errorf("reading the cache mounts: %w", err)
		}
		for _, e := range mounts {
			p := filepath.Join(b.cacheMountsDir(), e.Name())
			rep.Reclaimed += treeSize(p)
			if err := os.RemoveAll(p); err != nil {
				return rep, fmt.Errorf("removing cache mount: %w", err)
			}
			if e.IsDir() {
				rep.Deleted = append(rep.Deleted, e.Name())
			}
		}
	}
	sort.Strings(rep.Deleted)
	return rep, nil
}

func fileSize(p string) int64 {
	fi, err := os.Lstat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func treeSize(root string) int64 {
	var n int64
	_ = filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
