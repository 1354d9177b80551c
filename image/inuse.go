package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// A build holds the images it builds on (FROM, COPY --from, RUN --mount
// from=) with a shared lock on a file named after each; removing an image
// (tug rmi, image prune) takes that lock exclusively and is refused while
// a build holds it, as Docker refuses to remove an image a running
// container uses. Without it, an rmi between a build's steps deleted the
// base's layers under the build ("storing layer: layer not known").
// The locks are flock(2) locks: a killed build holds none.

// ErrUsedByBuild is returned when a running build uses the image to be
// removed.
var ErrUsedByBuild = errors.New("image is being used by a running build")

func (s *Store) inUseFile(id string) (string, error) {
	dir := filepath.Join(s.GraphRoot(), "tug-images-in-use")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("marking image %s in use: %w", shortHex(id), err)
	}
	return filepath.Join(dir, id), nil
}

// UseImage keeps the image id from being removed by another tug until
// release is called. It waits for a removal under way, and returns an
// error wrapping ErrNotFound if the image is gone.
func (s *Store) UseImage(id string) (release func(), err error) {
	p, err := s.inUseFile(id)
	if err != nil {
		return nil, err
	}
	for {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("marking image %s in use: %w", shortHex(id), err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
			f.Close()
			return nil, fmt.Errorf("marking image %s in use: %w", shortHex(id), err)
		}
		// A removal that held the lock meanwhile unlinked the file: lock
		// the one that is there now.
		held, err1 := f.Stat()
		now, err2 := os.Stat(p)
		if err1 != nil || err2 != nil || !os.SameFile(held, now) {
			f.Close()
			continue
		}
		if _, err := s.s.Image(id); err != nil {
			f.Close()
			return nil, fmt.Errorf("image %s: %w", shortHex(id), ErrNotFound)
		}
		return func() { f.Close() }, nil
	}
}

// lockForRemoval takes id's in-use lock exclusively, or fails with
// ErrUsedByBuild; unlock removes the lock file and releases it.
func (s *Store) lockForRemoval(id string) (unlock func(), err error) {
	p, err := s.inUseFile(id)
	if err != nil {
		return nil, err
	}
	var f *os.File
	for {
		f, err = os.OpenFile(p, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("locking image %s: %w", shortHex(id), err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, ErrUsedByBuild
			}
			return nil, fmt.Errorf("locking image %s: %w", shortHex(id), err)
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(p)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			break
		}
		f.Close() // another removal unlinked it meanwhile
	}
	return func() {
		// Unlinked while locked: a build waiting on this file retries
		// with a new one (UseImage) and finds the image gone.
		_ = os.Remove(p)
		f.Close()
	}, nil
}
