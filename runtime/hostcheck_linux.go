package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tugcli/tug/runtime/userns"
)

// HostCheck is what this host offers rootless tug, seen from the calling
// process before it enters tug's user namespace: everything `tug info`
// reports under "Host", and what a failure to set up is explained with.
// It is plain data so that the outer tug can hand it to its namespace child
// (which could not see it: inside, it is uid 0 in a namespace of its own).
type HostCheck struct {
	Kernel string
	UID    int
	GID    int
	User   string

	UserNS UserNSCheck
	// SubUIDs and SubGIDs are the user's ranges in /etc/subuid and
	// /etc/subgid.
	SubUIDs, SubGIDs []IDRange
	// NewUIDMap and NewGIDMap are the setuid helpers that map those ranges.
	NewUIDMap, NewGIDMap IDMapHelperCheck

	Cgroups CgroupCheck
	// Tun is /dev/net/tun, which every network but none and host needs.
	Tun DeviceCheck
	// Fuse is /dev/fuse, which fuse-overlayfs needs.
	Fuse          DeviceCheck
	FuseOverlayfs string // path, empty when not on PATH
	Pasta         string
	Slirp4netns   string

	// Seccomp is the caller's seccomp mode (Seccomp: in /proc/self/status):
	// 0 none, 1 strict, 2 filter; -1 when unknown.
	Seccomp    int
	NoNewPrivs bool
}

// UserNSCheck says whether this process may make a user namespace.
type UserNSCheck struct {
	// MaxUserNamespaces is user.max_user_namespaces, -1 when absent.
	MaxUserNamespaces int
	// UnprivilegedClone is kernel.unprivileged_userns_clone (a Debian and
	// Ubuntu patch), -1 when absent.
	UnprivilegedClone int
	// AppArmorRestrict is kernel.apparmor_restrict_unprivileged_userns
	// (Ubuntu 23.10 and later), -1 when absent.
	AppArmorRestrict int
	// Nested is true when this process is already in a user namespace
	// other than the initial one (a rootless container, a CI sandbox).
	Nested bool
	UIDMap string // this process's uid_map, lines joined by ", "
	// Err is why creating one failed; empty when it worked.
	Err string
}

// IDRange is one line of /etc/subuid or /etc/subgid for the user.
type IDRange = userns.IDRange

// IDMapHelperCheck is newuidmap or newgidmap.
type IDMapHelperCheck = userns.HelperCheck

// CgroupCheck is how cgroups are mounted and what the caller may write.
type CgroupCheck struct {
	// Version is "v2", "v1 hybrid" (v1 controllers beside a v2 tree
	// without them), "v1", or "none".
	Version string
	// Path is the caller's cgroup (v2, or v1's memory hierarchy).
	Path string
	// Controllers are the controllers the caller could use for a
	// container's limits: v2's cgroup.controllers of its own cgroup, or
	// the v1 hierarchies of memory, cpu and pids it may write.
	Controllers []string
	// Delegated is true when the caller may create cgroups below its own.
	Delegated bool
}

// DeviceCheck is whether a device node can be opened read-write.
type DeviceCheck struct {
	Path string
	Err  string // empty when it opened
}

// OK reports whether the device opened.
func (d DeviceCheck) OK() bool { return d.Err == "" }

// hostEnv is where CheckHost looks: the real host, or a fake /proc, /sys
// and /etc tree in tests.
type hostEnv struct {
	root     string // prefix of every path read; "" for /
	uid, gid int
	user     string
	// lookPath finds a program on PATH.
	lookPath func(string) (string, error)
	// tryUserNS creates a user namespace and says why it could not.
	tryUserNS func() error
	// access is unix.Access(path, W_OK) for the caller.
	access func(path string) error
	// openRW opens a device read-write and closes it again.
	openRW func(path string) error
	// hasFileCaps reports a security.capability xattr on path.
	hasFileCaps func(path string) bool
}

