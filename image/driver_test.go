package image

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.podman.io/storage/types"
)

func TestChooseDriver(t *testing.T) {
	refused := errors.New("mount -t overlay: operation not permitted")
	works := func(string) error { return nil }
	fails := func(string) error { return refused }
	fuseWorks := func(string) (string, error) { return "/usr/bin/fuse-overlayfs", nil }
	fuseFails := func(string) (string, error) { return "", errors.New("/dev/fuse: permission denied") }

	for _, tc := range []struct {
		name       string
		flag       string
		conf       string // storage.conf's driver
		options    []string
		dirs       []string // in the graph root beforehand
		record     string   // tug-storage-driver.json beforehand
		probe      driverProbe
		wantDriver string
		wantMount  string
		wantReason string
		wantRecord bool
	}{
		{name: "native overlay", probe: driverProbe{works, fuseFails},
			wantDriver: "overlay", wantReason: "native overlay mounts", wantRecord: true},
		{name: "fuse-overlayfs", probe: driverProbe{fails, fuseWorks},
			wantDriver: "overlay", wantMount: "/usr/bin/fuse-overlayfs", wantReason: "native overlay refused: mount -t overlay: operation not permitted; fuse-overlayfs works", wantRecord: true},
		{name: "vfs", probe: driverProbe{fails, fuseFails},
			wantDriver: "vfs", wantReason: "fuse-overlayfs unusable: /dev/fuse: permission denied", wantRecord: true},
		{name: "flag wins and is recorded on a new store", flag: "vfs", probe: driverProbe{works, fuseWorks},
			wantDriver: "vfs", wantReason: "--storage-driver", wantRecord: true},
		{name: "flag on a store with layers is not recorded", flag: "vfs", dirs: []string{"overlay"},
			wantDriver: "vfs", wantReason: "--storage-driver"},
		{name: "storage.conf", conf: "overlay", probe: driverProbe{fails, fuseFails},
			wantDriver: "overlay", wantReason: "storage.conf"},
		{name: "record", record: `{"driver":"overlay","mountProgram":"/usr/bin/fuse-overlayfs","reason":"chosen before"}`,
			wantDriver: "overlay", wantMount: "/usr/bin/fuse-overlayfs", wantReason: "chosen before"},
		{name: "existing vfs store", dirs: []string{"vfs"}, probe: driverProbe{works, fuseWorks},
			wantDriver: "vfs", wantReason: "already holds vfs layers", wantRecord: true},
		{name: "two drivers: storage decides", dirs: []string{"vfs", "overlay"},
			wantDriver: "", wantReason: "overlay and vfs"},
		{name: "mount_program configured", options: []string{"overlay.mount_program=/opt/fuse-overlayfs"}, probe: driverProbe{works, fuseWorks},
			wantDriver: "overlay", wantReason: "mount_program", wantRecord: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for _, d := range tc.dirs {
				os.MkdirAll(filepath.Join(root, d), 0o700)
			}
			if tc.record != "" {
				os.WriteFile(filepath.Join(root, driverRecordFile), []byte(tc.record), 0o600)
			}
			opts := types.StoreOptions{GraphRoot: root, GraphDriverName: tc.conf, GraphDriverOptions: tc.options}
			c, rec := chooseDriver(&opts, tc.flag, tc.probe)
			if c.Driver != tc.wantDriver || opts.GraphDriverName != tc.wantDriver || c.MountProgram != tc.wantMount || rec != tc.wantRecord {
				t.Fatalf("chose %+v (record %t), opts driver %q; want %q mount %q record %t", c, rec, opts.GraphDriverName, tc.wantDriver, tc.wantMount, tc.wantRecord)
			}
			if !strings.Contains(c.String(), tc.wantReason) {
				t.Fatalf("choice %q does not say %q", c, tc.wantReason)
			}
			if tc.wantMount != "" && !strings.Contains(strings.Join(opts.GraphDriverOptions, " "), "overlay.mount_program="+tc.wantMount) {
				t.Fatalf("options %v lack the mount program", opts.GraphDriverOptions)
			}
			if rec {
				if err := writeDriverRecord(root, c); err != nil {
					t.Fatal(err)
				}
				back, err := readDriverRecord(root)
				if err != nil || back.Driver != c.Driver || back.MountProgram != c.MountProgram || back.Reason != c.Reason {
					t.Fatalf("record read back as %+v, %v; wrote %+v", back, err, c)
				}
				// The next open uses the record, whatever the host does now.
				again := types.StoreOptions{GraphRoot: root}
				c2, rec2 := chooseDriver(&again, "", driverProbe{fails, fuseFails})
				if c2.Driver != c.Driver || rec2 || c2.Source != "store record" {
					t.Fatalf("second choice %+v (record %t), want the recorded %s", c2, rec2, c.Driver)
				}
				left, _ := filepath.Glob(filepath.Join(root, "*"))
				if len(left) != 1+len(tc.dirs) {
					t.Fatalf("graph root holds %v", left)
				}
			}
		})
	}
}

// The real probes on this machine, as root (they mount).
func TestProbesHere(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the probes mount; run as root")
	}
	root := t.TempDir()
	nerr := probeNativeOverlay(root)
	t.Logf("native overlay: %v", nerr)
	prog, ferr := probeFuseOverlayfs(root)
	t.Logf("fuse-overlayfs: %q %v", prog, ferr)
	if left, _ := os.ReadDir(root); len(left) != 0 {
		t.Fatalf("probes left %v behind", left)
	}
}
