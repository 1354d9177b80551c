//go:build e2e

package main_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tugcli/tug/fixture"
)

// These tests need a host whose whole cgroup tree is v2 with the memory,
// pids and cpu controllers (this CI machine boots cgroup v1 hybrid, so
// they skip here); they run on the device host (Ubuntu 24.04, pure v2)
// through bench/device.sh, which carries the compiled test binary there.

const cgroupV2Root = "/sys/fs/cgroup"

// pureCgroupV2 reports whether the whole cgroup tree is v2.
func pureCgroupV2() bool {
	var st unix.Statfs_t
	return unix.Statfs(cgroupV2Root, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// requireV2Root skips unless the test runs as root on a pure cgroup v2
// host offering the controllers tug limits.
func requireV2Root(t *testing.T) fixture.User {
	t.Helper()
	fixture.RequireRoot(t)
	if !pureCgroupV2() {
		t.Skip("needs a pure cgroup v2 host (/sys/fs/cgroup is not cgroup2 here)")
	}
	have := strings.Fields(readTrim(t, cgroupV2Root+"/cgroup.controllers"))
	for _, c := range []string{"memory", "pids", "cpu"} {
		if !slices.Contains(have, c) {
			t.Skipf("the cgroup v2 root offers %v, without %s", have, c)
		}
	}
	return fixture.Root()
}

// cgroupOfPid is the host path of the v2 cgroup pid is in.
func cgroupOfPid(t *testing.T, pid string) string {
	t.Helper()
	for _, line := range strings.Split(readTrim(t, "/proc/"+pid+"/cgroup"), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return filepath.Join(cgroupV2Root, p)
		}
	}
	t.Fatalf("process %s has no cgroup v2 line in /proc/%s/cgroup", pid, pid)
	return ""
}

// As root on cgroup v2: Docker's flags reach the v2 files (memory.max,
// memory.swap.max as --memory-swap less --memory, cpu.max, cpu.weight
// converted from --cpu-shares, pids.max), the container sees its cgroup as
// "/", and rm -f removes the cgroup.
func TestLimitsV2Files(t *testing.T) {
	u := requireV2Root(t)
	store := pulled(t, u)
	id := lastLine(mustTug(t, u, store, "run", "-d", "--name", "limv2", "--network", "none",
		"-m", "64m", "--memory-swap", "96m", "--cpus", "1.5", "--cpu-shares", "512", "--pids-limit", "50",
		busybox, "sleep", "4120").Stdout)
	cleanupContainers(t, u, store, "limv2")
	pid := strings.TrimSpace(mustTug(t, u, store, "inspect", "-f", "{{.State.Pid}}", "limv2").Stdout)
	dir := cgroupOfPid(t, pid)
	if filepath.Base(dir) != "tug-"+id {
		t.Fatalf("the container's init is in %s, want a cgroup tug-%s", dir, id)
	}
	for f, want := range map[string]string{
		"memory.max":      "67108864",
		"memory.swap.max": "33554432",
		"cpu.max":         "150000 100000",
		"cpu.weight":      "20",
	} {
		if f == "memory.swap.max" && !fileExists(filepath.Join(dir, f)) {
			continue // a kernel without swap accounting
		}
		if got := readTrim(t, filepath.Join(dir, f)); got != want {
			t.Errorf("%s = %s, want %s", f, got, want)
		}
	}
	if n, err := strconv.Atoi(readTrim(t, filepath.Join(dir, "pids.max"))); err != nil || n <= 50 || n > 50+24 {
		t.Errorf("pids.max = %d (%v), want 50 and the init's threads", n, err)
	}
	if got := mustTug(t, u, store, "exec", "limv2", "cat", "/proc/self/cgroup").Stdout; got != "0::/\n" {
		t.Errorf("inside, the container's cgroup is %q, want %q", got, "0::/\n")
	}
	mustTug(t, u, store, "rm", "-f", "limv2")
	waitGone(t, "rm -f", dir)
}

// As root on cgroup v2: past --memory the OOM killer ends the container
// with 137, below it the command runs; a fork bomb runs out of pids.
func TestLimitsV2Enforced(t *testing.T) {
	u := requireV2Root(t)
	store := pulled(t, u)
	oomAndBomb(t, func(args ...string) fixture.Result { return tug(t, u, store, args...) })
}

func oomAndBomb(t *testing.T, run func(args ...string) fixture.Result) {
	t.Helper()
	res := run("run", "--rm", "--network", "none", "-m", "32m", "--memory-swap", "32m", busybox, "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
	if res.Code != 137 {
		t.Errorf("dd with a 64M buffer under -m 32m: exit %d, want 137\n%s", res.Code, res.Stderr)
	}
	if res := run("run", "--rm", "--network", "none", "-m", "32m", "--memory-swap", "32m", busybox, "dd", "if=/dev/zero", "of=/dev/null", "bs=8M", "count=1"); res.Code != 0 {
		t.Errorf("dd with an 8M buffer under -m 32m: exit %d\n%s", res.Code, res.Stderr)
	}
	start := time.Now()
	res = run("run", "--rm", "--network", "none", "--pids-limit", "16", busybox, "sh", "-c", "(f() { f | f & }; f) & exec sleep 2")
	if res.Code != 0 || !strings.Contains(res.Stderr, "can't fork") {
		t.Errorf("fork bomb under --pids-limit 16: exit %d, stderr:\n%s", res.Code, res.Stderr)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the fork bomb took %v", d)
	}
}

// delegate makes a cgroup v2 subtree owned by u, as systemd's Delegate=
// does for user@UID.service, with the controllers enabled for its
// children, and a leaf "shell" in it for u's processes; it returns the
// subtree and an open fd of the leaf to start u's commands in.
func delegate(t *testing.T, u fixture.User) (string, int) {
	t.Helper()
	want := []string{"+cpu", "+memory", "+pids"}
	for _, c := range want {
		if err := os.WriteFile(cgroupV2Root+"/cgroup.subtree_control", []byte(c), 0); err != nil {
			t.Skipf("cannot enable %s for the children of %s (%v): the test process's cgroup is not the root", c, cgroupV2Root, err)
		}
	}
	dir := filepath.Join(cgroupV2Root, fmt.Sprintf("tug-e2e-deleg-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	leaf := filepath.Join(dir, "shell")
	if err := os.Mkdir(leaf, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// tug leaves its parent cgroup "tug" in the subtree, as in user@UID.service.
		for _, d := range []string{filepath.Join(dir, "tug"), leaf, dir} {
			deadline := time.Now().Add(5 * time.Second)
			for unix.Rmdir(d) != nil && fileExists(d) && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
		}
	})
	// systemd's delegation: the directory and its cgroup.procs,
	// cgroup.subtree_control and cgroup.threads belong to the user.
	for _, p := range []string{dir, dir + "/cgroup.procs", dir + "/cgroup.subtree_control", dir + "/cgroup.threads",
		leaf, leaf + "/cgroup.procs", leaf + "/cgroup.subtree_control", leaf + "/cgroup.threads"} {
		if err := os.Chown(p, int(u.UID), int(u.GID)); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := unix.Open(leaf, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return dir, fd
}

// runIn runs tug as u with its process started in the cgroup fd.
func runIn(t *testing.T, u fixture.User, fd int, store []string, args ...string) fixture.Result {
	t.Helper()
	all := append(append([]string{}, store...), args...)
	t.Logf("as %s in a delegated cgroup: tug %s", u.Name, strings.Join(all, " "))
	cmd := u.Command(t.Context(), tugBin, all...)
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = fd
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatalf("starting tug: %v", err)
	}
	res := fixture.Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode()}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.Code = 128 + int(ws.Signal())
	}
	return res
}

// Rootless in a delegated cgroup v2 subtree (what systemd gives a user
// with Delegate=): tug makes its cgroups there, writes the limits, and the
// kernel enforces them.
func TestLimitsV2RootlessDelegated(t *testing.T) {
	requireV2Root(t)
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	dir, fd := delegate(t, u)
	must := func(args ...string) fixture.Result {
		t.Helper()
		res := runIn(t, u, fd, store, args...)
		if res.Code != 0 {
			t.Fatalf("exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
		}
		return res
	}
	id := lastLine(must("run", "-d", "--name", "deleg", "--network", "none", "-m", "48m", "--cpus", "0.5", "--pids-limit", "30", busybox, "sleep", "4121").Stdout)
	cleanupContainers(t, u, store, "deleg")
	pid := strings.TrimSpace(must("inspect", "-f", "{{.State.Pid}}", "deleg").Stdout)
	ctr := cgroupOfPid(t, pid)
	if want := filepath.Join(dir, "tug", "tug-"+id); ctr != want {
		t.Fatalf("the container's init is in %s, want %s", ctr, want)
	}
	for f, want := range map[string]string{"memory.max": "50331648", "cpu.max": "50000 100000"} {
		if got := readTrim(t, filepath.Join(ctr, f)); got != want {
			t.Errorf("%s = %s, want %s", f, got, want)
		}
	}
	if n, err := strconv.Atoi(readTrim(t, filepath.Join(ctr, "pids.max"))); err != nil || n <= 30 || n > 30+24 {
		t.Errorf("pids.max = %d (%v), want 30 and the init's threads", n, err)
	}
	must("rm", "-f", "deleg")
	waitGone(t, "rm -f", ctr)
	oomAndBomb(t, func(args ...string) fixture.Result { return runIn(t, u, fd, store, args...) })
}

// Rootless outside any delegated subtree on cgroup v2: a run without
// limits works; a limit is refused with exit 125 and one line naming
// delegation.
func TestLimitsV2RootlessUndelegated(t *testing.T) {
	requireV2Root(t)
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	if got := strings.TrimSpace(mustTug(t, u, store, "run", "--rm", "--network", "none", busybox, "echo", "ok").Stdout); got != "ok" {
		t.Fatalf("a run without limits printed %q", got)
	}
	res := tug(t, u, store, "run", "--rm", "--network", "none", "-m", "64m", busybox, "true")
	lines := strings.Split(strings.TrimSpace(res.Stderr), "\n")
	if res.Code != 125 || len(lines) != 1 || !strings.HasPrefix(lines[0], "Error: ") || !strings.Contains(res.Stderr, "Delegate=") {
		t.Errorf("-m 64m without delegation: exit %d, stderr:\n%s", res.Code, res.Stderr)
	}
}
