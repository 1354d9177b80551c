// Package image is tug's local image store: go.podman.io/storage opened with
// Podman's paths and record conventions, so Podman and tug see one set of
// images. It is the only package that imports storage.
package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"go.podman.io/storage"
	"go.podman.io/storage/types"
	"golang.org/x/sys/unix"
)

// Options choose the store; zero values mean Podman's defaults for the
// user (storage.conf included).
type Options struct {
	GraphRoot string
	RunRoot   string
	Driver    string
	// IgnoreChownErrors makes layers whose files belong to ids the user
	// namespace cannot map unpack owned by root instead of failing, as
	// Podman's ignore_chown_errors does; tug sets it for single-id mapping.
	IgnoreChownErrors bool
}

// Store is the local image store.
type Store struct {
	s      storage.Store
	driver DriverChoice
}

// Open opens the store. For an unprivileged user it must run inside tug's
// user namespace: storage decides there whether native overlay works and
// records that choice in the graph root for good.
func Open(o Options) (*Store, error) {
	def, err := types.DefaultStoreOptions()
	if err != nil {
		return nil, fmt.Errorf("reading storage configuration (storage.conf): %w", err)
	}
	opts := def
	if o.GraphRoot != "" {
		opts.GraphRoot = o.GraphRoot
	}
	if o.RunRoot != "" {
		opts.RunRoot = o.RunRoot
	}
	if o.Driver != "" {
		opts.GraphDriverName = o.Driver
		// Options written for another driver would be refused by this one.
		var keep []string
		for _, opt := range opts.GraphDriverOptions {
			if strings.HasPrefix(opt, o.Driver+".") {
				keep = append(keep, opt)
			}
		}
		opts.GraphDriverOptions = keep
	}
	if o.IgnoreChownErrors {
		opts.GraphDriverOptions = append(opts.GraphDriverOptions,
			"overlay.ignore_chown_errors=true", "vfs.ignore_chown_errors=true")
	}
	for _, dir := range []string{opts.GraphRoot, opts.RunRoot} {
		if err := checkWritableDir(dir); err != nil {
			return nil, err
		}
	}
	choice, record := chooseDriver(&opts, o.Driver, hostProbe)
	s, err := getStore(opts)
	// Storage removes the temporary directories a killed tug left (a
	// pull's layer being unpacked) as it opens the store. The killed
	// tug's unpacking helper gets its SIGTERM when its parent dies, and
	// may add a file to one while it ends: 16 cores showed it. Try again.
	for wait := 10 * time.Millisecond; err != nil && errors.Is(err, unix.ENOTEMPTY) && wait <= 640*time.Millisecond; wait *= 2 {
		time.Sleep(wait)
		s, err = getStore(opts)
	}
	if err != nil {
		return nil, fmt.Errorf("opening image store %s (driver %q): %w", opts.GraphRoot, opts.GraphDriverName, rewrite(err))
	}
	if record {
		if err := writeDriverRecord(opts.GraphRoot, choice); err != nil {
			s.Shutdown(false)
			return nil, err
		}
	}
	st := &Store{s: s, driver: choice}
	st.dropHalfImages()
	return st, nil
}

// getStore calls storage.GetStore, turning its panics (it panics when a
// lock file cannot be opened) into errors.
func getStore(opts types.StoreOptions) (s storage.Store, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return storage.GetStore(opts)
}

// checkWritableDir fails with the path and the fix when dir, or the nearest
// existing parent it would be created in, cannot be written by us.
func checkWritableDir(dir string) error {
	d := dir
	for {
		if _, err := os.Stat(d); err == nil {
			break
		}
		parent := filepath.Dir(d)
		if parent == d {
			return nil
		}
		d = parent
	}
	if err := unix.Access(d, unix.W_OK|unix.X_OK); err != nil {
		owner := ""
		var st unix.Stat_t
		if unix.Stat(d, &st) == nil {
			owner = fmt.Sprintf(" (owned by uid %d, mode %o)", st.Uid, st.Mode&0o7777)
			if st.Uid == overflowID {
				// Inside a user namespace, unmapped owners show as the
				// overflow id.
				owner = fmt.Sprintf(" (owned by root or another user, mode %o)", st.Mode&0o7777)
			}
		}
		return fmt.Errorf("store directory %s is not writable%s: %w: fix its ownership or pass --root and --runroot to use another directory", d, owner, err)
	}
	return nil
}

// overflowID is what an id outside the user namespace's maps reads as.
const overflowID = 65534

// rewrite replaces advice that names Podman with advice for tug.
func rewrite(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if strings.Contains(msg, "several valid graphdrivers") {
		return fmt.Errorf("%s: choose one with --storage-driver, or set driver in ~/.config/containers/storage.conf", firstLine(msg))
	}
	if strings.Contains(msg, "podman system migrate") || strings.Contains(msg, "insufficient UIDs or GIDs") {
		return fmt.Errorf("%s: the image has files owned by ids this user namespace does not map; add a subordinate id range for your user to /etc/subuid and /etc/subgid (sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $USER)", firstLine(msg))
	}
	return err
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Close releases the store, unmounting what this process mounted.
func (s *Store) Close() error {
	_, err := s.s.Shutdown(false)
	if errors.Is(err, storage.ErrLayerUsedByContainer) {
		// Layers that containers run by other tug processes keep mounted.
		return nil
	}
	return err
}

// GraphRoot is the store's graph root.
func (s *Store) GraphRoot() string { return s.s.GraphRoot() }

// StoreInfo describes the store for `tug info`.
type StoreInfo struct {
	GraphRoot    string
	RunRoot      string
	Driver       string
	DriverChoice DriverChoice
	DriverStatus [][2]string
	Images       int
	Containers   int
}

// Info reports where the store is and how it is kept.
func (s *Store) Info() (StoreInfo, error) {
	info := StoreInfo{GraphRoot: s.s.GraphRoot(), RunRoot: s.s.RunRoot(), Driver: s.s.GraphDriverName(), DriverChoice: s.driver}
	st, err := s.s.Status()
	if err != nil {
		return info, fmt.Errorf("reading storage driver status: %w", err)
	}
	info.DriverStatus = st
	imgs, err := s.s.Images()
	if err != nil {
		return info, fmt.Errorf("listing images: %w", err)
	}
	info.Images = len(imgs)
	ctrs, err := s.s.Containers()
	if err != nil {
		return info, fmt.Errorf("listing containers: %w", err)
	}
	info.Containers = len(ctrs)
	return info, nil
}

// ErrNotFound is returned when no image matches a reference.
var ErrNotFound = errors.New("no such image")

// dropHalfImages removes image records without their config. Storage
// saves a new image's record before it writes the image's data (its
// config, manifests): a tug killed between the two leaves a record that
// every later command would trip over. A live writer holds the images
// lock across both, so only a dead one's leftovers are seen here.
func (s *Store) dropHalfImages() {
	imgs, err := s.s.Images()
	if err != nil {
		return
	}
	for _, img := range imgs {
		// tug and Podman write the config first: a record with no data
		// at all is one whose writer died before any was written.
		if len(img.BigDataNames) > 0 {
			continue
		}
		if _, err := s.s.ImageBigData(img.ID, "sha256:"+img.ID); err == nil {
			continue
		}
		logrus.Debugf("removing image %s: its record has no config (a tug was killed while storing it)", shortHex(img.ID))
		_, _ = s.s.DeleteImage(img.ID, true)
	}
}
