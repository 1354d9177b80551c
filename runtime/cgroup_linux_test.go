package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeKernel plays cgroupfs over a plain directory tree: a new cgroup gets
// the interface files of the controllers its parent enables for it (v2) or
// its parent's files (v1), cgroup.subtree_control takes "+ctl" writes
// under the no-internal-process rule, cgroup.procs collects pids, and
// rmdir refuses a cgroup with tasks or children.
type fakeKernel struct {
	root     string
	readOnly map[string]bool // paths relative to root
	// beforeRmdir, if set, runs before each rmdir (tasks leaving meanwhile).
	beforeRmdir func(p string)
}

func (k *fakeKernel) rel(p string) string { return strings.TrimPrefix(p, k.root) }

func (k *fakeKernel) writable(p string) bool {
	_, err := os.Stat(p)
	return err == nil && !k.readOnly[k.rel(p)]
}

func (k *fakeKernel) mkdir(p string) error {
	if k.readOnly[k.rel(filepath.Dir(p))] {
		return &os.PathError{Op: "mkdir", Path: p, Err: unix.EACCES}
	}
	if err := os.Mkdir(p, 0o755); err != nil {
		return err
	}
	parent := filepath.Dir(p)
	files := map[string]string{}
	if sub, err := os.ReadFile(parent + "/cgroup.subtree_control"); err == nil {
		ctls := strings.Fields(string(sub))
		files["cgroup.controllers"] = strings.Join(ctls, " ")
		files["cgroup.subtree_control"] = ""
		files["cpu.stat"] = "usage_usec 0\n"
		defaults := map[string]map[string]string{
			"memory": {"memory.max": "max", "memory.swap.max": "max", "memory.current": "0", "memory.stat": "inactive_file 0\n"},
			"cpu":    {"cpu.max": "max 100000", "cpu.weight": "100"},
			"pids":   {"pids.max": "max", "pids.current": "0"},
			"io":     {"io.stat": ""},
		}
		for _, c := range ctls {
			for f, v := range defaults[c] {
				files[f] = v
			}
		}
	} else {
		ents, _ := os.ReadDir(parent)
		for _, e := range ents {
			if !e.IsDir() {
				files[e.Name()] = ""
			}
		}
	}
	files["cgroup.procs"] = ""
	for f, v := range files {
		if err := os.WriteFile(filepath.Join(p, f), []byte(v), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (k *fakeKernel) rmdir(p string) error {
	if k.beforeRmdir != nil {
		k.beforeRmdir(p)
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			return &os.PathError{Op: "rmdir", Path: p, Err: unix.EBUSY}
		}
	}
	if procs, _ := os.ReadFile(p + "/cgroup.procs"); strings.TrimSpace(string(procs)) != "" {
		return &os.PathError{Op: "rmdir", Path: p, Err: unix.EBUSY}
	}
	return os.RemoveAll(p)
}

func (k *fakeKernel) write(p, data string) error {
	if _, err := os.Stat(p); err != nil {
		return err
	}
	if !k.writable(p) {
		return &os.PathError{Op: "open", Path: p, Err: unix.EACCES}
	}
	dir := filepath.Dir(p)
	switch filepath.Base(p) {
	case "cgroup.procs":
		old, _ := os.ReadFile(p)
		return os.WriteFile(p, append(old, data+"\n"...), 0o644)
	case "cgroup.subtree_control":
		isRoot := k.rel(dir) == "/sys/fs/cgroup"
		if procs, _ := os.ReadFile(dir + "/cgroup.procs"); !isRoot && strings.TrimSpace(string(procs)) != "" {
			return &os.PathError{Op: "write", Path: p, Err: unix.EBUSY}
		}
		avail := fields(dir + "/cgroup.controllers")
		on := fields(p)
		for _, w := range strings.Fields(data) {
			c := w[1:]
			if !slices.Contains(avail, c) {
				return &os.PathError{Op: "write", Path: p, Err: unix.ENOENT}
			}
			if w[0] == '+' && !slices.Contains(on, c) {
				on = append(on, c)
			}
		}
		return os.WriteFile(p, []byte(strings.Join(on, " ")), 0o644)
	}
	return os.WriteFile(p, []byte(data), 0o644)
}

// fakeCgroupHost is a fake root: /proc/self files and a cgroup tree.
type fakeCgroupHost struct {
	t    *testing.T
	root string
	k    *fakeKernel
	fs   *cgroupFS
}

func newFakeCgroupHost(t *testing.T, mountinfo, self, uidMap string) *fakeCgroupHost {
	t.Helper()
	root := t.TempDir()
	h := &fakeCgroupHost{t: t, root: root, k: &fakeKernel{root: root, readOnly: map[string]bool{}}}
	h.fs = &cgroupFS{root: root, kernel: h.k, unified: "/sys/fs/cgroup", exitWait: 50 * time.Millisecond}
	h.file("proc/self/mountinfo", mountinfo)
	h.file("proc/self/cgroup", self)
	h.file("proc/self/uid_map", uidMap)
	return h
}

func (h *fakeCgroupHost) file(rel, content string) {
	h.t.Helper()
	p := filepath.Join(h.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// cgroup makes a cgroup directory with the given files, as the kernel
// would have it.
func (h *fakeCgroupHost) cgroup(rel string, files map[string]string) {
	h.t.Helper()
	for f, v := range files {
		h.file(filepath.Join(rel, f), v)
	}
	if _, err := os.Stat(filepath.Join(h.root, rel, "cgroup.procs")); err != nil {
		h.file(filepath.Join(rel, "cgroup.procs"), "")
	}
}

func (h *fakeCgroupHost) read(rel string) string {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.root, rel))
	if err != nil {
		h.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (h *fakeCgroupHost) exists(rel string) bool {
	_, err := os.Stat(filepath.Join(h.root, rel))
	return err == nil
}

const (
	v2Mountinfo     = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
	userService     = "sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service"
	rootlessUIDMap  = "         0       1000          1\n         1     100000      65536\n"
	rootUIDMap      = "         0          0 4294967295\n"
	rootlessSelfCg  = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-term.scope\n"
	hybridMountinfo = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	hybridSelfCg = "12:pids:/user.slice\n8:memory:/user.slice\n5:blkio:/user.slice\n3:cpu,cpuacct:/user.slice\n1:name=systemd:/user.slice/session-1.scope\n0::/user.slice/session-1.scope\n"
)

// rootlessV2 is a systemd host with cgroup v2: the user's manager owns
// user@1000.service (delegated with the given controllers); the slices
// above belong to root.
func rootlessV2(t *testing.T, delegated string) *fakeCgroupHost {
	h := newFakeCgroupHost(t, v2Mountinfo, rootlessSelfCg, rootlessUIDMap)
	all := "cpuset cpu io memory hugetlb pids rdma misc"
	h.cgroup("sys/fs/cgroup", map[string]string{"cgroup.controllers": all, "cgroup.subtree_control": "cpu io memory pids"})
	h.cgroup("sys/fs/cgroup/user.slice", map[string]string{"cgroup.controllers": "cpu io memory pids", "cgroup.subtree_control": "cpu io memory pids"})
	h.cgroup("sys/fs/cgroup/user.slice/user-1000.slice", map[string]string{"cgroup.controllers": "cpu io memory pids", "cgroup.subtree_control": delegated})
	h.cgroup(userService, map[string]string{"cgroup.controllers": delegated, "cgroup.subtree_control": delegated})
	h.cgroup(userService+"/app.slice", map[string]string{"cgroup.controllers": delegated, "cgroup.subtree_control": ""})
	h.cgroup(userService+"/app.slice/app-term.scope", map[string]string{"cgroup.controllers": "", "cgroup.subtree_control": "", "cgroup.procs": "4242\n"})
	for _, ro := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/user.slice", "/sys/fs/cgroup/user.slice/user-1000.slice"} {
		h.k.readOnly[ro] = true
		h.k.readOnly[ro+"/cgroup.procs"] = true
		h.k.readOnly[ro+"/cgroup.subtree_control"] = true
	}
	return h
}

func TestCPUWeight(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ shares, weight uint64 }{
		{0, 1}, {2, 1}, {512, 20}, {1024, 39}, {262144, 10000}, {1 << 20, 10000},
	} {
		if got := cpuWeight(tc.shares); got != tc.weight {
			t.Errorf("cpuWeight(%d) = %d, want %d", tc.shares, got, tc.weight)
		}
	}
}

func TestCgroupV2Rootless(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		res   Resources
		files map[string]string
	}{
		{"all limits", Resources{Memory: 64 << 20, CPUQuota: 150000, CPUPeriod: 100000, CPUShares: 512, PidsLimit: 10},
			map[string]string{"memory.max": "67108864", "memory.swap.max": "67108864", "cpu.max": "150000 100000", "cpu.weight": "20", "pids.max": "10"}},
		{"swap unlimited", Resources{Memory: 64 << 20, MemorySwap: -1},
			map[string]string{"memory.max": "67108864", "memory.swap.max": "max", "cpu.max": "max 100000", "pids.max": "max"}},
		{"no swap", Resources{Memory: 64 << 20, MemorySwap: 64 << 20},
			map[string]string{"memory.max": "67108864", "memory.swap.max": "0"}},
		{"swap total", Resources{Memory: 64 << 20, MemorySwap: 100 << 20},
			map[string]string{"memory.swap.max": strconv.Itoa(36 << 20)}},
		{"no limits", Resources{},
			map[string]string{"memory.max": "max", "cpu.max": "max 100000", "cpu.weight": "100", "pids.max": "max"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := rootlessV2(t, "cpu io memory pids")
			h.fs.cloneInto = true
			res := tc.res
			res.Name = "tug-abc"
			cg, err := h.fs.create(&res, false)
			if err != nil {
				t.Fatal(err)
			}
			dir := userService + "/tug/tug-abc"
			for f, want := range tc.files {
				if got := h.read(dir + "/" + f); got != want {
					t.Errorf("%s = %q, want %q", f, got, want)
				}
			}
			if got := h.read(userService + "/tug/cgroup.subtree_control"); got != "cpu io memory pids" {
				t.Errorf("tug's subtree enables %q", got)
			}
			if fd := cg.cloneFD(); fd < 0 {
				t.Error("no cgroup fd to clone into on v2")
			}
			if err := cg.enter(77); err != nil || h.read(dir+"/cgroup.procs") != "" {
				t.Errorf("enter after a clone into the cgroup: %v, procs %q", err, h.read(dir+"/cgroup.procs"))
			}
			cg.remove()
			if h.exists(dir) {
				t.Error("the container's cgroup is still there")
			}
			if !h.exists(userService + "/tug") {
				t.Error("tug's subtree was removed")
			}
		})
	}
}

func TestCgroupV2Enter(t *testing.T) {
	t.Parallel()
	// A kernel before 5.7 cannot clone into a cgroup: the init is moved.
	h := rootlessV2(t, "memory pids")
	cg, err := h.fs.create(&Resources{Name: "tug-x", PidsLimit: 5}, false)
	if err != nil {
		t.Fatal(err)
	}
	if fd := cg.cloneFD(); fd != -1 {
		t.Errorf("cloneFD = %d without CLONE_INTO_CGROUP", fd)
	}
	if err := cg.enter(1234); err != nil {
		t.Fatal(err)
	}
	if got := h.read(userService + "/tug/tug-x/cgroup.procs"); got != "1234" {
		t.Errorf("cgroup.procs = %q", got)
	}
	h.file(userService+"/tug/tug-x/cgroup.procs", "") // the container exited
	cg.remove()
}

// With tug's init as PID 1, pids.max first allows it initTasks on top of
// --pids-limit, then, once it runs the command, the threads it has.
func TestCgroupInitAllowance(t *testing.T) {
	t.Parallel()
	h := rootlessV2(t, "memory pids")
	cg, err := h.fs.create(&Resources{Name: "tug-i", PidsLimit: 5}, true)
	if err != nil {
		t.Fatal(err)
	}
	max := userService + "/tug/tug-i/pids.max"
	if got := h.read(max); got != strconv.Itoa(5+initTasks) {
		t.Errorf("pids.max while the init starts = %s", got)
	}
	for _, task := range []string{"70", "71", "72"} {
		h.file("proc/70/task/"+task+"/stat", "")
	}
	cg.initRunning(70)
	if got := h.read(max); got != strconv.Itoa(5+3) {
		t.Errorf("pids.max once the init runs = %s", got)
	}
	cg.remove()

	// Without a limit, or without the init, nothing is added.
	for _, tc := range []struct {
		limit    int64
		withInit bool
		want     string
	}{{0, true, "max"}, {9, false, "9"}} {
		cg, err := h.fs.create(&Resources{Name: "tug-j", PidsLimit: tc.limit}, tc.withInit)
		if err != nil {
			t.Fatal(err)
		}
		cg.initRunning(70)
		if got := h.read(userService + "/tug/tug-j/pids.max"); got != tc.want {
			t.Errorf("%+v: pids.max = %s", tc, got)
		}
		cg.remove()
	}
}

func TestCgroupV2Refusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		setup  func(*fakeCgroupHost)
		res    *Resources
		errHas []string
	}{
		{"not delegated", func(h *fakeCgroupHost) {
			for _, p := range []string{userService, userService + "/app.slice", userService + "/app.slice/app-term.scope"} {
				h.k.readOnly["/"+p] = true
			}
		}, &Resources{Memory: 64 << 20}, []string{"no cgroup v2 subtree is delegated to you", "app-term.scope is not writable", "Delegate=cpu cpuset io memory pids", "systemd-run --user --scope"}},
		{"not delegated, no limits", func(h *fakeCgroupHost) {
			h.k.readOnly["/"+userService+"/app.slice/app-term.scope"] = true
		}, nil, []string{"not writable"}},
		{"controller missing", nil, &Resources{CPUQuota: 50000, PidsLimit: 3}, []string{"cgroup v2 cpu controller is not delegated to you in /user.slice/user-1000.slice/user@1000.service (it offers: memory pids)", "delegate.conf"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := rootlessV2(t, "memory pids")
			if tc.setup != nil {
				tc.setup(h)
			}
			l, err := h.fs.probe()
			if err != nil {
				t.Fatal(err)
			}
			err = l.check(tc.res)
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tc.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			if tc.res != nil {
				tc.res.Name = "tug-y"
				if _, err := h.fs.create(tc.res, false); err == nil {
					t.Error("create made a cgroup")
				}
			}
		})
	}
}

