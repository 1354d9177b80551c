package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// ErrNoCgroup says a container runs without a cgroup of its own, so its
// usage cannot be told from its caller's.
var ErrNoCgroup = errors.New("the container has no cgroup of its own")

// Usage is what a running container uses, read from its cgroup and its
// network namespace.
type Usage struct {
	// CPU is the CPU time used so far, all CPUs together.
	CPU time.Duration
	// Memory is the memory in use less inactive file cache (what docker
	// stats shows); MemoryLimit is the limit, or the host's memory where
	// there is none.
	Memory, MemoryLimit uint64
	// BlockRead and BlockWrite are bytes read from and written to block
	// devices.
	BlockRead, BlockWrite uint64
	// Pids is the number of tasks.
	Pids uint64
	// NetRx and NetTx are bytes received and sent on the container's
	// interfaces other than loopback; HostNetwork means the container
	// shares tug's network namespace and has no counters of its own.
	NetRx, NetTx uint64
	HostNetwork  bool
}

// ContainerUsage reads the usage of the container whose init is pid. It
// returns ErrNoCgroup when the container has no cgroup of its own.
func ContainerUsage(pid int) (*Usage, error) {
	return hostCgroupFS().usage(pid)
}

func (fsys *cgroupFS) usage(pid int) (*Usage, error) {
	dirs, err := fsys.containerDirs(pid)
	if err != nil {
		return nil, err
	}
	u := &Usage{}
	if d, ok := dirs[""]; ok {
		st := keyValues(d + "/cpu.stat")
		u.CPU = time.Duration(st["usage_usec"]) * time.Microsecond
		u.Memory = readUint(d + "/memory.current")
		if inactive, ok := keyValues(d + "/memory.stat")["inactive_file"]; ok && inactive < u.Memory {
			u.Memory -= inactive
		}
		u.MemoryLimit = readUint(d + "/memory.max") // "max" reads as 0
		u.Pids = readUint(d + "/pids.current")
		u.BlockRead, u.BlockWrite = ioStat(d + "/io.stat")
	} else {
		if d, ok := dirs["memory"]; ok {
			u.Memory = readUint(d + "/memory.usage_in_bytes")
			if inactive, ok := keyValues(d + "/memory.stat")["total_inactive_file"]; ok && inactive < u.Memory {
				u.Memory -= inactive
			}
			u.MemoryLimit = readUint(d + "/memory.limit_in_bytes")
		}
		if d, ok := dirs["cpuacct"]; ok {
			u.CPU = time.Duration(readUint(d + "/cpuacct.usage"))
		}
		if d, ok := dirs["pids"]; ok {
			u.Pids = readUint(d + "/pids.current")
		}
		if d, ok := dirs["blkio"]; ok {
			u.BlockRead, u.BlockWrite = blkioStat(d + "/blkio.throttle.io_service_bytes_recursive")
		}
	}
	if total := hostMemory(fsys.root + "/proc/meminfo"); total > 0 && (u.MemoryLimit == 0 || u.MemoryLimit > total) {
		u.MemoryLimit = total
	}
	proc := fmt.Sprintf("%s/proc/%d", fsys.root, pid)
	// tug's init as PID 1 counts as one process, as tini does in Docker,
	// not as the threads it has (see initTasks).
	if comm, _ := os.ReadFile(proc + "/comm"); strings.TrimSpace(string(comm)) == initRole {
		if tasks, err := os.ReadDir(proc + "/task"); err == nil && len(tasks) > 1 && uint64(len(tasks)) <= u.Pids {
			u.Pids -= uint64(len(tasks)) - 1
		}
	}
	ours, _ := os.Readlink(fsys.root + "/proc/self/ns/net")
	theirs, _ := os.Readlink(proc + "/ns/net")
	if ours != "" && ours == theirs {
		u.HostNetwork = true
	} else {
		u.NetRx, u.NetTx = netDev(proc + "/net/dev")
	}
	return u, nil
}

// containerDirs finds the cgroup of process pid, a container's init: v2's
// (keyed "") or that of each v1 controller tug uses. It returns
// ErrNoCgroup when the process is not in a container cgroup of its own.
func (fsys *cgroupFS) containerDirs(pid int) (map[string]string, error) {
	raw, err := os.ReadFile(fmt.Sprintf("%s/proc/%d/cgroup", fsys.root, pid))
	if err != nil {
		return nil, fmt.Errorf("reading the container's cgroup: %w", err)
	}
	mi, err := os.ReadFile(fsys.root + "/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	paths := parseCgroupFile(string(raw))
	mounts := parseCgroupMountinfo(string(mi))
	dirs := map[string]string{}
	for _, m := range mounts {
		if m.v2 && m.point == fsys.unified {
			if rel, err := m.rel(paths[""]); err == nil && strings.HasPrefix(path.Base(rel), "tug-") {
				return map[string]string{"": fsys.root + path.Join(m.point, rel)}, nil
			}
			return nil, ErrNoCgroup
		}
	}
	for _, m := range mounts {
		for _, ctl := range intersect(m.controllers, v1Controllers) {
			if _, seen := dirs[ctl]; seen || m.v2 {
				continue
			}
			if rel, err := m.rel(paths[ctl]); err == nil && strings.HasPrefix(path.Base(rel), "tug-") {
				dirs[ctl] = fsys.root + path.Join(m.point, rel)
			}
		}
	}
	if _, ok := dirs["memory"]; !ok {
		return nil, ErrNoCgroup
	}
	return dirs, nil
}

// readUint reads a file holding one number; anything else ("max", a
// missing file) reads as 0.
func readUint(p string) uint64 {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// keyValues reads a flat keyed file ("usage_usec 123" lines).
func keyValues(p string) map[string]uint64 {
	out := map[string]uint64{}
	b, err := os.ReadFile(p)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if n, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			out[f[0]] = n
		}
	}
	return out
}

// ioStat sums rbytes and wbytes over the devices of a v2 io.stat.
func ioStat(p string) (read, write uint64) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseUint(v, 10, 64)
			switch k {
			case "rbytes":
				read += n
			case "wbytes":
				write += n
			}
		}
	}
	return read, write
}

// blkioStat sums the Read and Write lines of a v1 blkio file.
func blkioStat(p string) (read, write uint64) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		n, _ := strconv.ParseUint(f[2], 10, 64)
		switch f[1] {
		case "Read":
			read += n
		case "Write":
			write += n
		}
	}
	return read, write
}

// netDev sums received and sent bytes over a /proc/PID/net/dev's
// interfaces, loopback left out.
func netDev(p string) (rx, tx uint64) {
	f, err := os.Open(p)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		c := strings.Fields(rest)
		if len(c) < 9 {
			continue
		}
		r, _ := strconv.ParseUint(c[0], 10, 64)
		t, _ := strconv.ParseUint(c[8], 10, 64)
		rx, tx = rx+r, tx+t
	}
	return rx, tx
}

// hostMemory is MemTotal from /proc/meminfo, in bytes.
func hostMemory(p string) uint64 {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n * 1024
			}
		}
	}
	return 0
}
