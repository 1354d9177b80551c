package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A container's cgroup is tug-<id>, made in tug's own subtree, "tug", of
// the highest cgroup this process may write: the root of the tree as root,
// the delegated subtree of the user's systemd instance (user@UID.service)
// rootless. cgroup v2 is used where it is the whole tree; cgroup v1 (and
// the v1 half of a hybrid tree) only where its hierarchies are writable,
// which means as root. The tug process that runs the container holds an
// exclusive flock on the container's cgroup directory for as long as it
// runs; a cgroup nobody holds is stale (its tug was killed) and the next
// tug that makes a cgroup in the same parent removes it.

// Resources are a container's cgroup limits, with docker run's meanings;
// a zero field sets nothing. They are plain data: a spec is saved as JSON
// for the monitor that runs a detached container later.
type Resources struct {
	// Name is the container's cgroup, e.g. "tug-<id>".
	Name string
	// Parent is --cgroup-parent: the cgroup to make Name in instead of
	// tug's own subtree. An absolute path starts at the root of the cgroup
	// tree; a relative one at the highest cgroup tug may write.
	Parent string `json:",omitempty"`
	// Memory is the memory limit in bytes (--memory).
	Memory int64 `json:",omitempty"`
	// MemorySwap is the limit of memory plus swap (--memory-swap): -1
	// leaves swap unlimited; 0 with Memory set allows as much swap as
	// memory, as Docker does.
	MemorySwap int64 `json:",omitempty"`
	// CPUQuota is the CPU time, in µs, the container may use in each
	// CPUPeriod (--cpus 1.5 is 150000 per 100000).
	CPUQuota  int64  `json:",omitempty"`
	CPUPeriod uint64 `json:",omitempty"`
	// CPUShares is the relative CPU weight (--cpu-shares): v1's
	// cpu.shares, converted to v2's cpu.weight as runc and crun do.
	CPUShares uint64 `json:",omitempty"`
	// PidsLimit is the most tasks the container may have; 0 or less is
	// no limit.
	PidsLimit int64 `json:",omitempty"`
}

// Limited reports whether r asks for something only a cgroup of its own
// gives: a limit, or a place in the tree.
func (r *Resources) Limited() bool {
	return r != nil && (len(r.controllers()) > 0 || r.Parent != "")
}

// controllers are the controllers r's limits need.
func (r *Resources) controllers() []string {
	var c []string
	if r == nil {
		return nil
	}
	if r.CPUQuota > 0 || r.CPUShares > 0 {
		c = append(c, "cpu")
	}
	if r.Memory > 0 || r.MemorySwap != 0 {
		c = append(c, "memory")
	}
	if r.PidsLimit > 0 {
		c = append(c, "pids")
	}
	return c
}