func TestCgroupV2RootAndParent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, parent, want string
	}{
		{"own subtree", "", "sys/fs/cgroup/tug/tug-r"},
		{"relative parent", "batch/low", "sys/fs/cgroup/batch/low/tug-r"},
		{"absolute parent", "/system.slice/jobs", "sys/fs/cgroup/system.slice/jobs/tug-r"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newFakeCgroupHost(t, v2Mountinfo, "0::/user.slice/user-0.slice/session-1.scope\n", rootUIDMap)
			// The root cgroup may enable controllers though it has
			// processes; systemd left io off.
			h.cgroup("sys/fs/cgroup", map[string]string{"cgroup.controllers": "cpuset cpu io memory pids", "cgroup.subtree_control": "cpu memory pids", "cgroup.procs": "1\n"})
			h.cgroup("sys/fs/cgroup/system.slice", map[string]string{"cgroup.controllers": "cpu memory pids", "cgroup.subtree_control": "cpu memory pids"})
			for _, p := range []string{"user.slice", "user.slice/user-0.slice", "user.slice/user-0.slice/session-1.scope"} {
				h.cgroup("sys/fs/cgroup/"+p, map[string]string{"cgroup.controllers": "cpu memory pids", "cgroup.subtree_control": ""})
			}
			cg, err := h.fs.create(&Resources{Name: "tug-r", Parent: tc.parent, Memory: 10 << 20, CPUShares: 1024}, false)
			if err != nil {
				t.Fatal(err)
			}
			if got := h.read("sys/fs/cgroup/cgroup.subtree_control"); got != "cpu memory pids io" {
				t.Errorf("root enables %q", got)
			}
			if got := h.read(tc.want + "/memory.max"); got != "10485760" {
				t.Errorf("memory.max = %q", got)
			}
			if got := h.read(tc.want + "/cpu.weight"); got != "39" {
				t.Errorf("cpu.weight = %q", got)
			}
			cg.remove()
			if h.exists(tc.want) {
				t.Error("not removed")
			}
		})
	}
}