// CheckHost looks at this host as the calling process sees it. It is cheap
// (a few files, one clone that fails at once) and changes nothing.
func CheckHost() *HostCheck {
	uid, gid := os.Getuid(), os.Getgid()
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	return checkHost(hostEnv{
		uid: uid, gid: gid, user: name,
		lookPath:  exec.LookPath,
		tryUserNS: tryUserNamespace,
		access:    func(p string) error { return unix.Access(p, unix.W_OK) },
		openRW: func(p string) error {
			fd, err := unix.Open(p, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
			if err == nil {
				unix.Close(fd)
			}
			return err
		},
		hasFileCaps: func(p string) bool {
			_, err := unix.Getxattr(p, "security.capability", nil)
			return err == nil
		},
	})
}

func checkHost(e hostEnv) *HostCheck {
	h := &HostCheck{UID: e.uid, GID: e.gid, User: e.user, Seccomp: -1}
	if b, err := os.ReadFile(e.root + "/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}

	ns := &h.UserNS
	ns.MaxUserNamespaces = readSysctlInt(e.root, "user/max_user_namespaces")
	ns.UnprivilegedClone = readSysctlInt(e.root, "kernel/unprivileged_userns_clone")
	ns.AppArmorRestrict = readSysctlInt(e.root, "kernel/apparmor_restrict_unprivileged_userns")
	if b, err := os.ReadFile(e.root + "/proc/self/uid_map"); err == nil {
		ns.UIDMap, ns.Nested = parseUIDMap(string(b))
	}
	if err := e.tryUserNS(); err != nil {
		ns.Err = err.Error()
	}

	if status, err := os.ReadFile(e.root + "/proc/self/status"); err == nil {
		h.Seccomp, h.NoNewPrivs = userns.ParseStatus(string(status))
	}

	h.SubUIDs = userns.ReadSubIDs(e.root+"/etc/subuid", e.user, e.uid)
	h.SubGIDs = userns.ReadSubIDs(e.root+"/etc/subgid", e.user, e.uid)
	h.NewUIDMap = checkIDMapHelper(e, "newuidmap")
	h.NewGIDMap = checkIDMapHelper(e, "newgidmap")

	h.Cgroups = checkCgroups(e)

	h.Tun = checkDevice(e, "/dev/net/tun")
	h.Fuse = checkDevice(e, "/dev/fuse")
	h.FuseOverlayfs, _ = e.lookPath("fuse-overlayfs")
	h.Pasta, _ = e.lookPath("pasta")
	h.Slirp4netns, _ = e.lookPath("slirp4netns")
	return h
}

// tryUserNamespace clones a child into a new user namespace and lets it
// fail its exec at once: ENOTDIR from the exec means the clone worked; an
// error from the clone itself (EPERM, ENOSPC, EUSERS, EINVAL) means it did
// not. It costs a fork, not a program start.
func tryUserNamespace() error {
	return tryClone(syscall.CLONE_NEWUSER)
}

// tryClone is tryUserNamespace for any set of namespaces.
func tryClone(flags uintptr) error {
	pid, err := syscall.ForkExec("/dev/null/tug-userns-probe", []string{"tug-userns-probe"}, &syscall.ProcAttr{
		Sys: &syscall.SysProcAttr{Cloneflags: flags},
	})
	if err == nil {
		// Cannot happen (nothing is at that path); reap it all the same.
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, 0, nil)
		return nil
	}
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ENOENT) {
		return nil
	}
	return err
}

func readSysctlInt(root, name string) int {
	b, err := os.ReadFile(root + "/proc/sys/" + name)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}

// parseUIDMap returns the map on one line and whether it is not the
// initial namespace's identity map "0 0 4294967295".
func parseUIDMap(s string) (oneLine string, nested bool) {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines = append(lines, strings.Join(f, " "))
		}
	}
	return strings.Join(lines, ", "), !(len(lines) == 1 && lines[0] == "0 0 4294967295")
}