// cpuWeight converts cgroup v1 cpu.shares [2, 262144] to v2 cpu.weight
// [1, 10000], with runc's and crun's formula.
func cpuWeight(shares uint64) uint64 {
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

const delegationHint = `enable delegation: sudo mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\nDelegate=cpu cpuset io memory pids\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf && sudo systemctl daemon-reload, then log in again`

// CheckCgroups reports whether this process can give a container a cgroup
// of its own with res's limits (with a nil res: any cgroup), and if not,
// what is missing and how to enable it. Rootless, it must be called where
// the container will run: in tug's user namespace.
func CheckCgroups(res *Resources) error {
	l, err := hostCgroupFS().probe()
	if err != nil {
		return err
	}
	return l.check(res)
}

// cgroupFS is the cgroup file system as tug sees it: the host's, or a
// fake tree in tests. Paths are host paths; root is put before each.
type cgroupFS struct {
	root   string
	kernel cgroupKernel
	// unified is where a v2 tree that is the whole of cgroups is mounted:
	// /sys/fs/cgroup.
	unified string
	// cloneInto: clone3 can start a process in a v2 cgroup
	// (CLONE_INTO_CGROUP, Linux 5.7).
	cloneInto bool
	// exitWait is how long removing a cgroup waits for the last tasks of
	// its dead container to leave.
	exitWait time.Duration
}

// cgroupKernel is what cgroupfs does that a plain directory tree does not:
// mkdir fills in the interface files, writes to cgroup.subtree_control
// add and remove, rmdir refuses a cgroup with tasks.
type cgroupKernel interface {
	writable(path string) bool
	mkdir(path string) error
	rmdir(path string) error
	write(path, data string) error
}

func hostCgroupFS() *cgroupFS {
	return &cgroupFS{kernel: hostKernel{}, unified: "/sys/fs/cgroup", cloneInto: kernelAtLeast(5, 7), exitWait: 2 * time.Second}
}

type hostKernel struct{}

// writable asks the kernel, so that in a user namespace a file owned by an
// unmapped id (real root's) is not writable, whatever uid 0 may do there.
func (hostKernel) writable(p string) bool { return unix.Access(p, unix.W_OK) == nil }
func (hostKernel) mkdir(p string) error   { return os.Mkdir(p, 0o755) }
func (hostKernel) rmdir(p string) error   { return unix.Rmdir(p) }
func (hostKernel) write(p, data string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %q to %s: %w", data, p, err)
	}
	return nil
}

func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var ma, mi int
	fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi)
	return ma > major || ma == major && mi >= minor
}

// hierarchy is one cgroup tree tug uses: the v2 tree, or one v1
// hierarchy with its controllers.
type hierarchy struct {
	mount       string   // where it is mounted
	controllers []string // v1: the hierarchy's; v2: those base can enable
	// base is the highest cgroup, relative to mount, that this process may
	// make cgroups in and move processes into; "" when none.
	base string
	own  string // this process's cgroup, relative to mount
}

// cgroupLayout is what probe found.
type cgroupLayout struct {
	version  int // 1 or 2; 0 when nothing is mounted
	hybrid   bool
	rootless bool
	hier     []hierarchy // v2: one; v1: the usable ones
	unusable string      // why no hierarchy is usable, when hier is empty
}

// v1Controllers are the v1 hierarchies tug puts a container in: those it
// limits and those stats reads.
var v1Controllers = []string{"blkio", "cpu", "cpuacct", "memory", "pids"}

// v2Controllers are those tug enables for a container where it can: the
// limits' and io, for stats.
var v2Controllers = []string{"cpu", "io", "memory", "pids"}

// probe reads how cgroups are mounted and which of them this process may
// write.
func (fsys *cgroupFS) probe() (*cgroupLayout, error) {
	l := &cgroupLayout{}
	mi, err := os.ReadFile(fsys.root + "/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	own, err := os.ReadFile(fsys.root + "/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("reading this process's cgroups: %w", err)
	}
	if m, err := ReadIDMap(fsys.root + "/proc/self/uid_map"); err == nil {
		l.rootless = len(m) != 1 || m[0].ContainerID != 0 || m[0].HostID != 0 || m[0].Size != 1<<32-1
	}
	mounts := parseCgroupMountinfo(string(mi))
	paths := parseCgroupFile(string(own))
	var v1 []cgroupMount
	for _, m := range mounts {
		if m.v2 && m.point == fsys.unified {
			l.version = 2
			h := hierarchy{mount: m.point}
			if h.own, err = m.rel(paths[""]); err == nil {
				h.base = fsys.delegated(h.mount, h.own)
			}
			if h.base == "" {
				l.unusable = fmt.Sprintf("your cgroup %s is not writable", paths[""])
				return l, nil
			}
			h.controllers = fsys.enableable(path.Join(h.mount, h.base), h.base == "/")
			l.hier = []hierarchy{h}
			return l, nil
		}
		if m.v2 {
			l.hybrid = true
		} else {
			v1 = append(v1, m)
		}
	}
	if len(v1) == 0 {
		l.unusable = "no cgroup file system is mounted at /sys/fs/cgroup"
		return l, nil
	}
	l.version = 1
	seen := map[string]bool{}
	for _, m := range v1 {
		ctls := intersect(m.controllers, v1Controllers)
		if len(ctls) == 0 || seen[m.point] {
			continue
		}
		seen[m.point] = true
		h := hierarchy{mount: m.point, controllers: ctls}
		if h.own, err = m.rel(paths[ctls[0]]); err == nil {
			h.base = fsys.delegated(h.mount, h.own)
		}
		if h.base == "" {
			l.unusable = fmt.Sprintf("the cgroup v1 hierarchy %s is not writable", m.point)
			continue
		}
		l.hier = append(l.hier, h)
	}
	if len(l.hier) > 0 {
		l.unusable = ""
	}
	return l, nil
}

