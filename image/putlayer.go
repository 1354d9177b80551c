package image

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"go.podman.io/storage"
)

// stagingTries is how many times a layer is applied when storage loses
// the directory it was applying it in (see stagingGone).
const stagingTries = 3

// stagingGone reports whether a failed PutLayer lost its staging
// directory to another process. go.podman.io/storage (v1.65) unpacks a
// layer in a temporary directory under a lock that it creates and takes
// in two steps; another tug opening the store in between can take that
// directory for a dead process's and remove it while the layer is being
// unpacked there. The unpacking then fails with ENOENT ("mkdir /data: no
// such file or directory" from storage's chrooted helper, or "rename
// .../temp-dir-N/0-addition ...: no such file or directory"), and
// applying the layer again works. Podman shares that storage code and
// the race.
func stagingGone(err error) bool {
	if err == nil || layerGone(err) {
		return false
	}
	return errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "no such file or directory")
}

// chrootRefused reports whether storage's layer unpacker failed because
// it may not chroot (its re-exec'd helper reports "chroot: operation not
// permitted" as text).
func chrootRefused(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "chroot") && strings.Contains(msg, "operation not permitted")
}

// putLayerFile stores the layer tar (plain or compressed) in f as id on
// parent, applying it again when another process removed storage's
// staging directory under it. A layer stored meanwhile by another
// process counts as stored.
func (s *Store) putLayerFile(id, parent string, opts *storage.LayerOptions, f *os.File) error {
	for try := 1; ; try++ {
		_, _, err := s.s.PutLayer(id, parent, nil, "", false, opts, f)
		if errors.Is(err, storage.ErrDuplicateID) {
			return nil
		}
		if chrootRefused(err) {
			return fmt.Errorf("%w: storage unpacks layers in a chroot, and this process may not chroot (no CAP_SYS_CHROOT, as in a container started with --cap-drop SYS_CHROOT); run tug where it has CAP_SYS_CHROOT", err)
		}
		if !stagingGone(err) || try == stagingTries {
			return err
		}
		if _, serr := f.Seek(0, io.SeekStart); serr != nil {
			return err
		}
	}
}