func checkIDMapHelper(e hostEnv, name string) IDMapHelperCheck {
	var c IDMapHelperCheck
	p, err := e.lookPath(name)
	if err != nil {
		return c
	}
	c.Path = p
	c.Setuid = userns.SetuidRoot(e.root + p)
	c.FileCaps = e.hasFileCaps(e.root + p)
	return c
}

func checkDevice(e hostEnv, path string) DeviceCheck {
	d := DeviceCheck{Path: path}
	if err := e.openRW(e.root + path); err != nil {
		d.Err = err.Error()
		if fi, serr := os.Stat(e.root + path); serr == nil && errors.Is(err, unix.EACCES) {
			d.Err += fmt.Sprintf(" (mode %04o)", fi.Mode().Perm())
		}
	}
	return d
}

// checkCgroups reads /proc/self/mountinfo for the cgroup mounts and
// /proc/self/cgroup for the caller's own cgroups, then asks whether the
// caller may write there.
func checkCgroups(e hostEnv) CgroupCheck {
	c := CgroupCheck{Version: "none"}
	mi, err := os.ReadFile(e.root + "/proc/self/mountinfo")
	if err != nil {
		return c
	}
	v2Root, v1 := parseCgroupMounts(string(mi))
	switch {
	case v2Root == "/sys/fs/cgroup":
		c.Version = "v2"
	case len(v1) > 0 && v2Root != "":
		c.Version = "v1 hybrid"
	case len(v1) > 0:
		c.Version = "v1"
	default:
		return c
	}
	own, _ := os.ReadFile(e.root + "/proc/self/cgroup")
	paths := parseCgroupFile(string(own))
	if c.Version == "v2" {
		c.Path = paths[""]
		dir := filepath.Join(e.root+v2Root, c.Path)
		if b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers")); err == nil {
			c.Controllers = strings.Fields(string(b))
		}
		c.Delegated = e.access(dir) == nil && e.access(filepath.Join(dir, "cgroup.subtree_control")) == nil
		if !c.Delegated {
			c.Controllers = nil
		}
		return c
	}
	c.Path = paths["memory"]
	for _, ctl := range []string{"memory", "cpu", "pids"} {
		mnt, ok := v1[ctl]
		if !ok {
			continue
		}
		if e.access(filepath.Join(e.root+mnt, paths[ctl])) == nil {
			c.Controllers = append(c.Controllers, ctl)
		}
	}
	c.Delegated = len(c.Controllers) > 0
	return c
}

// parseCgroupMounts returns where a cgroup2 tree is mounted (empty when
// none is) and, for each v1 controller, its mount point.
func parseCgroupMounts(mountinfo string) (v2 string, v1 map[string]string) {
	v1 = map[string]string{}
	for _, line := range strings.Split(mountinfo, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		switch g[0] {
		case "cgroup2":
			if v2 == "" || f[4] == "/sys/fs/cgroup" {
				v2 = f[4]
			}
		case "cgroup":
			for _, opt := range strings.Split(g[2], ",") {
				switch opt {
				case "memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "devices", "freezer":
					v1[opt] = f[4]
				}
			}
		}
	}
	return v2, v1
}

// Finding is one line of `tug info`'s host section: what was found and
// what it means for tug.
type Finding struct {
	Name        string
	State       string
	Consequence string // empty when nothing is lost
}

func (f Finding) String() string {
	if f.Consequence == "" {
		return f.Name + ": " + f.State
	}
	return f.Name + ": " + f.State + ": " + f.Consequence
}

// Findings says, for tug running as root or rootless, what each check
// means. The storage driver is the store's to report.
func (h *HostCheck) Findings(rootless bool) []Finding {
	var out []Finding
	out = append(out, h.userNSFinding(rootless), h.idMapFinding(rootless), h.cgroupFinding(rootless), h.networkFinding(), h.seccompFinding(rootless))
	return out
}