func TestCgroupStale(t *testing.T) {
	t.Parallel()
	h := rootlessV2(t, "memory pids")
	// A first container makes tug's subtree; then three leftovers: one
	// whose tug was killed, one whose tug runs, one with tasks left.
	first, err := h.fs.create(&Resources{Name: "tug-first"}, false)
	if err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(h.root, userService, "tug")
	for _, n := range []string{"tug-stale", "tug-held", "tug-busy", "other"} {
		if err := h.k.mkdir(filepath.Join(sub, n)); err != nil {
			t.Fatal(err)
		}
	}
	held, err := lockDir(filepath.Join(sub, "tug-held"), unix.LOCK_EX)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	h.file(userService+"/tug/tug-busy/cgroup.procs", "999\n")

	second, err := h.fs.create(&Resources{Name: "tug-second"}, false)
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[string]bool{"tug-first": true, "tug-stale": false, "tug-held": true, "tug-busy": true, "other": true, "tug-second": true} {
		if got := h.exists(userService + "/tug/" + n); got != want {
			t.Errorf("%s exists: %v, want %v", n, got, want)
		}
	}
	// The same name again is refused while its tug holds it.
	if _, err := h.fs.create(&Resources{Name: "tug-second"}, false); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second cgroup of the same name: %v", err)
	}
	first.remove()
	second.remove()
}

