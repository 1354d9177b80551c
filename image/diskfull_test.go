package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A full disk or quota, however it is reported, gets what to do: on the
// store's file system, free space, the prune commands, or --root and
// storage.root; elsewhere, free space there. Other errors stay as they
// are, and the cause stays inspectable.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "root")
	storeRemedy := []string{"the file system holding the image store " + root + " is full", "tug system prune", "tug image prune -a", "--root", "storage.root"}
	for _, tc := range []struct {
		name string
		err  error
		want []string // nil: err unchanged
	}{
		{"nil", nil, nil},
		{"another error", errors.New("permission denied"), nil},
		// ENOSPC that is a kernel limit, not a disk.
		{"namespace limit", fmt.Errorf("creating a namespace for tug: %w", &os.SyscallError{Syscall: "clone", Err: syscall.ENOSPC}), nil},
		{"starting a process", fmt.Errorf("starting container: %w", &fs.PathError{Op: "fork/exec", Path: "/proc/self/exe", Err: syscall.ENOSPC}), nil},
		{"ENOSPC writing in the store", fmt.Errorf("fetching layer: %w", &fs.PathError{Op: "write", Path: filepath.Join(root, "tug-tmp", "pull-1", "0"), Err: syscall.ENOSPC}), storeRemedy},
		{"EDQUOT", fmt.Errorf("committing: %w", syscall.EDQUOT), storeRemedy},
		{"text only: a container's command", errors.New("RUN dd ...: dd: error writing '/fill': No space left on device"), storeRemedy},
		{"elsewhere: another file system", &fs.PathError{Op: "write", Path: "/proc/tug-test/out.tar", Err: syscall.ENOSPC}, []string{"the file system holding /proc/tug-test/out.tar is full: free space on it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := DiskFull(tc.err, root)
			if tc.want == nil {
				if got != tc.err {
					t.Fatalf("DiskFull changed %v into %v", tc.err, got)
				}
				return
			}
			var df *DiskFullError
			if !errors.As(got, &df) || !strings.HasPrefix(got.Error(), tc.err.Error()+" (") {
				t.Fatalf("DiskFull(%v) = %v, want a DiskFullError that starts with the error", tc.err, got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got.Error(), w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
			if !errors.Is(got, tc.err) {
				t.Errorf("the cause is lost: %v", got)
			}
			if again := DiskFull(got, root); again != got {
				t.Errorf("DiskFull twice says it twice: %v", again)
			}
		})
	}
	if got := DiskFull(syscall.ENOSPC, ""); !strings.Contains(got.Error(), "the file system holding the image store is full") {
		t.Errorf("without a root: %v", got)
	}
}
