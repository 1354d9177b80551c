package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	graphdriver "go.podman.io/storage/drivers"
	"go.podman.io/storage/pkg/unshare"
	"go.podman.io/storage/types"
	"golang.org/x/sys/unix"
)

// driverRecordFile is where, in the graph root, tug keeps the driver it
// chose for a store it created and why, so that every later command uses
// the same one even if the host changes (a store's layers are only
// readable by the driver that wrote them).
const driverRecordFile = "tug-storage-driver.json"

// DriverChoice is the storage driver a store is opened with, and why.
type DriverChoice struct {
	Driver string `json:"driver"`
	// MountProgram is fuse-overlayfs's path when overlay runs through it.
	MountProgram string `json:"mountProgram,omitempty"`
	Reason       string `json:"reason"`
	// Source says where the choice came from: "--storage-driver",
	// "$STORAGE_DRIVER", "storage.conf", "store record", "existing
	// layers" or "probe". It is not recorded.
	Source string `json:"-"`
}

// String is "DRIVER (REASON)", for `tug info` and --debug.
func (c DriverChoice) String() string {
	d := c.Driver
	if d == "" {
		d = "storage's default"
	}
	if c.MountProgram != "" {
		d += " with " + filepath.Base(c.MountProgram)
	}
	return d + " (" + c.Reason + ")"
}

// driverProbe is what chooseDriver tries on a new store; tests replace it.
type driverProbe struct {
	nativeOverlay func(graphRoot string) error
	fuseOverlayfs func(graphRoot string) (string, error)
}

var hostProbe = driverProbe{nativeOverlay: probeNativeOverlay, fuseOverlayfs: probeFuseOverlayfs}

// chooseDriver settles which driver opts will open the store with, when
// neither --storage-driver (flag), $STORAGE_DRIVER nor storage.conf names
// one: the driver recorded in the store, else the one whose layers the
// store already holds, else the first of native overlay, overlay through
// fuse-overlayfs, and vfs that works on this host. It sets
// opts.GraphDriverName (and fuse-overlayfs as overlay's mount program) and
// reports whether the choice is new and should be recorded once the store
// opens.
func chooseDriver(opts *types.StoreOptions, flag string, p driverProbe) (DriverChoice, bool) {
	switch {
	case flag != "":
		c := DriverChoice{Driver: flag, Reason: "chosen with --storage-driver", Source: "--storage-driver"}
		opts.GraphDriverName = flag
		_, err := readDriverRecord(opts.GraphRoot)
		return c, errors.Is(err, os.ErrNotExist) && len(priorDrivers(opts.GraphRoot)) == 0
	case opts.GraphDriverName != "" && os.Getenv("STORAGE_DRIVER") == opts.GraphDriverName:
		return DriverChoice{Driver: opts.GraphDriverName, Reason: "set by $STORAGE_DRIVER", Source: "$STORAGE_DRIVER"}, false
	case opts.GraphDriverName != "":
		return DriverChoice{Driver: opts.GraphDriverName, Reason: "set in storage.conf", Source: "storage.conf"}, false
	case len(opts.GraphDriverPriority) > 0:
		return DriverChoice{Reason: "the first that works of storage.conf's driver_priority " + strings.Join(opts.GraphDriverPriority, ", "), Source: "storage.conf"}, false
	}
	if rec, err := readDriverRecord(opts.GraphRoot); err == nil {
		rec.Source = "store record"
		applyDriver(opts, rec)
		return rec, false
	}
	switch prior := priorDrivers(opts.GraphRoot); len(prior) {
	case 0:
	case 1:
		c := DriverChoice{Driver: prior[0], Reason: "the store already holds " + prior[0] + " layers", Source: "existing layers"}
		applyDriver(opts, c)
		return c, true
	default:
		// storage refuses to guess; its error, rewritten, says what to do.
		return DriverChoice{Reason: "the store holds layers of " + strings.Join(prior, " and "), Source: "existing layers"}, false
	}
	for _, o := range opts.GraphDriverOptions {
		if strings.HasPrefix(o, "overlay.mount_program=") || strings.HasPrefix(o, ".mount_program=") {
			c := DriverChoice{Driver: "overlay", Reason: "storage.conf sets overlay's mount_program", Source: "storage.conf"}
			applyDriver(opts, c)
			return c, true
		}
	}
	c := probeDrivers(opts.GraphRoot, p)
	applyDriver(opts, c)
	return c, true
}

// probeDrivers tries native overlay, then fuse-overlayfs, then settles for
// vfs, saying why each one that failed did.
func probeDrivers(graphRoot string, p driverProbe) DriverChoice {
	where := "as root"
	if unshare.IsRootless() {
		where = "in tug's user namespace"
	}
	nerr := p.nativeOverlay(graphRoot)
	if nerr == nil {
		return DriverChoice{Driver: "overlay", Reason: "native overlay mounts " + where, Source: "probe"}
	}
	prog, ferr := p.fuseOverlayfs(graphRoot)
	if ferr == nil {
		return DriverChoice{Driver: "overlay", MountProgram: prog, Reason: "native overlay refused: " + nerr.Error() + "; fuse-overlayfs works", Source: "probe"}
	}
	return DriverChoice{Driver: "vfs", Reason: "native overlay refused: " + nerr.Error() + "; fuse-overlayfs unusable: " + ferr.Error(), Source: "probe"}
}

func applyDriver(opts *types.StoreOptions, c DriverChoice) {
	opts.GraphDriverName = c.Driver
	if c.MountProgram != "" {
		opts.GraphDriverOptions = append(opts.GraphDriverOptions, "overlay.mount_program="+c.MountProgram)
	}
}

