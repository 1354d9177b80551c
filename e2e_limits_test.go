//go:build e2e

package main_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tugcli/tug/fixture"
)

// requireV1Root skips unless the test runs as root on a host whose
// controllers are in cgroup v1 hierarchies (as this CI machine's are):
// there tug puts each container in /sys/fs/cgroup/<controller>/tug/tug-<id>.
func requireV1Root(t *testing.T) fixture.User {
	t.Helper()
	fixture.RequireRoot(t)
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup/memory", &st); err != nil || st.Type != unix.CGROUP_SUPER_MAGIC {
		t.Skip("needs cgroup v1 hierarchies at /sys/fs/cgroup/<controller>")
	}
	return fixture.Root()
}

// ctrCgroup is the container's cgroup in the v1 hierarchy of controller.
func ctrCgroup(controller, id string) string {
	return filepath.Join("/sys/fs/cgroup", controller, "tug", "tug-"+id)
}

func readTrim(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// waitGone polls until none of paths exists.
func waitGone(t *testing.T, what string, paths ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := ""
		for _, p := range paths {
			if _, err := os.Stat(p); err == nil {
				left = p
			}
		}
		if left == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s is still there", what, left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var v1Hierarchies = []string{"memory", "cpu", "cpuacct", "pids", "blkio"}

func ctrCgroups(id string) []string {
	var out []string
	for _, h := range v1Hierarchies {
		out = append(out, ctrCgroup(h, id))
	}
	return out
}

// Docker's flag semantics reach the kernel's files: --cpus 1.5 is a quota
// of 150000 per 100000, --memory-swap defaults to twice --memory, the
// container sees its own cgroup as "/", and the cgroup goes with it.
func TestLimitsV1Files(t *testing.T) {
	u := requireV1Root(t)
	store := pulled(t, u)
	id := lastLine(mustTug(t, u, store, "run", "-d", "--name", "lim", "--network", "none",
		"-m", "64m", "--cpus", "1.5", "--cpu-shares", "512", "--pids-limit", "50", busybox, "sleep", "60").Stdout)
	cleanupContainers(t, u, store, "lim")
	for f, want := range map[string]string{
		"memory/memory.limit_in_bytes": "67108864",
		"cpu/cpu.cfs_period_us":        "100000",
		"cpu/cpu.cfs_quota_us":         "150000",
		"cpu/cpu.shares":               "512",
	} {
		ctl, file, _ := strings.Cut(f, "/")
		if got := readTrim(t, filepath.Join(ctrCgroup(ctl, id), file)); got != want {
			t.Errorf("%s = %s, want %s", f, got, want)
		}
	}
	if memsw := filepath.Join(ctrCgroup("memory", id), "memory.memsw.limit_in_bytes"); fileExists(memsw) {
		if got := readTrim(t, memsw); got != "134217728" {
			t.Errorf("memory.memsw.limit_in_bytes = %s, want twice --memory", got)
		}
	}
	pid := strings.TrimSpace(mustTug(t, u, store, "inspect", "-f", "{{.State.Pid}}", "lim").Stdout)
	// tug's init, PID 1 of a detached container, has its threads on top
	// of --pids-limit.
	if n, err := strconv.Atoi(readTrim(t, filepath.Join(ctrCgroup("pids", id), "pids.max"))); err != nil || n <= 50 || n > 50+24 {
		t.Errorf("pids.max = %d (%v), want 50 and the init's threads", n, err)
	}
	if got := readTrim(t, "/proc/"+pid+"/cgroup"); !strings.Contains(got, ":memory:/tug/tug-"+id+"\n") {
		t.Errorf("the container's init is in\n%s", got)
	}
	if got := mustTug(t, u, store, "exec", "lim", "cat", "/proc/self/cgroup").Stdout; !strings.Contains(got, ":memory:/\n") || !strings.Contains(got, ":pids:/\n") {
		t.Errorf("inside, the container's cgroups are\n%s", got)
	}
	mustTug(t, u, store, "rm", "-f", "lim")
	waitGone(t, "rm -f", ctrCgroups(id)...)

	// --memory-swap -1: swap unlimited; equal to --memory: none.
	for swap, want := range map[string]string{"-1": "9223372036854771712", "32m": "33554432"} {
		id := lastLine(mustTug(t, u, store, "create", "--network", "none", "-m", "32m", "--memory-swap", swap, busybox, "sleep", "60").Stdout)
		mustTug(t, u, store, "start", id)
		if memsw := filepath.Join(ctrCgroup("memory", id), "memory.memsw.limit_in_bytes"); fileExists(memsw) {
			if got := readTrim(t, memsw); got != want {
				t.Errorf("--memory-swap %s: memory.memsw.limit_in_bytes = %s, want %s", swap, got, want)
			}
		}
		if got := readTrim(t, filepath.Join(ctrCgroup("memory", id), "memory.limit_in_bytes")); got != "33554432" {
			t.Errorf("create then start: memory.limit_in_bytes = %s", got)
		}
		mustTug(t, u, store, "rm", "-f", id)
		waitGone(t, "rm -f", ctrCgroups(id)...)
	}
}

// cleanupContainers removes the named containers when the test ends (its
// context is gone by then).
func cleanupContainers(t *testing.T, u fixture.User, store []string, names ...string) {
	t.Cleanup(func() {
		_ = u.Command(context.Background(), tugBin, append(append(append([]string{}, store...), "rm", "-f"), names...)...).Run()
	})
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// A process that allocates past --memory is killed by the OOM killer:
// exit 137, as with Docker. Below the limit it runs.
func TestLimitsOOMKilled(t *testing.T) {
	u := requireV1Root(t)
	store := pulled(t, u)
	res := tug(t, u, store, "run", "--rm", "--network", "none", "-m", "32m", "--memory-swap", "32m", busybox, "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
	if res.Code != 137 {
		t.Fatalf("dd with a 64M buffer under -m 32m: exit %d, want 137\n%s", res.Code, res.Stderr)
	}
	mustTug(t, u, store, "run", "--rm", "--network", "none", "-m", "32m", "--memory-swap", "32m", busybox, "dd", "if=/dev/zero", "of=/dev/null", "bs=8M", "count=1")
}

// A fork bomb under --pids-limit runs out of processes instead of taking
// the host's: its forks fail, and the container ends when its command
// does.
func TestLimitsForkBomb(t *testing.T) {
	u := requireV1Root(t)
	store := pulled(t, u)
	start := time.Now()
	res := tug(t, u, store, "run", "--rm", "--network", "none", "--pids-limit", "16", busybox,
		"sh", "-c", "(f() { f | f & }; f) & exec sleep 2")
	if res.Code != 0 || !strings.Contains(res.Stderr, "can't fork") {
		t.Fatalf("fork bomb: exit %d, stderr:\n%s", res.Code, res.Stderr)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the fork bomb took %v", d)
	}
}

// tug's init, PID 1 of a detached container, lives in the container's
// cgroup: a fork bomb there uses up --pids-limit, and the init (a Go
// program, for which a thread it cannot start is fatal) keeps running.
func TestLimitsPidsWithInit(t *testing.T) {
	u := requireV1Root(t)
	store := pulled(t, u)
	id := lastLine(mustTug(t, u, store, "run", "-d", "--name", "bombd", "--network", "none", "--pids-limit", "8", busybox,
		"sh", "-c", "(f() { f | f & }; f) & exec sleep 30").Stdout)
	cleanupContainers(t, u, store, "bombd")
	events := filepath.Join(ctrCgroup("pids", id), "pids.events")
	deadline := time.Now().Add(10 * time.Second)
	for readTrim(t, events) == "max 0" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := readTrim(t, events); got == "max 0" {
		t.Fatal("the fork bomb never reached the limit")
	}
	// The bomb dies out as its forks fail: the init (its threads) and
	// sleep are left.
	pid := strings.TrimSpace(mustTug(t, u, store, "inspect", "-f", "{{.State.Pid}}", "bombd").Stdout)
	left := func() int {
		tasks, _ := os.ReadDir("/proc/" + pid + "/task")
		n, _ := strconv.Atoi(readTrim(t, filepath.Join(ctrCgroup("pids", id), "pids.current")))
		return n - len(tasks)
	}
	for left() > 4 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := mustTug(t, u, store, "ps", "--format", "{{.Names}} {{.State}}").Stdout; got != "bombd running\n" {
		t.Errorf("after the fork bomb, ps shows %q", got)
	}
	if logs := mustTug(t, u, store, "logs", "bombd").Stderr; strings.Contains(logs, "fatal error") || !strings.Contains(logs, "can't fork") {
		t.Errorf("the container's log:\n%s", logs)
	}
	mustTug(t, u, store, "exec", "bombd", "true")
}

// A tug killed with its container leaves the container's cgroup behind;
// the next tug that makes one removes it.
func TestLimitsStaleCgroupRemoved(t *testing.T) {
	u := requireV1Root(t)
	store := pulled(t, u)
	id := lastLine(mustTug(t, u, store, "run", "-d", "--name", "victim", "--network", "none", "--pids-limit", "100", busybox, "sleep", "4109").Stdout)
	pid, _ := strconv.Atoi(strings.TrimSpace(mustTug(t, u, store, "inspect", "-f", "{{.State.Pid}}", "victim").Stdout))
	monitor := 0
	for p := pid; p > 1 && monitor == 0; {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
		if err != nil {
			break
		}
		if strings.Contains(string(b), "container-monitor") {
			monitor = p
		}
		stat, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat")
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		p, _ = strconv.Atoi(f[1])
	}
	if monitor == 0 {
		t.Fatal("found no monitor above the container's init")
	}
	syscall.Kill(monitor, syscall.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	for processRunning("sleep\x004109\x00") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !fileExists(ctrCgroup("pids", id)) {
		t.Fatal("no cgroup was left behind: nothing to test")
	}
	mustTug(t, u, store, "run", "--rm", "--network", "none", busybox, "true")
	waitGone(t, "the next run", ctrCgroups(id)...)
}

// Rootless on a host without delegated cgroup v2: a container without
// limits runs (said only with --debug); a limit is refused with exit 125
// and one line that says what is missing and how to delegate; stats says
// why it cannot work.
func TestLimitsRootlessWithoutDelegation(t *testing.T) {
	fixture.RequireRoot(t)
	if pureCgroupV2() {
		t.Skip("cgroup v2 host: delegation may be set up")
	}
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	res := mustTug(t, u, store, "run", "--rm", "--network", "none", busybox, "true")
	if strings.Contains(res.Stderr, "cgroup") {
		t.Errorf("a run without limits talks about cgroups:\n%s", res.Stderr)
	}
	res = mustTug(t, u, store, "--debug", "run", "--rm", "--network", "none", busybox, "true")
	if strings.Count(res.Stderr, "no cgroup of its own") != 1 {
		t.Errorf("--debug does not say once that the container has no cgroup:\n%s", res.Stderr)
	}
	for _, args := range [][]string{
		{"-m", "64m"}, {"--cpus", "0.5"}, {"--pids-limit", "10"}, {"--cpu-shares", "100", "--memory-swap", "-1", "-m", "10m"}, {"--cgroup-parent", "mine"},
	} {
		res := tug(t, u, store, append(append([]string{"run", "--rm", "--network", "none"}, args...), busybox, "true")...)
		lines := strings.Split(strings.TrimSpace(res.Stderr), "\n")
		if res.Code != 125 || len(lines) != 1 || !strings.Contains(res.Stderr, "cgroup v1") ||
			!strings.Contains(res.Stderr, `printf '[Service]\nDelegate=cpu cpuset io memory pids\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf`) {
			t.Errorf("%v: exit %d, stderr:\n%s", args, res.Code, res.Stderr)
		}
		if !strings.Contains(res.Stderr, args[0]) {
			t.Errorf("%v: the message does not name the flag: %s", args, res.Stderr)
		}
	}
	if got := mustTug(t, u, store, "ps", "-aq").Stdout; got != "" {
		t.Errorf("refused runs left containers: %q", got)
	}
	res = tug(t, u, store, "stats", "--no-stream")
	if res.Code == 0 || !strings.Contains(res.Stderr, "cgroup") {
		t.Errorf("stats without cgroups: exit %d, stderr:\n%s", res.Code, res.Stderr)
	}
}

// Flag values are checked as Docker checks them, before anything is made.
func TestLimitsBadFlags(t *testing.T) {
	u := requireV1Root(t)
	store := pulled(t, u)
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-m", "lots"}, `invalid argument "lots" for "-m, --memory" flag`},
		{[]string{"-m", "1m"}, "Minimum memory limit allowed is 6MB"},
		{[]string{"--memory-swap", "1g"}, "You should always set the Memory limit when using Memoryswap limit"},
		{[]string{"-m", "1g", "--memory-swap", "512m"}, "Minimum memoryswap limit should be larger than memory limit"},
		{[]string{"--cpus", "1000"}, "Range of CPUs is from 0.01 to"},
		{[]string{"--cpus", "x"}, `invalid argument "x" for "--cpus" flag`},
		{[]string{"--pids-limit", "many"}, `invalid argument "many" for "--pids-limit" flag`},
		{[]string{"--cgroup-parent", "../up"}, "invalid --cgroup-parent"},
	} {
		res := tug(t, u, store, append(append([]string{"run", "--rm"}, tc.args...), busybox, "true")...)
		if res.Code != 125 || !strings.Contains(res.Stderr, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, res.Code, res.Stderr, tc.msg)
		}
	}
	// -1 and 0 are "unlimited", as in Docker.
	mustTug(t, u, store, "run", "--rm", "--network", "none", "--pids-limit", "-1", "-m", "64m", "--memory-swap", "-1", busybox, "true")
	mustTug(t, u, store, "run", "--rm", "--network", "none", "--pids-limit=0", busybox, "true")
	if got := mustTug(t, u, store, "ps", "-aq").Stdout; got != "" {
		t.Errorf("refused runs left containers: %q", got)
	}
}

// --cgroup-parent puts the container's cgroup where it says.
func TestLimitsCgroupParent(t *testing.T) {
	u := requireV1Root(t)
	store := pulled(t, u)
	parent := "tug-e2e-parent-" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() {
		for _, h := range v1Hierarchies {
			os.Remove(filepath.Join("/sys/fs/cgroup", h, parent, "sub"))
			os.Remove(filepath.Join("/sys/fs/cgroup", h, parent))
		}
	})
	id := lastLine(mustTug(t, u, store, "run", "-d", "--network", "none", "--cgroup-parent", "/"+parent+"/sub", "-m", "40m", busybox, "sleep", "60").Stdout)
	dir := filepath.Join("/sys/fs/cgroup/memory", parent, "sub", "tug-"+id)
	if got := readTrim(t, filepath.Join(dir, "memory.limit_in_bytes")); got != "41943040" {
		t.Errorf("memory.limit_in_bytes under --cgroup-parent = %s", got)
	}
	mustTug(t, u, store, "rm", "-f", id)
	waitGone(t, "rm -f", dir)
}

var statsHeader = regexp.MustCompile(`^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE / LIMIT\s+MEM %\s+NET I/O\s+BLOCK I/O\s+PIDS$`)

// stats shows Docker's columns for running containers, once or as a
// stream; CPU % follows --cpus; MEM's limit is --memory's.
func TestStats(t *testing.T) {
	u := requireV1Root(t)
	store := pulled(t, u)
	mustTug(t, u, store, "run", "-d", "--name", "spin", "--network", "none", "--cpus", "0.5", "-m", "64m", busybox, "sh", "-c", "i=0; while [ $i -lt 50000000 ]; do i=$((i+1)); done")
	mustTug(t, u, store, "run", "-d", "--name", "idle", busybox, "sleep", "300")
	mustTug(t, u, store, "run", "-d", "--name", "hostnet", "--network", "host", busybox, "sleep", "300")
	mustTug(t, u, store, "create", "--name", "notrunning", busybox, "true")
	cleanupContainers(t, u, store, "spin", "idle", "hostnet", "notrunning")

	out := mustTug(t, u, store, "stats", "--no-stream").Stdout
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !statsHeader.MatchString(lines[0]) {
		t.Fatalf("stats --no-stream:\n%s", out)
	}
	rows := map[string][]string{}
	for _, l := range lines[1:] {
		f := regexp.MustCompile(`\s{2,}`).Split(l, -1)
		if len(f) != 8 {
			t.Fatalf("row %q has %d columns", l, len(f))
		}
		rows[f[1]] = f
	}
	spin := rows["spin"]
	if spin == nil {
		t.Fatalf("no row for spin:\n%s", out)
	}
	cpu, err := strconv.ParseFloat(strings.TrimSuffix(spin[2], "%"), 64)
	if err != nil || cpu < 5 || cpu > 75 {
		t.Errorf("spin under --cpus 0.5 shows CPU %q", spin[2])
	}
	if !strings.HasSuffix(spin[3], " / 64MiB") || spin[5] != "0B / 0B" {
		t.Errorf("spin's memory %q, net %q", spin[3], spin[5])
	}
	if n, err := strconv.Atoi(spin[7]); err != nil || n < 1 {
		t.Errorf("spin's PIDS %q", spin[7])
	}
	if rows["hostnet"] == nil || rows["hostnet"][5] != "--" {
		t.Errorf("a container on the host's network: %q", rows["hostnet"])
	}

	got := mustTug(t, u, store, "stats", "--no-stream", "--format", "{{.Container}} {{.Name}} {{.MemUsage}}", "idle").Stdout
	if !regexp.MustCompile(`^idle idle \S+ / \S+\n$`).MatchString(got) {
		t.Errorf("stats --format: %q", got)
	}
	got = mustTug(t, u, store, "stats", "--no-stream", "--all", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}").Stdout
	if !strings.Contains(got, "notrunning 0.00% 0B / 0B 0\n") {
		t.Errorf("stats --all:\n%s", got)
	}
	if res := tug(t, u, store, "stats", "--no-stream", "nosuch"); res.Code == 0 || !strings.Contains(res.Stderr, "no such container") {
		t.Errorf("stats of a missing container: exit %d, %q", res.Code, res.Stderr)
	}

	// Streaming: a table each second until interrupted.
	cmd := u.Command(t.Context(), tugBin, append(append([]string{}, store...), "stats", "spin")...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	guard := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer guard.Stop()
	sc := bufio.NewScanner(stdout)
	headers, rowsSeen := 0, 0
	for headers < 2 && sc.Scan() {
		switch {
		case statsHeader.MatchString(sc.Text()):
			headers++
		case strings.Contains(sc.Text(), " spin "):
			rowsSeen++
		}
	}
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Errorf("stats stream after SIGINT: %v", err)
	}
	if headers < 2 || rowsSeen < 1 {
		t.Errorf("the stream printed %d tables, %d rows", headers, rowsSeen)
	}
}