// delegated walks up from own while the cgroup and its cgroup.procs are
// writable, and returns the highest it reached ("" if own is not
// writable): "/" as root, user@UID.service in a systemd user session.
func (fsys *cgroupFS) delegated(mount, own string) string {
	base := ""
	for p := own; ; p = path.Dir(p) {
		dir := fsys.root + path.Join(mount, p)
		if !fsys.kernel.writable(dir) || !fsys.kernel.writable(dir+"/cgroup.procs") {
			break
		}
		base = p
		if p == "/" {
			break
		}
	}
	return base
}

// enableable lists the controllers of v2Controllers that dir's children
// can have: enabled in its cgroup.subtree_control already, or available
// and enableable there (no process may sit in a cgroup that enables
// controllers for its children, except in the root).
func (fsys *cgroupFS) enableable(dir string, isRoot bool) []string {
	avail := fields(fsys.root + dir + "/cgroup.controllers")
	enabled := fields(fsys.root + dir + "/cgroup.subtree_control")
	canEnable := isRoot || len(fields(fsys.root+dir+"/cgroup.procs")) == 0
	var out []string
	for _, c := range v2Controllers {
		if slices.Contains(enabled, c) || canEnable && slices.Contains(avail, c) {
			out = append(out, c)
		}
	}
	return out
}

