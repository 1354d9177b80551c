//go:build e2e

package main_test

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tugcli/tug/fixture"
)

// smallDisk mounts a tmpfs of size (e.g. "24m") owned by u and returns
// its path; the mount goes when the test ends.
func smallDisk(t *testing.T, u fixture.User, size string) string {
	t.Helper()
	fixture.RequireRoot(t)
	dir := fixture.TempDirFor(t, u) // its cleanup unmounts what is under it
	opts := fmt.Sprintf("size=%s,mode=0700,uid=%d,gid=%d", size, u.UID, u.GID)
	fixture.MustRun(t, fixture.Root(), "mount", "-t", "tmpfs", "-o", opts, "tug-e2e-small-disk", dir)
	return dir
}

// TestDiskFull fills a small disk holding the store, by a pull and by
// builds (a COPY, a RUN): each fails with one Error: line that says the
// disk is full, where, and what to do, and leaves the store as it was:
// system check finds nothing wrong, the image pulled before still runs,
// no scratch files are left, and a small build still works; then
// image prune -a, a remedy the errors name, frees the disk.
func TestDiskFull(t *testing.T) {
	big, err := fixture.ImageWithLayers(3, 4<<20, 77)
	if err != nil {
		t.Fatal(err)
	}
	bigRef := registry.Ref("exhaust/big:1")
	if _, err := fixture.Push(big, bigRef); err != nil {
		t.Fatal(err)
	}
	for mode, u := range map[string]fixture.User{"rootless": fixture.RootlessUser(t), "root": fixture.Root()} {
		t.Run(mode, func(t *testing.T) {
			disk := smallDisk(t, u, "10m")
			graphRoot := filepath.Join(disk, "root")
			store := []string{"--root", graphRoot, "--runroot", filepath.Join(fixture.TempDirFor(t, u), "run")}
			mustTug(t, u, store, "pull", "-q", busybox)
			check := func(t *testing.T, base int64) {
				t.Helper()
				checkStoreAfterDiskFull(t, u, store, graphRoot)
				// What a failed command wrote is gone (the store's own
				// files may have grown a little).
				if used := diskUsed(t, disk); used > base+512<<10 {
					t.Errorf("%d KiB more of the disk is used than before", (used-base)>>10)
				}
			}
			base := diskUsed(t, disk)

			t.Run("pull", func(t *testing.T) {
				res := tug(t, u, store, "pull", "-q", bigRef)
				checkDiskFullError(t, res, graphRoot)
				check(t, base)
			})

			t.Run("build COPY", func(t *testing.T) {
				blob := make([]byte, 12<<20)
				rand.Read(blob)
				ctx := buildContext(t, u, map[string]string{
					"Dockerfile": "FROM " + busybox + "\nCOPY blob /blob\n",
					"blob":       string(blob),
				})
				res := tug(t, u, store, "build", "-q", "-t", "full-copy", ctx)
				checkDiskFullError(t, res, graphRoot)
				check(t, base)
			})

			t.Run("build RUN", func(t *testing.T) {
				ctx := buildContext(t, u, map[string]string{
					"Dockerfile": "FROM " + busybox + "\nRUN dd if=/dev/zero of=/fill bs=1M count=64\n",
				})
				res := tug(t, u, store, "build", "-q", "-t", "full-run", ctx)
				if res.Code == 0 {
					t.Fatal("a RUN that fills the disk built")
				}
				if n := strings.Count(res.Stderr, "Error: "); n != 1 {
					t.Errorf("want one Error: line, got %d:\n%s", n, res.Stderr)
				}
				if !strings.Contains(strings.ToLower(res.Stderr), "no space left on device") {
					t.Errorf("the error does not say the disk is full:\n%s", res.Stderr)
				}
				checkDiskFullRemedy(t, res, graphRoot)
				check(t, base)
			})

			t.Run("build RUN commit", func(t *testing.T) {
				// The step's files fit, but not their copy as a layer too.
				ctx := buildContext(t, u, map[string]string{
					"Dockerfile": "FROM " + busybox + "\nRUN dd if=/dev/urandom of=/fill bs=1M count=4\n",
				})
				res := tug(t, u, store, "build", "-q", "-t", "full-commit", ctx)
				checkDiskFullError(t, res, graphRoot)
				check(t, base)
			})

			// The store still takes what fits.
			ctx := buildContext(t, u, map[string]string{"Dockerfile": "FROM " + busybox + "\nRUN echo fits > /fits\n"})
			mustTug(t, u, store, "build", "-q", "-t", "fits", ctx)
			if got := runOut(t, u, store, "--network", "none", "fits", "cat", "/fits"); got != "fits" {
				t.Fatalf("the image built after the disk was full printed %q", got)
			}
			// The remedy the errors name frees the disk.
			before := diskUsed(t, disk)
			pruned := mustTug(t, u, store, "image", "prune", "-a", "-f").Stdout
			if !strings.Contains(pruned, "Deleted Images:") || strings.Count(pruned, "deleted: sha256:") != 2 {
				t.Errorf("image prune -a of busybox and the built image printed:\n%s", pruned)
			}
			if images := mustTug(t, u, store, "images", "-q").Stdout; images != "" {
				t.Errorf("after image prune -a, images are left:\n%s", images)
			}
			if after := diskUsed(t, disk); after >= before {
				t.Errorf("image prune -a freed nothing: %d KiB used before, %d KiB after", before>>10, after>>10)
			}
		})
	}
}