func (h *HostCheck) userNSFinding(rootless bool) Finding {
	f := Finding{Name: "user namespaces"}
	ns := h.UserNS
	where := "initial namespace"
	if ns.Nested {
		where = "nested: already inside a user namespace (uid_map " + ns.UIDMap + ")"
	}
	if ns.Err == "" {
		f.State = "allowed (" + where + ")"
		if !rootless {
			f.State = "allowed, not needed as root (" + where + ")"
		}
		return f
	}
	f.State = "refused (" + ns.Err + "; " + h.UserNSBlocker() + ")"
	if rootless {
		f.Consequence = "rootless tug cannot run here; run it as root"
	} else {
		f.Consequence = "root does not need one"
	}
	return f
}

// UserNSBlocker names what most likely keeps this process from creating
// a user namespace, and how to lift it.
func (h *HostCheck) UserNSBlocker() string {
	ns := h.UserNS
	switch {
	case ns.MaxUserNamespaces == 0:
		return "user.max_user_namespaces is 0; an administrator can run 'sysctl -w user.max_user_namespaces=15000'"
	case ns.UnprivilegedClone == 0:
		return "kernel.unprivileged_userns_clone is 0; an administrator can run 'sysctl -w kernel.unprivileged_userns_clone=1'"
	case h.Seccomp == 2:
		return "a seccomp filter on this process (Seccomp: 2 in /proc/self/status) forbids it, as in a container started with Docker's default profile; start that container with --security-opt seccomp=unconfined (or --privileged), or run tug as root there"
	case strings.Contains(ns.Err, "no space left") || strings.Contains(ns.Err, "too many users"):
		return "the limit of user namespaces (user.max_user_namespaces, or 32 levels of nesting) is reached"
	case ns.Nested:
		return "this process is already inside a user namespace (uid_map " + ns.UIDMap + ") that does not let it create another, as in an unprivileged container"
	case ns.AppArmorRestrict == 1:
		return "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1); give tug a profile with 'userns,' or set it to 0"
	}
	return "the kernel or a security module refuses unprivileged user namespaces"
}

// SubIDProblem says why the user's subordinate ids cannot be mapped, or
// "" when they can.
func (h *HostCheck) SubIDProblem() string {
	// In the order PlanUserNamespace meets them.
	for _, c := range []struct {
		name string
		h    IDMapHelperCheck
	}{{"newuidmap", h.NewUIDMap}, {"newgidmap", h.NewGIDMap}} {
		switch {
		case c.h.Path == "":
			return c.name + " not found on PATH (package uidmap)"
		case h.NoNewPrivs:
			return "no_new_privs is set, so " + c.h.Path + " cannot gain its privileges"
		case !c.h.Setuid && !c.h.FileCaps:
			return c.h.Path + " is neither setuid root nor has file capabilities"
		}
	}
	var missing []string
	if len(h.SubUIDs) == 0 {
		missing = append(missing, "/etc/subuid")
	}
	if len(h.SubGIDs) == 0 {
		missing = append(missing, "/etc/subgid")
	}
	if len(missing) > 0 {
		return fmt.Sprintf("no range for %s in %s", h.User, strings.Join(missing, " or "))
	}
	return ""
}

func (h *HostCheck) idMapFinding(rootless bool) Finding {
	f := Finding{Name: "id mapping"}
	if !rootless {
		f.State = "none needed (root)"
		return f
	}
	if p := h.SubIDProblem(); p != "" {
		f.State = "single id (" + p + ")"
		f.Consequence = "every file of a pulled image is owned by you, and chown to another id in a RUN step fails"
		return f
	}
	how := "setuid"
	if !h.NewUIDMap.Setuid {
		how = "file capabilities"
	}
	f.State = fmt.Sprintf("subordinate range %s (%s, %s)", fmtRanges(h.SubUIDs), h.NewUIDMap.Path, how)
	return f
}