// A stale cgroup whose tasks leave only after removal gave up waiting on
// the first hierarchy it tried (the deadline is shared, so an earlier
// stale cgroup may have used it up) is still removed from every
// hierarchy, not left behind in that one.
func TestCgroupStaleTasksLeaveLate(t *testing.T) {
	t.Parallel()
	h := newFakeCgroupHost(t, hybridMountinfo, hybridSelfCg, rootUIDMap)
	files := map[string]map[string]string{
		"memory": {"memory.limit_in_bytes": "", "memory.usage_in_bytes": ""},
		"pids":   {"pids.max": "", "pids.current": ""},
	}
	for name, m := range files {
		h.cgroup("sys/fs/cgroup/"+name, m)
		h.cgroup("sys/fs/cgroup/"+name+"/user.slice", m)
		h.cgroup("sys/fs/cgroup/"+name+"/tug/tug-dying", map[string]string{"cgroup.procs": "999\n"})
	}
	h.fs.exitWait = 0
	memory := filepath.Join(h.root, "sys/fs/cgroup/memory/tug/tug-dying")
	h.k.beforeRmdir = func(p string) {
		if p == memory {
			for _, name := range []string{"memory", "pids"} {
				h.file("sys/fs/cgroup/"+name+"/tug/tug-dying/cgroup.procs", "")
			}
		}
	}
	cg, err := h.fs.create(&Resources{Name: "tug-next"}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.remove()
	for _, name := range []string{"memory", "pids"} {
		if h.exists("sys/fs/cgroup/" + name + "/tug/tug-dying") {
			t.Errorf("the stale cgroup is left in %s", name)
		}
	}
}

func TestCgroupV1(t *testing.T) {
	t.Parallel()
	h := newFakeCgroupHost(t, hybridMountinfo, hybridSelfCg, rootUIDMap)
	hier := map[string][]string{
		"cpu,cpuacct": {"cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpuacct.usage"},
		"memory":      {"memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.usage_in_bytes", "memory.stat"},
		"blkio":       {"blkio.throttle.io_service_bytes_recursive"},
		"pids":        {"pids.max", "pids.current"},
	}
	for name, files := range hier {
		m := map[string]string{}
		for _, f := range files {
			m[f] = ""
		}
		h.cgroup("sys/fs/cgroup/"+name, m)
		h.cgroup("sys/fs/cgroup/"+name+"/user.slice", m)
	}
	cg, err := h.fs.create(&Resources{Name: "tug-v1", Memory: 32 << 20, CPUQuota: 50000, CPUShares: 1, PidsLimit: 20}, false)
	if err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{
		"memory/tug/tug-v1/memory.limit_in_bytes":       "33554432",
		"memory/tug/tug-v1/memory.memsw.limit_in_bytes": "67108864",
		"cpu,cpuacct/tug/tug-v1/cpu.cfs_period_us":      "100000",
		"cpu,cpuacct/tug/tug-v1/cpu.cfs_quota_us":       "50000",
		"cpu,cpuacct/tug/tug-v1/cpu.shares":             "2",
		"pids/tug/tug-v1/pids.max":                      "20",
	} {
		if got := h.read("sys/fs/cgroup/" + f); got != want {
			t.Errorf("%s = %q, want %q", f, got, want)
		}
	}
	if fd := cg.cloneFD(); fd != -1 {
		t.Errorf("cloneFD on v1 = %d", fd)
	}
	if err := cg.enter(4321); err != nil {
		t.Fatal(err)
	}
	for name := range hier {
		if got := h.read("sys/fs/cgroup/" + name + "/tug/tug-v1/cgroup.procs"); got != "4321" {
			t.Errorf("%s: cgroup.procs = %q", name, got)
		}
	}
	for name := range hier {
		h.file("sys/fs/cgroup/"+name+"/tug/tug-v1/cgroup.procs", "")
	}
	cg.remove()
	for name := range hier {
		if h.exists("sys/fs/cgroup/" + name + "/tug/tug-v1") {
			t.Errorf("%s: not removed", name)
		}
	}
}

func TestCgroupV1Rootless(t *testing.T) {
	t.Parallel()
	h := newFakeCgroupHost(t, hybridMountinfo, hybridSelfCg, rootlessUIDMap)
	for _, name := range []string{"cpu,cpuacct", "memory", "blkio", "pids"} {
		h.cgroup("sys/fs/cgroup/"+name+"/user.slice", nil)
		h.k.readOnly["/sys/fs/cgroup/"+name+"/user.slice"] = true
		h.k.readOnly["/sys/fs/cgroup/"+name] = true
	}
	l, err := h.fs.probe()
	if err != nil {
		t.Fatal(err)
	}
	err = l.check(&Resources{PidsLimit: 4})
	if err == nil || !strings.Contains(err.Error(), "this host uses cgroup v1 (hybrid), which only root can use") || !strings.Contains(err.Error(), "systemd.unified_cgroup_hierarchy=1") {
		t.Errorf("check: %v", err)
	}
}

func TestCgroupUsage(t *testing.T) {
	t.Parallel()
	netDevFile := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  tap0:    2000      10    0    0    0     0          0         0      3000      12    0    0    0     0       0          0
`
	t.Run("v2", func(t *testing.T) {
		t.Parallel()
		h := rootlessV2(t, "cpu io memory pids")
		h.file("proc/meminfo", "MemTotal:        1000 kB\n")
		h.file("proc/50/cgroup", "0::/user.slice/user-1000.slice/user@1000.service/tug/tug-abc\n")
		h.file("proc/50/net/dev", netDevFile)
		d := userService + "/tug/tug-abc/"
		h.file(d+"cpu.stat", "usage_usec 2500000\nuser_usec 1\n")
		h.file(d+"memory.current", "800000\n")
		h.file(d+"memory.stat", "anon 1\ninactive_file 100000\n")
		h.file(d+"memory.max", "max\n")
		h.file(d+"pids.current", "3\n")
		h.file(d+"io.stat", "8:0 rbytes=100 wbytes=200 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n")
		u, err := h.fs.usage(50)
		if err != nil {
			t.Fatal(err)
		}
		want := Usage{CPU: 2500 * time.Millisecond, Memory: 700000, MemoryLimit: 1024000, BlockRead: 101, BlockWrite: 202, Pids: 3, NetRx: 2000, NetTx: 3000}
		if *u != want {
			t.Errorf("usage %+v, want %+v", *u, want)
		}
		// tug's init as PID 1 is one process, whatever its threads.
		h.file("proc/50/comm", "tug-init\n")
		for _, task := range []string{"50", "52", "53"} {
			h.file("proc/50/task/"+task+"/stat", "")
		}
		if u, err := h.fs.usage(50); err != nil || u.Pids != 1 {
			t.Errorf("pids with tug's init: %d, %v", u.Pids, err)
		}
		h.file("proc/51/cgroup", "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-term.scope\n")
		if _, err := h.fs.usage(51); !errors.Is(err, ErrNoCgroup) {
			t.Errorf("usage without a cgroup of its own: %v", err)
		}
	})
	t.Run("v1", func(t *testing.T) {
		t.Parallel()
		h := newFakeCgroupHost(t, hybridMountinfo, hybridSelfCg, rootUIDMap)
		h.file("proc/meminfo", "MemTotal:        1000000 kB\n")
		h.file("proc/60/cgroup", "12:pids:/tug/tug-v\n8:memory:/tug/tug-v\n5:blkio:/tug/tug-v\n3:cpu,cpuacct:/tug/tug-v\n0::/\n")
		h.file("proc/60/net/dev", netDevFile)
		if err := os.MkdirAll(filepath.Join(h.root, "proc/60/ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(h.root, "proc/self/ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"proc/60/ns/net", "proc/self/ns/net"} {
			if err := os.Symlink("net:[4026531840]", filepath.Join(h.root, p)); err != nil {
				t.Fatal(err)
			}
		}
		h.file("sys/fs/cgroup/memory/tug/tug-v/memory.usage_in_bytes", "5000000\n")
		h.file("sys/fs/cgroup/memory/tug/tug-v/memory.stat", "cache 1\ntotal_inactive_file 1000000\n")
		h.file("sys/fs/cgroup/memory/tug/tug-v/memory.limit_in_bytes", "33554432\n")
		h.file("sys/fs/cgroup/cpu,cpuacct/tug/tug-v/cpuacct.usage", "123456789\n")
		h.file("sys/fs/cgroup/pids/tug/tug-v/pids.current", "7\n")
		h.file("sys/fs/cgroup/blkio/tug/tug-v/blkio.throttle.io_service_bytes_recursive", "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 1\n8:0 Total 12288\nTotal 12288\n")
		u, err := h.fs.usage(60)
		if err != nil {
			t.Fatal(err)
		}
		want := Usage{CPU: 123456789, Memory: 4000000, MemoryLimit: 33554432, BlockRead: 4096, BlockWrite: 8192, Pids: 7, HostNetwork: true}
		if *u != want {
			t.Errorf("usage %+v, want %+v", *u, want)
		}
	})
}

// TestCgroupV2Kernel runs the v2 path against the kernel: where cgroup2 is
// mounted beside v1 (a hybrid host), as root, it makes a container cgroup
// there (no controllers: no limits), clones a process into it, and
// removes it.
func TestCgroupV2Kernel(t *testing.T) {
	const unified = "/sys/fs/cgroup/unified"
	var st unix.Statfs_t
	if os.Geteuid() != 0 || unix.Statfs(unified, &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC || !kernelAtLeast(5, 7) {
		t.Skip("needs root and a cgroup2 tree at " + unified)
	}
	fsys := hostCgroupFS()
	fsys.unified = unified
	name := fmt.Sprintf("tug-unittest-%d", os.Getpid())
	cg, err := fsys.create(&Resources{Name: name}, false)
	if err != nil {
		t.Fatal(err)
	}
	dir := cg.dirs[0]
	t.Cleanup(func() {
		cg.remove()
		_ = unix.Rmdir(filepath.Dir(dir)) // tug's subtree, unless in use
	})
	cmd := exec.Command("/bin/cat", "/proc/self/cgroup")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.cloneFD()}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	l, _ := fsys.probe()
	want := "0::" + filepath.Join(l.hier[0].base, "tug", name)
	if !strings.Contains(string(out), want+"\n") {
		t.Errorf("the process was in\n%s\nnot %s", out, want)
	}
	// A second cgroup, made while this one is held, leaves it alone; once
	// its holder is gone (a killed tug), the next one removes it.
	other, err := fsys.create(&Resources{Name: name + "-2"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("a held cgroup was removed: %v", err)
	}
	cg.lock.Close()
	other.remove()
	third, err := fsys.create(&Resources{Name: name + "-3"}, false)
	if err != nil {
		t.Fatal(err)
	}
	third.remove()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a stale cgroup stayed: %v", err)
	}
}