// diskUsed is how many bytes of the file system at dir are used.
func diskUsed(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize
}

// checkDiskFullError checks that a command failed with one Error: line
// naming the full disk's error and a path on it.
func checkDiskFullError(t *testing.T, res fixture.Result, disk string) {
	t.Helper()
	if res.Code == 0 {
		t.Fatalf("succeeded on a full disk:\n%s", res.Stderr)
	}
	t.Logf("stderr: %s", res.Stderr)
	if n := strings.Count(res.Stderr, "Error: "); n != 1 {
		t.Errorf("want one Error: line, got %d:\n%s", n, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "no space left on device") || !strings.Contains(res.Stderr, disk) {
		t.Errorf("the error does not say that the disk holding %s is full:\n%s", disk, res.Stderr)
	}
	if strings.Contains(res.Stderr, "panic") {
		t.Errorf("panicked:\n%s", res.Stderr)
	}
	checkDiskFullRemedy(t, res, disk)
}

// checkDiskFullRemedy checks that a disk-full error says what to do:
// free space where the store graphRoot is, prune, or move the store.
func checkDiskFullRemedy(t *testing.T, res fixture.Result, graphRoot string) {
	t.Helper()
	for _, want := range []string{
		"the file system holding the image store " + graphRoot + " is full: free space on it",
		"'tug system prune'", "'tug image prune -a'", "--root or storage.root",
	} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("the disk-full error lacks %q:\n%s", want, res.Stderr)
		}
	}
}

// checkStoreAfterDiskFull checks that the store is as it was before the
// disk filled up: busybox (and only what was there) runs, system check is
// clean, and no scratch files are left in the graph root.
func checkStoreAfterDiskFull(t *testing.T, u fixture.User, store []string, graphRoot string) {
	t.Helper()
	if got := runOut(t, u, store, "--network", "none", busybox, "echo", "still runs"); got != "still runs" {
		t.Errorf("busybox after the disk was full printed %q", got)
	}
	if res := tug(t, u, store, "system", "check"); res.Code != 0 || !strings.Contains(res.Stdout, "No problems found") {
		t.Errorf("system check after the disk was full: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	for _, dir := range []string{"tug-tmp", "overlay/tempdirs", "overlay-layers/tmp"} {
		left, _ := filepath.Glob(filepath.Join(graphRoot, dir, "*"))
		for _, l := range left {
			if fi, err := os.Stat(l); err == nil && (fi.IsDir() || fi.Size() > 0) {
				t.Errorf("scratch left after the disk was full: %s", l)
			}
		}
	}
}