func fmtRanges(rs []IDRange) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%d:%d", r.Start, r.Count))
	}
	return strings.Join(parts, ",")
}

func (h *HostCheck) cgroupFinding(rootless bool) Finding {
	c := h.Cgroups
	f := Finding{Name: "cgroups", State: c.Version}
	who := "root"
	if rootless {
		who = "rootless"
	}
	switch {
	case c.Version == "none":
		f.State = "not mounted"
		f.Consequence = "resource limit flags are refused"
	case !c.Delegated:
		f.State += ", " + who + ", nothing delegated"
		if c.Path != "" {
			f.State += " (" + c.Path + " is not writable)"
		}
		f.Consequence = "resource limit flags are refused"
	default:
		f.State += ", " + who + ", writable: " + strings.Join(c.Controllers, " ")
	}
	return f
}

func (h *HostCheck) networkFinding() Finding {
	f := Finding{Name: "network"}
	var helpers []string
	for _, x := range []struct{ name, path string }{{"pasta", h.Pasta}, {"slirp4netns", h.Slirp4netns}} {
		if x.path != "" {
			helpers = append(helpers, x.name)
		}
	}
	extra := "no pasta or slirp4netns"
	if len(helpers) > 0 {
		extra = strings.Join(helpers, " and ") + " on PATH"
	}
	if h.Tun.OK() {
		f.State = "/dev/net/tun usable, " + extra
		return f
	}
	f.State = "/dev/net/tun: " + h.Tun.Err
	f.Consequence = "the default network (and pasta, slirp4netns) cannot work: use --network none or --network host"
	return f
}

func (h *HostCheck) seccompFinding(rootless bool) Finding {
	f := Finding{Name: "seccomp"}
	switch h.Seccomp {
	case 0:
		f.State = "none on tug itself"
	case 1:
		f.State = "strict"
	case 2:
		f.State = "filtered (tug runs under a seccomp filter)"
	default:
		f.State = "unknown"
	}
	if h.NoNewPrivs {
		f.State += ", no_new_privs set"
		if rootless {
			f.Consequence = "setuid newuidmap cannot work: single-id mapping"
		}
	} else {
		f.State += ", no_new_privs not set"
	}
	return f
}

// FuseProblem says why fuse-overlayfs cannot be used, or "" when it can.
func (h *HostCheck) FuseProblem() string {
	switch {
	case h.FuseOverlayfs == "":
		return "fuse-overlayfs not on PATH (package fuse-overlayfs)"
	case !h.Fuse.OK():
		return "/dev/fuse: " + h.Fuse.Err
	}
	return ""
}

// userNamespaceHint explains a failure to clone with flags, naming what
// is missing when the clone asked for a user namespace.
func userNamespaceHint(flags uintptr, err error) string {
	if !slices.ContainsFunc([]error{unix.EPERM, unix.EACCES, unix.ENOSPC, unix.EUSERS, unix.EINVAL}, func(e error) bool { return errors.Is(err, e) }) {
		return ""
	}
	if flags&syscall.CLONE_NEWUSER == 0 {
		// Root's mount namespace: refused only by a seccomp filter or a
		// missing CAP_SYS_ADMIN, as in an unprivileged container.
		status, _ := os.ReadFile("/proc/self/status")
		if sc, _ := userns.ParseStatus(string(status)); sc == 2 && errors.Is(err, unix.EPERM) {
			return ": a seccomp filter on this process (Seccomp: 2 in /proc/self/status) forbids new namespaces, as in a container started with Docker's default profile; start it with --security-opt seccomp=unconfined (or --privileged)"
		}
		return ""
	}
	h := CheckHost()
	if h.UserNS.Err == "" {
		h.UserNS.Err = err.Error()
	}
	return ": rootless tug needs a user namespace and " + h.UserNSBlocker()
}