// priorDrivers lists the drivers whose directories the graph root holds,
// as storage's ScanPriorDrivers finds them.
func priorDrivers(graphRoot string) []string {
	var out []string
	for _, d := range []string{"overlay", "vfs", "btrfs", "zfs"} {
		if _, err := os.Stat(filepath.Join(graphRoot, d)); err == nil {
			out = append(out, d)
		}
	}
	return out
}

func readDriverRecord(graphRoot string) (DriverChoice, error) {
	var c DriverChoice
	b, err := os.ReadFile(filepath.Join(graphRoot, driverRecordFile))
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Driver == "" {
		return c, fmt.Errorf("reading %s: not a driver record", filepath.Join(graphRoot, driverRecordFile))
	}
	return c, nil
}

// writeDriverRecord records c in the graph root, atomically.
func writeDriverRecord(graphRoot string, c DriverChoice) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(graphRoot, "."+driverRecordFile+"-")
	if err != nil {
		return fmt.Errorf("recording the storage driver: %w", err)
	}
	defer os.Remove(f.Name())
	_, werr := f.Write(append(b, '\n'))
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("recording the storage driver: %w", err)
	}
	if err := os.Rename(f.Name(), filepath.Join(graphRoot, driverRecordFile)); err != nil {
		return fmt.Errorf("recording the storage driver: %w", err)
	}
	return nil
}

// probeDirs makes lower1, lower2 (with a file), upper, work and merged in
// a new directory under graphRoot, on the file system the layers will be
// on, and returns it and overlay's mount data for them.
func probeDirs(graphRoot string) (dir, data string, err error) {
	if err := os.MkdirAll(graphRoot, 0o700); err != nil {
		return "", "", err
	}
	dir, err = os.MkdirTemp(graphRoot, "tug-driver-probe-")
	if err != nil {
		return "", "", err
	}
	for _, d := range []string{"lower1", "lower2/sub", "upper", "work", "merged"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			os.RemoveAll(dir)
			return "", "", err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "lower2/sub/file"), nil, 0o600); err != nil {
		os.RemoveAll(dir)
		return "", "", err
	}
	data = fmt.Sprintf("lowerdir=%s:%s,upperdir=%s,workdir=%s",
		filepath.Join(dir, "lower1"), filepath.Join(dir, "lower2"), filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	return dir, data, nil
}

// probeNativeOverlay mounts a kernel overlay with two lower layers over a
// scratch directory in the graph root, as storage's own check does (with
// userxattr inside a user namespace, and a kernel-style whiteout in the
// upper layer), and says why it could not.
func probeNativeOverlay(graphRoot string) error {
	dir, data, err := probeDirs(graphRoot)
	if err != nil {
		return fmt.Errorf("preparing the overlay probe: %w", err)
	}
	defer os.RemoveAll(dir)
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil {
		magic := graphdriver.FsMagic(st.Type)
		name := graphdriver.FsNames[magic]
		switch magic {
		case graphdriver.FsMagicOverlay, graphdriver.FsMagicAufs, graphdriver.FsMagicEcryptfs:
			return fmt.Errorf("the store is on %s, which overlay cannot stack on", name)
		case graphdriver.FsMagicNfsFs, graphdriver.FsMagicSmbFs, graphdriver.FsMagicSMB2, graphdriver.FsMagicCIFS, graphdriver.FsMagicCephFs:
			if unshare.IsRootless() {
				return fmt.Errorf("the store is on %s, a network file system overlay cannot use in a user namespace", name)
			}
		}
	}
	if err := unix.Mknod(filepath.Join(dir, "upper", "whiteout"), unix.S_IFCHR|0o600, int(unix.Mkdev(0, 0))); err != nil {
		return fmt.Errorf("creating a kernel-style whiteout: %w", err)
	}
	if unshare.IsRootless() {
		data += ",userxattr"
	}
	merged := filepath.Join(dir, "merged")
	if err := unix.Mount("overlay", merged, "overlay", 0, data); err != nil {
		return fmt.Errorf("mount -t overlay: %w", err)
	}
	defer unix.Unmount(merged, unix.MNT_DETACH)
	if err := os.RemoveAll(filepath.Join(merged, "sub")); err != nil {
		return fmt.Errorf("removing a lower file through overlay: %w", err)
	}
	return nil
}

// probeFuseOverlayfs mounts fuse-overlayfs over a scratch directory in the
// graph root and unmounts it again; it returns the program's path, or why
// it cannot be used.
func probeFuseOverlayfs(graphRoot string) (string, error) {
	prog, err := exec.LookPath("fuse-overlayfs")
	if err != nil {
		return "", errors.New("fuse-overlayfs not on PATH (package fuse-overlayfs)")
	}
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("/dev/fuse: %w", err)
	}
	unix.Close(fd)
	dir, data, err := probeDirs(graphRoot)
	if err != nil {
		return "", fmt.Errorf("preparing the fuse-overlayfs probe: %w", err)
	}
	defer os.RemoveAll(dir)
	merged := filepath.Join(dir, "merged")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, "-o", data, merged)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w: %s", prog, err, strings.TrimSpace(out.String()))
	}
	// The daemon it left behind exits when its mount goes.
	if err := unix.Unmount(merged, 0); err != nil {
		unix.Unmount(merged, unix.MNT_DETACH)
	}
	return prog, nil
}

// Driver says which storage driver the store was opened with and why.
func (s *Store) Driver() DriverChoice { return s.driver }
