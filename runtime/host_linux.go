package runtime

import (
	"os/exec"

	"golang.org/x/sys/unix"
)

// CgroupVersion tells how /sys/fs/cgroup is mounted: "2" (unified), "1
// (hybrid)" when v1 controllers sit beside an empty v2 tree, or "1".
func CgroupVersion() string {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return "unknown"
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "2"
	}
	if err := unix.Statfs("/sys/fs/cgroup/unified", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "1 (hybrid)"
	}
	return "1"
}

// Helper is an external program tug can use, and where it was found.
type Helper struct {
	Name    string
	Path    string // empty when not found
	Package string // the Debian package that ships it
}

// Helpers looks up the programs tug uses when they are there.
func Helpers() []Helper {
	hs := []Helper{
		{Name: "newuidmap", Package: "uidmap"},
		{Name: "newgidmap", Package: "uidmap"},
		{Name: "pasta", Package: "passt"},
		{Name: "slirp4netns", Package: "slirp4netns"},
		{Name: "fuse-overlayfs", Package: "fuse-overlayfs"},
	}
	for i := range hs {
		if p, err := exec.LookPath(hs[i].Name); err == nil {
			hs[i].Path = p
		}
	}
	return hs
}

// HostIDMaps reads this process's uid and gid maps.
func HostIDMaps() (uids, gids []IDMap, err error) {
	if uids, err = ReadIDMap("/proc/self/uid_map"); err != nil {
		return nil, nil, err
	}
	gids, err = ReadIDMap("/proc/self/gid_map")
	return uids, gids, err
}