// check says why l cannot give a container res's cgroup, or nil.
func (l *cgroupLayout) check(res *Resources) error {
	if len(l.hier) == 0 {
		return l.unusableError()
	}
	var have []string
	for _, h := range l.hier {
		have = append(have, h.controllers...)
	}
	var missing []string
	for _, c := range res.controllers() {
		if !slices.Contains(have, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	ctl := strings.Join(missing, " and ") + " controller"
	if len(missing) > 1 {
		ctl += "s"
	}
	if l.version == 1 {
		return fmt.Errorf("cgroup v1 has no writable %s hierarchy here", strings.Join(missing, ", "))
	}
	h := l.hier[0]
	if !l.rootless {
		return fmt.Errorf("the cgroup v2 %s cannot be enabled in %s (it offers: %s)", ctl, h.base, strings.Join(h.controllers, " "))
	}
	return fmt.Errorf("the cgroup v2 %s is not delegated to you in %s (it offers: %s); %s", ctl, h.base, strings.Join(h.controllers, " "), delegationHint)
}

func (l *cgroupLayout) unusableError() error {
	switch {
	case l.version == 1 && l.rootless:
		name := "cgroup v1"
		if l.hybrid {
			name = "cgroup v1 (hybrid)"
		}
		return fmt.Errorf("this host uses %s, which only root can use; rootless tug needs cgroup v2 (boot with systemd.unified_cgroup_hierarchy=1) with controllers delegated to you; %s", name, delegationHint)
	case l.version == 2 && l.rootless:
		return fmt.Errorf("no cgroup v2 subtree is delegated to you (%s); %s; and run tug inside your systemd user session, e.g. systemd-run --user --scope tug ...", l.unusable, delegationHint)
	}
	return errors.New(l.unusable)
}

// cgroup is a container's cgroup, removed when the container has exited.
type cgroup struct {
	fs      *cgroupFS
	version int
	dirs    []string // the container's cgroup in each hierarchy, with fs.root
	// controllers are those of each dir's hierarchy.
	controllers [][]string
	// lock is the first dir, open and flocked while the container runs; on
	// v2 it is also the fd the container is cloned into.
	lock *os.File
	// entered: the container was cloned into its cgroup.
	entered bool
	// initPidsLimit is --pids-limit where tug's init is PID 1 (see
	// initTasks).
	initPidsLimit int64
}

// When tug's init stays in the container as its PID 1 (-d, --init), it
// is in the container's cgroup too: a Go program with a handful of
// threads, for which a thread it cannot start is fatal. pids.max lets it
// start with initTasks on top of --pids-limit, room for the threads it
// has and initSpares idle ones it makes (spareThreads) before it starts
// the command; once the command runs, pids.max is --pids-limit plus the
// threads the init has, and the spares serve what it needs later.
const (
	initTasks  = 24
	initSpares = 8
)

// newCgroup makes the container's cgroup with res's limits; a nil res
// needs none and returns a nil *cgroup. withInit says tug's init stays in
// the container as its PID 1.
func newCgroup(res *Resources, withInit bool) (*cgroup, error) {
	if res == nil {
		return nil, nil
	}
	return hostCgroupFS().create(res, withInit)
}

// initRunning tells the cgroup that the init (pid) has started the
// command, so that pids.max can allow it just the threads it has.
func (cg *cgroup) initRunning(pid int) {
	if cg == nil || cg.initPidsLimit <= 0 {
		return
	}
	ents, err := os.ReadDir(fmt.Sprintf("%s/proc/%d/task", cg.fs.root, pid))
	if err != nil || len(ents) == 0 {
		return
	}
	if dir := cg.dirFor("pids.max"); dir != "" {
		limit := cg.initPidsLimit + int64(len(ents))
		_ = cg.fs.kernel.write(dir+"/pids.max", strconv.FormatInt(limit, 10))
	}
}

func (fsys *cgroupFS) create(res *Resources, withInit bool) (*cgroup, error) {
	var initPidsLimit int64
	if withInit && res.PidsLimit > 0 {
		r := *res
		initPidsLimit, r.PidsLimit = r.PidsLimit, r.PidsLimit+initTasks
		res = &r
	}
	l, err := fsys.probe()
	if err != nil {
		return nil, err
	}
	if err := l.check(res); err != nil {
		return nil, err
	}
	if res.Name == "" || strings.ContainsAny(res.Name, "/") || res.Name == "." || res.Name == ".." {
		return nil, fmt.Errorf("invalid cgroup name %q", res.Name)
	}
	cg := &cgroup{fs: fsys, version: l.version, initPidsLimit: initPidsLimit}
	var parents []string
	for _, h := range l.hier {
		p, err := fsys.makeParent(l, h, res)
		if err != nil {
			return nil, err
		}
		parents = append(parents, p)
	}
	// The parent's lock keeps concurrent tugs from taking each other's new
	// cgroups for stale ones.
	plock, err := lockDir(parents[0], unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer plock.Close()
	fsys.removeStale(parents)
	for i, p := range parents {
		dir := path.Join(p, res.Name)
		if err := fsys.kernel.mkdir(dir); err != nil {
			cg.remove()
			if errors.Is(err, fs.ErrExist) {
				return nil, fmt.Errorf("creating the container's cgroup %s: it is in use", dir)
			}
			return nil, fmt.Errorf("creating the container's cgroup: %w", err)
		}
		cg.dirs = append(cg.dirs, dir)
		cg.controllers = append(cg.controllers, l.hier[i].controllers)
		if cg.lock == nil {
			if cg.lock, err = lockDir(dir, unix.LOCK_EX|unix.LOCK_NB); err != nil {
				cg.remove()
				return nil, err
			}
		}
	}
	if err := cg.limit(res); err != nil {
		cg.remove()
		return nil, err
	}
	return cg, nil
}

// makeParent makes the cgroup the container's goes in, in hierarchy h,
// and enables the controllers tug uses for its children; it returns the
// parent's path, with fs.root.
func (fsys *cgroupFS) makeParent(l *cgroupLayout, h hierarchy, res *Resources) (string, error) {
	start, rel := h.base, "tug"
	if res.Parent != "" {
		rel = path.Clean(res.Parent)
		if path.IsAbs(rel) {
			start, rel = "/", strings.TrimPrefix(rel, "/")
		}
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return "", fmt.Errorf("invalid --cgroup-parent %q: it leaves the cgroup tree", res.Parent)
		}
	}
	dir := fsys.root + path.Join(h.mount, start)
	if err := fsys.enable(l, dir, h, res); err != nil {
		return "", err
	}
	for _, name := range strings.Split(rel, "/") {
		if name == "" || name == "." {
			continue
		}
		dir = path.Join(dir, name)
		if err := fsys.kernel.mkdir(dir); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("creating cgroup %s: %w", dir, err)
		}
		if err := fsys.enable(l, dir, h, res); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// enable turns on, for dir's children, the v2 controllers tug uses; only
// those res needs must succeed. v1 has nothing to enable.
func (fsys *cgroupFS) enable(l *cgroupLayout, dir string, h hierarchy, res *Resources) error {
	if l.version != 2 {
		return nil
	}
	enabled := fields(dir + "/cgroup.subtree_control")
	needed := res.controllers()
	for _, c := range h.controllers {
		if slices.Contains(enabled, c) {
			continue
		}
		if err := fsys.kernel.write(dir+"/cgroup.subtree_control", "+"+c); err != nil && slices.Contains(needed, c) {
			return fmt.Errorf("enabling the %s controller: %w", c, err)
		}
	}
	return nil
}

// limit writes res's limits into the container's cgroup.
func (cg *cgroup) limit(res *Resources) error {
	type setting struct {
		file, value string
		optional    bool // left alone where the kernel lacks the file
	}
	var set []setting
	swap := res.MemorySwap
	if swap == 0 && res.Memory > 0 {
		swap = 2 * res.Memory
	}
	period := res.CPUPeriod
	if period == 0 {
		period = 100000
	}
	if cg.version == 2 {
		if res.Memory > 0 {
			set = append(set, setting{file: "memory.max", value: strconv.FormatInt(res.Memory, 10)})
		}
		switch {
		case swap < 0:
			set = append(set, setting{file: "memory.swap.max", value: "max", optional: true})
		case swap > 0 && res.Memory > 0:
			set = append(set, setting{file: "memory.swap.max", value: strconv.FormatInt(max(swap-res.Memory, 0), 10), optional: true})
		}
		if res.CPUQuota > 0 {
			set = append(set, setting{file: "cpu.max", value: fmt.Sprintf("%d %d", res.CPUQuota, period)})
		}
		if res.CPUShares > 0 {
			set = append(set, setting{file: "cpu.weight", value: strconv.FormatUint(cpuWeight(res.CPUShares), 10)})
		}
	} else {
		if res.Memory > 0 {
			set = append(set, setting{file: "memory.limit_in_bytes", value: strconv.FormatInt(res.Memory, 10)})
		}
		switch {
		case swap < 0:
			set = append(set, setting{file: "memory.memsw.limit_in_bytes", value: "-1", optional: true})
		case swap > 0 && res.Memory > 0:
			set = append(set, setting{file: "memory.memsw.limit_in_bytes", value: strconv.FormatInt(max(swap, res.Memory), 10), optional: true})
		}
		if res.CPUQuota > 0 {
			set = append(set, setting{file: "cpu.cfs_period_us", value: strconv.FormatUint(period, 10)},
				setting{file: "cpu.cfs_quota_us", value: strconv.FormatInt(res.CPUQuota, 10)})
		}
		if res.CPUShares > 0 {
			set = append(set, setting{file: "cpu.shares", value: strconv.FormatUint(min(max(res.CPUShares, 2), 262144), 10)})
		}
	}
	if res.PidsLimit > 0 {
		set = append(set, setting{file: "pids.max", value: strconv.FormatInt(res.PidsLimit, 10)})
	}
	for _, s := range set {
		dir := cg.dirFor(s.file)
		if dir == "" {
			return fmt.Errorf("no cgroup hierarchy has %s", s.file)
		}
		err := cg.fs.kernel.write(path.Join(dir, s.file), s.value)
		if err != nil && !(s.optional && errors.Is(err, fs.ErrNotExist)) {
			return fmt.Errorf("setting the container's limits: %w", err)
		}
	}
	return nil
}

// dirFor is the container's cgroup in the hierarchy that has file: v2's
// only one, or the v1 hierarchy of the file's controller (cpu.shares: cpu).
func (cg *cgroup) dirFor(file string) string {
	if cg.version == 2 {
		return cg.dirs[0]
	}
	ctl, _, _ := strings.Cut(file, ".")
	for i, d := range cg.dirs {
		if slices.Contains(cg.controllers[i], ctl) {
			return d
		}
	}
	return ""
}

// cloneFD is the v2 cgroup to clone the container into, or -1 where the
// container is to be moved in after it starts (v1, or a kernel before
// 5.7); once it has returned an fd, enter does nothing.
func (cg *cgroup) cloneFD() int {
	if cg == nil || cg.version != 2 || !cg.fs.cloneInto {
		return -1
	}
	cg.entered = true
	return int(cg.lock.Fd())
}

// enter moves pid, the container's init, into the cgroup, unless it was
// cloned there.
func (cg *cgroup) enter(pid int) error {
	if cg == nil || cg.entered {
		return nil
	}
	for _, d := range cg.dirs {
		if err := cg.fs.kernel.write(d+"/cgroup.procs", strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("moving the container into its cgroup: %w", err)
		}
	}
	return nil
}

// remove deletes the cgroup once the container's processes are gone; a
// nil receiver does nothing. One it cannot remove is left to the next
// tug's removeStale.
func (cg *cgroup) remove() {
	if cg != nil {
		cg.removeBy(time.Now().Add(cg.fs.exitWait))
	}
}

// removeBy removes the cgroup, waiting until deadline for the last tasks
// of a dead PID namespace to leave it.
func (cg *cgroup) removeBy(deadline time.Time) {
	if cg == nil {
		return
	}
	// The first dir holds the lock: remove it last.
	var busy []string
	for i := len(cg.dirs) - 1; i >= 0; i-- {
		for {
			err := cg.fs.kernel.rmdir(cg.dirs[i])
			if err == nil || !errors.Is(err, unix.EBUSY) {
				break
			}
			if time.Now().After(deadline) {
				busy = append(busy, cg.dirs[i])
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Past the deadline (which removeStale shares among all it removes),
	// the tasks may have left while the other hierarchies were tried: one
	// more try each, so that no hierarchy keeps the cgroup alone.
	for _, d := range busy {
		_ = cg.fs.kernel.rmdir(d)
	}
	if cg.lock != nil {
		cg.lock.Close()
	}
}

// ContainerCgroup returns the cgroup directories of the running container
// whose init is pid, for RemoveCgroup once its tug has been killed; nil
// when it has no cgroup of its own.
func ContainerCgroup(pid int) []string {
	dirs, err := hostCgroupFS().containerDirs(pid)
	if err != nil {
		return nil
	}
	var out []string
	for _, d := range dirs {
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// RemoveCgroup removes the cgroup of a container whose tug was killed
// (dirs from ContainerCgroup), as removeStale would. One that a tug still
// holds, or that still has tasks, stays.
func RemoveCgroup(dirs []string) {
	for _, d := range dirs {
		f, err := lockDir(d, unix.LOCK_EX|unix.LOCK_NB)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return // held: its container runs
		}
		defer f.Close()
	}
	(&cgroup{fs: hostCgroupFS(), dirs: dirs}).remove()
}

// removeStale removes the container cgroups in parents (one per
// hierarchy, the first holding the locks) that no tug holds: those of a
// tug that was killed. One whose tasks do not leave within a moment stays.
func (fsys *cgroupFS) removeStale(parents []string) {
	deadline := time.Now().Add(fsys.exitWait)
	names := map[string]bool{}
	for _, p := range parents {
		ents, _ := os.ReadDir(p)
		for _, e := range ents {
			if e.IsDir() && strings.HasPrefix(e.Name(), "tug-") {
				names[e.Name()] = true
			}
		}
	}
	for name := range names {
		if f, err := lockDir(path.Join(parents[0], name), unix.LOCK_EX|unix.LOCK_NB); err == nil {
			defer f.Close()
		} else if !errors.Is(err, fs.ErrNotExist) {
			continue // held: its container runs
		}
		stale := &cgroup{fs: fsys}
		for _, p := range parents {
			stale.dirs = append(stale.dirs, path.Join(p, name))
		}
		// Its tug is gone, so its container is dying (its init had
		// PDEATHSIG): the last tasks may still be on their way out.
		stale.removeBy(deadline)
	}
}

// lockDir opens dir and flocks it with how.
func lockDir(dir string, how int) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking cgroup %s: %w", dir, err)
	}
	return f, nil
}

// cgroupMount is one cgroup file system in the mount table.
type cgroupMount struct {
	point       string // where it is mounted
	root        string // the cgroup mounted there
	v2          bool
	controllers []string // v1
}

// rel turns a cgroup path from /proc/PID/cgroup into one relative to the
// mount.
func (m cgroupMount) rel(p string) (string, error) {
	if p == "" || !path.IsAbs(p) || strings.Contains(p, "/..") {
		return "", fmt.Errorf("cgroup %q is outside the mounted tree", p)
	}
	if m.root == "/" {
		return p, nil
	}
	if p == m.root {
		return "/", nil
	}
	rest, ok := strings.CutPrefix(p, m.root+"/")
	if !ok {
		return "", fmt.Errorf("cgroup %q is outside the mounted tree %s", p, m.root)
	}
	return "/" + rest, nil
}

// parseCgroupMountinfo lists the cgroup mounts of a mountinfo file.
func parseCgroupMountinfo(s string) []cgroupMount {
	var out []cgroupMount
	for _, line := range strings.Split(s, "\n") {
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
			out = append(out, cgroupMount{point: f[4], root: f[3], v2: true})
		case "cgroup":
			m := cgroupMount{point: f[4], root: f[3]}
			for _, opt := range strings.Split(g[2], ",") {
				if opt != "rw" && opt != "ro" && !strings.Contains(opt, "=") {
					m.controllers = append(m.controllers, opt)
				}
			}
			out = append(out, m)
		}
	}
	return out
}

// parseCgroupFile maps each v1 controller, and "" for v2, to the cgroup
// a /proc/PID/cgroup file names.
func parseCgroupFile(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[1] == "" {
			out[""] = f[2]
			continue
		}
		for _, ctl := range strings.Split(f[1], ",") {
			out[ctl] = f[2]
		}
	}
	return out
}

// fields reads a file of space-separated words; a missing file is empty.
func fields(p string) []string {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// spareThreads makes the Go runtime start n more threads and leaves them
// idle, for the init under --pids-limit (see initTasks): the runtime keeps
// idle threads, and takes one from them before it starts another. Each
// read below blocks its thread until all n are blocked.
func spareThreads(n int) {
	var p [2]int
	if unix.Pipe2(p[:], unix.O_CLOEXEC) != nil {
		return
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	threads := func() int {
		ents, _ := os.ReadDir("/proc/thread-self/..")
		return len(ents)
	}
	before := threads()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b [1]byte
			_, _ = unix.Read(p[0], b[:])
		}()
	}
	for deadline := time.Now().Add(time.Second); threads() < before+n && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	_, _ = unix.Write(p[1], make([]byte, n))
	wg.Wait()
}
