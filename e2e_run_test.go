//go:build e2e

package main_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tugcli/tug/fixture"
)

// users returns the three ways tug runs: rootless with a subordinate
// range, rootless with single-id mapping, and root.
func users(t *testing.T) map[string]fixture.User {
	fixture.RequireRoot(t)
	return map[string]fixture.User{
		"rootless":  fixture.RootlessUser(t),
		"single-id": fixture.NoSubIDUser(t),
		"root":      fixture.Root(),
	}
}

// pulled gives u a fresh store holding the busybox image.
func pulled(t *testing.T, u fixture.User) []string {
	store := isolated(t, u)
	mustTug(t, u, store, "pull", "-q", busybox)
	return store
}

func runOut(t *testing.T, u fixture.User, store []string, args ...string) string {
	t.Helper()
	res := mustTug(t, u, store, append([]string{"run", "--rm"}, args...)...)
	return strings.TrimSpace(res.Stdout)
}

// The "done when", in every mode: uid 0, the mapping, PID 1, the
// container's own hostname, exit codes passed through.
func TestRunBasics(t *testing.T) {
	for mode, u := range users(t) {
		t.Run(mode, func(t *testing.T) {
			store := pulled(t, u)
			if got := runOut(t, u, store, busybox, "id"); !strings.HasPrefix(got, "uid=0(root) gid=0(root)") {
				t.Fatalf("id = %q", got)
			}
			uidMap := runOut(t, u, store, busybox, "cat", "/proc/self/uid_map")
			switch mode {
			case "rootless":
				if !strings.Contains(strings.Join(strings.Fields(uidMap), " "), fmt.Sprintf("1 %d %d", u.SubIDStart, u.SubIDCount)) {
					t.Fatalf("uid_map inside lacks the subordinate range:\n%s", uidMap)
				}
			case "single-id":
				if strings.Join(strings.Fields(uidMap), " ") != fmt.Sprintf("0 %d 1", u.UID) {
					t.Fatalf("uid_map inside = %q", uidMap)
				}
			}
			if got := runOut(t, u, store, busybox, "ps", "-o", "pid,comm"); !strings.Contains(got, "1 ps") || strings.Count(got, "\n") != 1 {
				t.Fatalf("ps inside:\n%s\nwant the command alone, as PID 1", got)
			}
			if got := runOut(t, u, store, "--hostname", "box1", busybox, "hostname"); got != "box1" {
				t.Fatalf("hostname = %q", got)
			}
			if got := runOut(t, u, store, busybox, "cat", "/etc/hostname"); len(got) != 12 {
				t.Fatalf("default hostname %q is not a 12-digit container id", got)
			}
			for _, tc := range []struct {
				args []string
				code int
				msg  string
			}{
				{[]string{busybox, "sh", "-c", "exit 3"}, 3, ""},
				{[]string{busybox, "nosuchcommand"}, 127, "nosuchcommand"},
				{[]string{busybox, "/etc/passwd"}, 126, "/etc/passwd"},
				// PID 1 ignores signals from inside its namespace: --init.
				{[]string{"--init", busybox, "sh", "-c", "kill -9 $$"}, 137, ""},
				{[]string{registry.Addr + "/nosuchimage"}, 125, "nosuchimage"},
				{[]string{"-u", "nosuchuser", busybox, "id"}, 125, "nosuchuser"},
				{[]string{"-e", "=bad", busybox, "true"}, 125, "invalid environment variable: =bad"},
				{[]string{"--hostname", strings.Repeat("h", 65), busybox, "true"}, 125, "the most a host name can have is 64"},
			} {
				res := tug(t, u, store, append([]string{"run", "--rm"}, tc.args...)...)
				if res.Code != tc.code || !strings.Contains(res.Stderr, tc.msg) {
					t.Errorf("run %v: exit %d (want %d), stderr %q (want it to name %q)", tc.args, res.Code, tc.code, res.Stderr, tc.msg)
				}
			}
			// A reference that cannot be one is said to be, as Docker
			// says it, with no word of looking for it or pulling it.
			if res := tug(t, u, store, "run", "--rm", "Not/Lowercase", "true"); res.Code != 125 || lastLine(res.Stderr) != "Error: invalid reference format: \"Not/Lowercase\": could not parse reference: Not/Lowercase" ||
				strings.Contains(res.Stderr, "Unable to find") || strings.Contains(res.Stderr, "Pulling") {
				t.Errorf("run with an invalid reference: exit %d, stderr %q", res.Code, res.Stderr)
			}
		})
	}
}

func TestRunImageConfigOverrides(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	dir := fixture.TempDirFor(t, u)
	envFile := filepath.Join(dir, "env")
	os.WriteFile(envFile, []byte("# comment\nFROM_FILE=1\nFOO=file\n"), 0o644)
	env := runOut(t, u, store, "-e", "FOO=bar", "--env-file", envFile, busybox, "env")
	for _, want := range []string{"FOO=bar", "FROM_FILE=1", "PATH=/usr/local/sbin:", "HOME=/root", "HOSTNAME="} {
		if !strings.Contains(env, want) {
			t.Errorf("env lacks %q:\n%s", want, env)
		}
	}
	if got := runOut(t, u, store, "-w", "/new/dir", busybox, "pwd"); got != "/new/dir" {
		t.Errorf("-w: pwd = %q", got)
	}
	if got := runOut(t, u, store, "-u", "user", busybox, "id"); got != "uid=1000(user) gid=1000(user) groups=1000(user)" {
		t.Errorf("-u user: id = %q", got)
	}
	if got := runOut(t, u, store, "-u", "1000:65534", busybox, "id", "-u"); got != "1000" {
		t.Errorf("-u 1000:65534: id -u = %q", got)
	}
	if got := runOut(t, u, store, "-u", "user", busybox, "sh", "-c", "echo $HOME"); got != "/home/user" {
		t.Errorf("-u user: HOME = %q", got)
	}
	if got := runOut(t, u, store, "--entrypoint", "echo", busybox, "hello", "world"); got != "hello world" {
		t.Errorf("--entrypoint echo: %q", got)
	}
	// COMMAND flags belong to the container, not to tug.
	if got := runOut(t, u, store, busybox, "echo", "--rm", "-e"); got != "--rm -e" {
		t.Errorf("flags after the image: %q", got)
	}
}

// What a process inside cannot do or see.
func TestRunIsolation(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	if got := runOut(t, u, store, busybox, "sh", "-c", "echo /proc/[0-9]*"); got != "/proc/1" {
		t.Errorf("the container sees processes %s, want only itself as /proc/1", got)
	}
	for _, tc := range []struct{ name, script string }{
		{"mount", "mkdir -p /mnt && mount -t tmpfs none /mnt"},
		{"write /proc/sys", "echo 1 > /proc/sys/kernel/domainname"},
		{"read /proc/kcore", "test -s /proc/kcore && head -c1 /proc/kcore | od | grep -q ."},
		{"load a module", "insmod /dev/null"},
		{"new user namespace", "unshare -U true"},
		{"raw sysrq", "echo h > /proc/sysrq-trigger"},
	} {
		res := tug(t, u, store, "run", "--rm", busybox, "sh", "-c", tc.script)
		if res.Code == 0 {
			t.Errorf("%s succeeded inside the container", tc.name)
		}
	}
	if got := runOut(t, u, store, "--network", "none", busybox, "sh", "-c", "ls /sys/class/net"); got != "lo" {
		t.Errorf("network interfaces with --network none = %q, want only lo", got)
	}
	caps := runOut(t, u, store, busybox, "grep", "CapEff", "/proc/self/status")
	if !strings.HasSuffix(caps, "00000000a80425fb") {
		t.Errorf("effective capabilities = %q, want Docker's default set a80425fb", caps)
	}
	if got := runOut(t, u, store, "--cap-drop", "ALL", busybox, "grep", "CapEff", "/proc/self/status"); !strings.HasSuffix(got, "0000000000000000") {
		t.Errorf("--cap-drop ALL: %q", got)
	}
	if got := runOut(t, u, store, "--cap-add", "SYS_ADMIN", busybox, "sh", "-c", "mkdir -p /mnt && mount -t tmpfs none /mnt && echo mounted"); got != "mounted" {
		t.Errorf("--cap-add SYS_ADMIN: mount gave %q", got)
	}
	if got := runOut(t, u, store, "--privileged", busybox, "sh", "-c", "mkdir -p /mnt && mount -t tmpfs none /mnt && grep NoNewPrivs /proc/self/status"); !strings.Contains(got, "NoNewPrivs:\t0") {
		t.Errorf("--privileged: %q", got)
	}
	if got := runOut(t, u, store, "--security-opt", "seccomp=unconfined", busybox, "grep", "Seccomp:", "/proc/self/status"); !strings.HasSuffix(got, "0") {
		t.Errorf("seccomp=unconfined: %q", got)
	}
	if got := runOut(t, u, store, busybox, "grep", "Seccomp:", "/proc/self/status"); !strings.HasSuffix(got, "2") {
		t.Errorf("default seccomp mode: %q, want 2 (filter)", got)
	}
	if got := runOut(t, u, store, "--ulimit", "nofile=100:200", busybox, "sh", "-c", "ulimit -n; ulimit -Hn"); got != "100\n200" {
		t.Errorf("--ulimit nofile=100:200: %q", got)
	}
	// Without --ulimit, open files are limited as Docker's containers are
	// (systemd's default soft limit, 1024), not by tug's own soft limit
	// (Go raises it to the hard one), with tug's init or without.
	for _, args := range [][]string{nil, {"--init"}} {
		got := runOut(t, u, store, append(args, busybox, "sh", "-c", "ulimit -Sn; ulimit -Hn")...)
		var soft, hard int
		if _, err := fmt.Sscan(got, &soft, &hard); err != nil || soft != min(1024, hard) {
			t.Errorf("run %v: nofile soft and hard limits %q, want the soft one 1024 (or the hard one, if lower)", args, got)
		}
	}
}

func TestRunMounts(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	host := fixture.TempDirFor(t, u)
	// :cached (compose files from Docker Desktop) is accepted and ignored, as Docker does.
	runOut(t, u, store, "-v", host+":/data:cached", busybox, "sh", "-c", "echo hi > /data/f")
	if b, err := os.ReadFile(filepath.Join(host, "f")); err != nil || string(b) != "hi\n" {
		t.Fatalf("file written to a bind mount: %q, %v", b, err)
	}
	if res := tug(t, u, store, "run", "--rm", "-v", host+":/data:ro", busybox, "touch", "/data/g"); res.Code == 0 {
		t.Fatal("wrote to a :ro bind mount")
	}
	created := filepath.Join(host, "made/by/tug")
	runOut(t, u, store, "-v", created+":/x", busybox, "true")
	if fi, err := os.Stat(created); err != nil || !fi.IsDir() {
		t.Fatalf("-v with a missing host path did not create it: %v", err)
	}
	runOut(t, u, store, "-v", "tugvol:/v", busybox, "sh", "-c", "echo kept > /v/f")
	if got := runOut(t, u, store, "--mount", "type=volume,source=tugvol,target=/w", busybox, "cat", "/w/f"); got != "kept" {
		t.Fatalf("named volume across runs: %q", got)
	}
	if got := runOut(t, u, store, "--mount", "type=bind,source="+host+",target=/b,readonly", busybox, "cat", "/b/f"); got != "hi" {
		t.Fatalf("--mount type=bind: %q", got)
	}
	res := tug(t, u, store, "run", "--rm", "--mount", "type=bind,source="+host+"/nonexistent,target=/b", busybox, "true")
	if res.Code != 125 || !strings.Contains(res.Stderr, host+"/nonexistent") {
		t.Fatalf("--mount with a missing source: exit %d, %q", res.Code, res.Stderr)
	}
	if got := runOut(t, u, store, "--tmpfs", "/scratch:size=1m", busybox, "sh", "-c", "grep /scratch /proc/mounts | cut -d' ' -f3"); got != "tmpfs" {
		t.Fatalf("--tmpfs: %q", got)
	}
	// Docker's options: mount flags among tmpfs's own, nosuid, nodev and
	// noexec by default, exec to lift it.
	opts := func(spec string) string {
		return runOut(t, u, store, "--tmpfs", spec, busybox, "sh", "-c", "grep ' /scratch ' /proc/mounts | cut -d' ' -f4")
	}
	if got := opts("/scratch:rw,noexec,nosuid,size=1m"); !strings.HasPrefix(got, "rw,nosuid,nodev,noexec,") || !strings.Contains(got, "size=1024k") {
		t.Fatalf("--tmpfs /scratch:rw,noexec,nosuid,size=1m: mounted %q", got)
	}
	if got := opts("/scratch:ro,exec"); !strings.HasPrefix(got, "ro,nosuid,nodev,relatime") {
		t.Fatalf("--tmpfs /scratch:ro,exec: mounted %q", got)
	}
	script := "cp /bin/busybox /scratch/sh && /scratch/sh -c true && echo ran"
	if res := tug(t, u, store, "run", "--rm", "--tmpfs", "/scratch", busybox, "sh", "-c", script); res.Code == 0 || !strings.Contains(res.Stderr, "Permission denied") {
		t.Fatalf("--tmpfs /scratch: ran a program from it (exit %d, %q), want noexec as Docker's", res.Code, res.Stderr)
	}
	if got := runOut(t, u, store, "--tmpfs", "/scratch:exec", busybox, "sh", "-c", script); got != "ran" {
		t.Fatalf("--tmpfs /scratch:exec: %q", got)
	}
	if res := tug(t, u, store, "run", "--rm", "--tmpfs", "/scratch:bogus", busybox, "true"); res.Code != 125 || !strings.Contains(res.Stderr, `unknown tmpfs option "bogus"`) {
		t.Fatalf("--tmpfs /scratch:bogus: exit %d, %q", res.Code, res.Stderr)
	}
	// /dev/shm: Docker's 64m, or --shm-size (with tug as PID 1 too, whose
	// init mounts it from the whole spec, not the early one).
	shm := "grep ' /dev/shm ' /proc/mounts | grep -o 'size=[0-9]*k'"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "size=65536k"},
		{[]string{"--shm-size", "128m"}, "size=131072k"},
		{[]string{"--init", "--shm-size", "1g"}, "size=1048576k"},
	} {
		if got := runOut(t, u, store, append(tc.args, busybox, "sh", "-c", shm)...); got != tc.want {
			t.Fatalf("run %v: /dev/shm has %q, want %s", tc.args, got, tc.want)
		}
	}
	if res := tug(t, u, store, "run", "--rm", "--shm-size", "lots", busybox, "true"); res.Code != 125 || !strings.Contains(res.Stderr, `invalid --shm-size "lots"`) {
		t.Fatalf("--shm-size lots: exit %d, %q", res.Code, res.Stderr)
	}
	if res := tug(t, u, store, "run", "--rm", "--read-only", busybox, "touch", "/x"); res.Code == 0 {
		t.Fatal("--read-only: wrote to the root filesystem")
	}
	if got := runOut(t, u, store, "--read-only", "--tmpfs", "/tmp", busybox, "sh", "-c", "touch /tmp/x && echo ok"); got != "ok" {
		t.Fatalf("--read-only with a writable tmpfs: %q", got)
	}
	// The working directory is made before the root turns read-only, as
	// Docker makes it; with tug as PID 1 too.
	for _, init := range []string{"--init=false", "--init"} {
		if got := runOut(t, u, store, init, "--read-only", "-w", "/made/here", busybox, "pwd"); got != "/made/here" {
			t.Fatalf("--read-only %s -w /made/here: pwd %q", init, got)
		}
	}
	// A mount given before the one above it still shows (Docker mounts
	// the shallower first).
	inner := fixture.TempDirFor(t, u)
	os.WriteFile(filepath.Join(inner, "f"), []byte("inner\n"), 0o644)
	if got := runOut(t, u, store, "-v", inner+":/data/in", "--tmpfs", "/data", busybox, "cat", "/data/in/f"); got != "inner" {
		t.Fatalf("-v DIR:/data/in --tmpfs /data: /data/in/f is %q, want the inner mount's file", got)
	}
}

// Symlinks in an image must not send tug's own writes or mounts to host
// paths.
func TestRunSymlinksStayInside(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := isolated(t, u)
	victim := fixture.TempDirFor(t, u)
	os.WriteFile(filepath.Join(victim, "hosts"), []byte("untouched\n"), 0o644)
	img, err := fixture.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	img, err = fixture.AppendLayer(img,
		fixture.File{Name: "etc/hosts", Linkname: "../../../../../../.." + victim + "/hosts"},
		fixture.File{Name: "etc/resolv.conf", Linkname: victim + "/resolv.conf"},
		fixture.File{Name: "escape", Linkname: victim},
	)
	if err != nil {
		t.Fatal(err)
	}
	ref := registry.Addr + "/symlinks:latest"
	if _, err := fixture.Push(img, ref); err != nil {
		t.Fatal(err)
	}
	mustTug(t, u, store, "pull", "-q", ref)
	out := runOut(t, u, store, "-v", fixture.TempDirFor(t, u)+":/escape/sub", ref, "cat", "/etc/hosts")
	if !strings.Contains(out, "localhost") {
		t.Fatalf("/etc/hosts inside:\n%s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(victim, "hosts")); string(b) != "untouched\n" {
		t.Fatalf("a symlink in the image made tug write the host's %s/hosts: %q", victim, b)
	}
	entries, _ := os.ReadDir(victim)
	if len(entries) != 1 {
		t.Fatalf("tug created files in the host directory an image symlink points at: %v", entries)
	}
}

// An image whose /dev is a file cannot be set up: the init fails on its
// first mounts, made while tug is still working out the rest of the spec
// (see Prestarted.Mounted). The error says what failed, not that the
// init's pipe was closed when tug sent the rest.
func TestRunInitFailsEarly(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := isolated(t, u)
	img, err := fixture.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	if img, err = fixture.AppendLayer(img, fixture.File{Name: "dev", Mode: 0o644, Content: "not a directory\n"}); err != nil {
		t.Fatal(err)
	}
	ref := registry.Addr + "/devfile:latest"
	if _, err := fixture.Push(img, ref); err != nil {
		t.Fatal(err)
	}
	mustTug(t, u, store, "pull", "-q", ref)
	// With the default network, its set-up finds the init gone first.
	for _, network := range []string{"none", "private"} {
		res := tug(t, u, store, "run", "--rm", "--network", network, ref, "true")
		if res.Code != 125 || !strings.Contains(res.Stderr, "creating /dev in the container") {
			t.Fatalf("--network %s, /dev a file: exit %d, want 125 and an error about /dev:\n%s", network, res.Code, res.Stderr)
		}
	}
	if out := mustTug(t, u, store, "ps", "-a", "-q").Stdout; strings.TrimSpace(out) != "" {
		t.Fatalf("the failed --rm container was left behind: %q", out)
	}
}

// No host descriptor reaches the container, and the tug binary is not
// reachable from inside (runc CVE-2024-21626, CVE-2019-5736).
func TestRunNoLeaks(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	leak, err := os.Open("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	defer leak.Close()
	cmd := u.Command(t.Context(), tugBin, append(append([]string{}, store...), "run", "--rm", busybox, "ls", "/proc/self/fd")...)
	cmd.ExtraFiles = []*os.File{leak, leak, leak} // fds 3, 4, 5 in tug
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if got := strings.Fields(string(out)); strings.Join(got, " ") != "0 1 2 3" {
		t.Fatalf("descriptors open in the container: %v, want 0 1 2 and ls's own 3", got)
	}
	// A working directory through a descriptor the init holds would lead to
	// the host's filesystem (CVE-2024-21626): none is a directory.
	for fd := 3; fd <= 8; fd++ {
		res := tug(t, u, store, "run", "--rm", "-w", fmt.Sprintf("/proc/self/fd/%d", fd), busybox, "ls", "..")
		if res.Code == 0 {
			t.Fatalf("-w /proc/self/fd/%d worked: the init held a directory descriptor:\n%s", fd, res.Stdout)
		}
	}
	exe := runOut(t, u, store, "--init", busybox, "sh", "-c", "readlink /proc/1/exe; (echo x > /proc/1/exe) 2>/dev/null && echo WROTE; true")
	if strings.Contains(exe, tugBin) || strings.Contains(exe, "WROTE") {
		t.Fatalf("the container reached tug's binary through /proc/1/exe: %q", exe)
	}
	if got := runOut(t, u, store, "--init", busybox, "ps", "-o", "pid,comm"); !strings.Contains(got, "1 tug-init") {
		t.Fatalf("with --init, ps shows:\n%s", got)
	}
}

// SIGKILL of tug during a run leaves no mount behind, and the next run works.
func TestRunKilledLeavesNoMount(t *testing.T) {
	for i, mode := range []string{"rootless", "root"} {
		t.Run(mode, func(t *testing.T) {
			u := fixture.Root()
			if mode == "rootless" {
				u = fixture.RootlessUser(t)
			}
			store := pulled(t, u)
			// A duration no other test uses, to find exactly this process.
			secs := fmt.Sprint(4100 + i)
			cmdline := "sleep\x00" + secs + "\x00"
			cmd := u.Command(t.Context(), tugBin, append(append([]string{}, store...), "run", "--rm", busybox, "sleep", secs)...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for !processRunning(cmdline) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if !processRunning(cmdline) {
				t.Fatal("the container never started")
			}
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			deadline = time.Now().Add(5 * time.Second)
			for processRunning(cmdline) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if processRunning(cmdline) {
				t.Fatal("the container outlived tug")
			}
			mounts, _ := os.ReadFile("/proc/self/mountinfo")
			if strings.Contains(string(mounts), store[1]) {
				t.Fatalf("mounts of the store left in the host's namespace:\n%s", grepLines(string(mounts), store[1]))
			}
			if got := runOut(t, u, store, busybox, "echo", "again"); got != "again" {
				t.Fatalf("next run printed %q", got)
			}
		})
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// -it through a real pseudo-terminal (script(1) gives tug one); without -t
// stdout and stderr stay apart; -i forwards stdin, its absence does not.
func TestRunTerminalAndStdio(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	cmdline := strings.Join(append(append([]string{tugBin}, store...), "run", "--rm", "-it", busybox, "sh"), " ")
	cmd := u.Command(t.Context(), "script", "-qec", cmdline, "/dev/null")
	cmd.Stdin = strings.NewReader("tty; echo term=$TERM; exit 3\n")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Fatalf("-it: exit %d (%v), want 3:\n%s", code, err, out)
	}
	for _, want := range []string{"/dev/pts/0", "term=xterm"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("-it output lacks %q:\n%s", want, out)
		}
	}

	res := mustTug(t, u, store, "run", "--rm", busybox, "sh", "-c", "test -t 1 || echo no-tty; echo err >&2")
	if res.Stdout != "no-tty\n" || res.Stderr != "err\n" {
		t.Fatalf("without -t: stdout %q stderr %q", res.Stdout, res.Stderr)
	}
	in := u.Command(t.Context(), tugBin, append(append([]string{}, store...), "run", "--rm", "-i", busybox, "cat")...)
	in.Stdin = strings.NewReader("piped in\n")
	if out, err := in.Output(); err != nil || string(out) != "piped in\n" {
		t.Fatalf("-i: %q, %v", out, err)
	}
	noIn := u.Command(t.Context(), tugBin, append(append([]string{}, store...), "run", "--rm", busybox, "cat")...)
	noIn.Stdin = strings.NewReader("must not arrive\n")
	if out, err := noIn.Output(); err != nil || string(out) != "" {
		t.Fatalf("without -i, stdin reached the container: %q, %v", out, err)
	}
}

func TestVolumeCommands(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	if got := strings.TrimSpace(mustTug(t, u, store, "volume", "create", "data1").Stdout); got != "data1" {
		t.Fatalf("volume create printed %q", got)
	}
	runOut(t, u, store, "-v", "data1:/d", busybox, "sh", "-c", "echo v > /d/f")
	runOut(t, u, store, "-v", "data2:/d", busybox, "true")
	ls := mustTug(t, u, store, "volume", "ls")
	if lines := strings.Split(strings.TrimSpace(ls.Stdout), "\n"); len(lines) != 3 || !strings.Contains(lines[0], "VOLUME NAME") {
		t.Fatalf("volume ls:\n%s", ls.Stdout)
	}
	mp := strings.TrimSpace(mustTug(t, u, store, "volume", "inspect", "-f", "{{.Mountpoint}}", "data1").Stdout)
	if mp != filepath.Join(store[1], "volumes/data1/_data") {
		t.Fatalf("volume inspect Mountpoint = %q", mp)
	}
	if b, err := os.ReadFile(filepath.Join(mp, "f")); err != nil || string(b) != "v\n" {
		t.Fatalf("volume data on the host: %q %v", b, err)
	}
	mustTug(t, u, store, "volume", "rm", "data1", "data2")
	if q := mustTug(t, u, store, "volume", "ls", "-q").Stdout; q != "" {
		t.Fatalf("volumes left after rm: %q", q)
	}
	if res := tug(t, u, store, "volume", "rm", "nosuchvolume"); res.Code != 1 || !strings.Contains(res.Stderr, "no such volume") {
		t.Fatalf("volume rm of a missing volume: exit %d, %q", res.Code, res.Stderr)
	}
}

// A signal to tug reaches the container's PID 1.
func TestRunForwardsSignals(t *testing.T) {
	u := fixture.RootlessUser(t)
	wantSignalForwarded(t, "", u, pulled(t, u))
}

// wantSignalForwarded runs a container as u that traps SIGTERM, sends
// tug SIGTERM, and fails the test unless the trap ran and its status came
// back.
func wantSignalForwarded(t *testing.T, what string, u fixture.User, store []string) {
	t.Helper()
	cmd := u.Command(t.Context(), tugBin, append(append([]string{}, store...), "run", "--rm", busybox,
		"sh", "-c", `trap "echo got TERM; exit 7" TERM; echo ready; while true; do sleep 0.05; done`)...)
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "ready") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 7 || !strings.Contains(out.String(), "got TERM") {
		t.Errorf("after SIGTERM to tug%s: exit %d, output %q; want the container's trap to run and exit 7", what, code, out.String())
	}
}

// --security-opt seccomp=FILE loads a Docker-format profile.
func TestRunSeccompProfileFile(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	dir := fixture.TempDirFor(t, u)
	profile := filepath.Join(dir, "profile.json")
	os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644)
	res := tug(t, u, store, "run", "--rm", "--security-opt", "seccomp="+profile, busybox, "mkdir", "/newdir")
	if res.Code == 0 || !strings.Contains(res.Stderr, "not permitted") {
		t.Fatalf("mkdir under a profile that denies it: exit %d, %q", res.Code, res.Stderr)
	}
	if got := runOut(t, u, store, "--security-opt", "seccomp="+profile, busybox, "echo", "ok"); got != "ok" {
		t.Fatalf("other syscalls under the profile: %q", got)
	}
	bad := tug(t, u, store, "run", "--rm", "--security-opt", "seccomp="+filepath.Join(dir, "missing.json"), busybox, "true")
	if bad.Code != 125 || !strings.Contains(bad.Stderr, "missing.json") {
		t.Fatalf("missing profile: exit %d, %q", bad.Code, bad.Stderr)
	}
}

// --name is unique among containers.
func TestRunName(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	mustTug(t, u, store, "run", "--name", "web1", busybox, "true")
	res := tug(t, u, store, "run", "--name", "web1", busybox, "true")
	if res.Code != 125 || !strings.Contains(res.Stderr, `"web1" is already in use`) {
		t.Fatalf("second container named web1: exit %d, %q", res.Code, res.Stderr)
	}
}

// Containers kept after a run (no --rm) are listed by ps with Docker's
// status words, inspected, removed by rm and prune; a running one needs -f.
func TestContainerLifecycle(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	if res := tug(t, u, store, "run", "--name", "three", busybox, "sh", "-c", "exit 3"); res.Code != 3 {
		t.Fatalf("run: exit %d", res.Code)
	}
	mustTug(t, u, store, "run", busybox, "true")
	all := mustTug(t, u, store, "ps", "-a", "--format", "{{.Names}}|{{.Status}}").Stdout
	if !strings.Contains(all, "three|Exited (3)") || strings.Count(all, "Exited (0)") != 1 {
		t.Fatalf("ps -a:\n%s", all)
	}
	if running := mustTug(t, u, store, "ps", "-q").Stdout; running != "" {
		t.Fatalf("ps lists exited containers as running: %q", running)
	}
	if got := strings.TrimSpace(mustTug(t, u, store, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.Name}}", "three").Stdout); got != "exited 3 /three" {
		t.Fatalf("inspect of a container: %q", got)
	}

	cmd := u.Command(t.Context(), tugBin, append(append([]string{}, store...), "run", "--name", "sleeper", busybox, "sleep", "60")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(mustTug(t, u, store, "ps").Stdout, "sleeper") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if res := tug(t, u, store, "rm", "sleeper"); res.Code != 1 || !strings.Contains(res.Stderr, "running") {
		t.Fatalf("rm of a running container: exit %d, %q", res.Code, res.Stderr)
	}
	if out := mustTug(t, u, store, "rm", "-f", "sleeper").Stdout; strings.TrimSpace(out) != "sleeper" {
		t.Fatalf("rm -f printed %q", out)
	}
	cmd.Wait()
	mustTug(t, u, store, "container", "prune", "-f")
	if left := mustTug(t, u, store, "ps", "-aq").Stdout; left != "" {
		t.Fatalf("containers left after prune: %q", left)
	}
	if res := tug(t, u, store, "rm", "nosuch"); res.Code != 1 || !strings.Contains(res.Stderr, "no such container") {
		t.Fatalf("rm of a missing container: exit %d, %q", res.Code, res.Stderr)
	}
}

// run -d returns at once with the id; the container keeps running after
// the caller exits, under its own monitor: logs, stop (with the image's
// shell trap), wait, kill, --rm.
func TestRunDetached(t *testing.T) {
	for mode, u := range map[string]fixture.User{"rootless": fixture.RootlessUser(t), "root": fixture.Root()} {
		t.Run(mode, func(t *testing.T) {
			store := pulled(t, u)
			id := strings.TrimSpace(mustTug(t, u, store, "run", "-d", "--name", "bg", busybox, "sh", "-c",
				`trap "echo bye; exit 5" TERM; echo hello; echo oops >&2; while true; do sleep 0.1; done`).Stdout)
			if len(id) != 64 {
				t.Fatalf("run -d printed %q, want a container id", id)
			}
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(mustTug(t, u, store, "logs", "bg").Stdout, "hello") && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if got := mustTug(t, u, store, "ps", "--format", "{{.Names}} {{.State}}").Stdout; strings.TrimSpace(got) != "bg running" {
				t.Fatalf("ps after the caller exited: %q", got)
			}
			logs := mustTug(t, u, store, "logs", "bg")
			if logs.Stdout != "hello\n" || logs.Stderr != "oops\n" {
				t.Fatalf("logs: stdout %q stderr %q", logs.Stdout, logs.Stderr)
			}
			mustTug(t, u, store, "stop", "-t", "5", "bg")
			if code := strings.TrimSpace(mustTug(t, u, store, "wait", "bg").Stdout); code != "5" {
				t.Fatalf("wait after stop: %q, want the trap's 5", code)
			}
			if tail := mustTug(t, u, store, "logs", "--tail", "1", "bg").Stdout; tail != "bye\n" {
				t.Fatalf("logs --tail 1 after stop: %q", tail)
			}
			mustTug(t, u, store, "rm", "bg")

			mustTug(t, u, store, "run", "-d", "--rm", "--name", "gone", busybox, "sleep", "60")
			mustTug(t, u, store, "kill", "gone")
			deadline = time.Now().Add(10 * time.Second)
			for mustTug(t, u, store, "ps", "-aq").Stdout != "" && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if left := mustTug(t, u, store, "ps", "-aq").Stdout; left != "" {
				t.Fatalf("run -d --rm left its container after kill: %q", left)
			}
		})
	}
}

// exec runs a command in a running (detached) container through its init:
// same namespaces, capabilities and seccomp filter; -u, -e, -w, -i; exit
// statuses as Docker's.
func TestExec(t *testing.T) {
	for mode, u := range map[string]fixture.User{"rootless": fixture.RootlessUser(t), "root": fixture.Root()} {
		t.Run(mode, func(t *testing.T) {
			store := pulled(t, u)
			mustTug(t, u, store, "run", "-d", "--name", "ex", "--hostname", "exhost", busybox, "sleep", "4103")
			t.Cleanup(func() {
				// t.Context is over by now.
				_ = u.Command(context.Background(), tugBin, append(append([]string{}, store...), "rm", "-f", "ex")...).Run()
			})
			out := mustTug(t, u, store, "exec", "ex", "sh", "-c", "hostname; id -u; grep -E '^(Seccomp|CapEff):' /proc/self/status; ps -o comm | grep -c sleep").Stdout
			if want := "exhost\n0\nCapEff:\t00000000a80425fb\nSeccomp:\t2\n1\n"; out != want {
				t.Fatalf("exec sees:\n%q\nwant\n%q", out, want)
			}
			if got := strings.TrimSpace(mustTug(t, u, store, "exec", "-u", "user", "ex", "id", "-un").Stdout); got != "user" {
				t.Fatalf("exec -u user: %q", got)
			}
			if got := strings.TrimSpace(mustTug(t, u, store, "exec", "-e", "FOO=bar", "-w", "/tmp", "ex", "sh", "-c", "echo $FOO $(pwd)").Stdout); got != "bar /tmp" {
				t.Fatalf("exec -e -w: %q", got)
			}
			cmd := u.Command(t.Context(), tugBin, append(append([]string{}, store...), "exec", "-i", "ex", "cat")...)
			cmd.Stdin = strings.NewReader("through exec\n")
			if b, err := cmd.Output(); err != nil || string(b) != "through exec\n" {
				t.Fatalf("exec -i: %q %v", b, err)
			}
			// -it through a real pseudo-terminal (script gives tug one).
			line := strings.Join(append(append([]string{tugBin}, store...), "exec", "-it", "ex", "sh"), " ")
			sc := u.Command(t.Context(), "script", "-qec", line, "/dev/null")
			sc.Stdin = strings.NewReader("tty; echo term=$TERM; exit 4\n")
			b, _ := sc.CombinedOutput()
			if sc.ProcessState.ExitCode() != 4 || !strings.Contains(string(b), "/dev/pts/") || !strings.Contains(string(b), "term=xterm") {
				t.Fatalf("exec -it: exit %d\n%s", sc.ProcessState.ExitCode(), b)
			}
			if res := tug(t, u, store, "exec", "ex", "sh", "-c", "exit 7"); res.Code != 7 {
				t.Fatalf("exec exit status: %d", res.Code)
			}
			if res := tug(t, u, store, "exec", "ex", "nosuchcmd"); res.Code != 127 || !strings.Contains(res.Stderr, "nosuchcmd") {
				t.Fatalf("exec of a missing command: exit %d %q", res.Code, res.Stderr)
			}
			mustTug(t, u, store, "stop", "-t", "1", "ex")
			if res := tug(t, u, store, "exec", "ex", "true"); res.Code == 0 || !strings.Contains(res.Stderr, "not running") {
				t.Fatalf("exec in a stopped container: exit %d %q", res.Code, res.Stderr)
			}
		})
	}
}

// create prepares a container without starting it; start runs it under a
// monitor (start -a waits and passes its status on); restart stops and
// starts it again.
func TestCreateStartRestart(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	id := strings.TrimSpace(mustTug(t, u, store, "create", "--name", "c1", busybox, "sh", "-c", "echo ran; exit 3").Stdout)
	if len(id) != 64 {
		t.Fatalf("create printed %q", id)
	}
	if got := strings.TrimSpace(mustTug(t, u, store, "ps", "-a", "--format", "{{.Names}} {{.Status}}").Stdout); got != "c1 Created" {
		t.Fatalf("after create, ps -a: %q", got)
	}
	res := tug(t, u, store, "start", "-a", "c1")
	if res.Code != 3 || res.Stdout != "ran\n" {
		t.Fatalf("start -a: exit %d, stdout %q", res.Code, res.Stdout)
	}
	mustTug(t, u, store, "start", "c1")
	mustTug(t, u, store, "wait", "c1")
	if logs := mustTug(t, u, store, "logs", "c1").Stdout; logs != "ran\nran\n" {
		t.Fatalf("logs after two starts: %q", logs)
	}
	mustTug(t, u, store, "rm", "c1")

	mustTug(t, u, store, "run", "-d", "--name", "r1", busybox, "sleep", "4104")
	defer func() {
		_ = u.Command(context.Background(), tugBin, append(append([]string{}, store...), "rm", "-f", "r1")...).Run()
	}()
	before := strings.TrimSpace(mustTug(t, u, store, "inspect", "-f", "{{.State.Pid}}", "r1").Stdout)
	mustTug(t, u, store, "restart", "-t", "1", "r1")
	after := strings.TrimSpace(mustTug(t, u, store, "inspect", "-f", "{{.State.Pid}}", "r1").Stdout)
	if before == after || after == "0" {
		t.Fatalf("restart kept pid %s -> %s", before, after)
	}
	if got := strings.TrimSpace(mustTug(t, u, store, "exec", "r1", "echo", "back").Stdout); got != "back" {
		t.Fatalf("exec after restart: %q", got)
	}
}

// TestRunBadSpecLeavesNoContainer is the regression test for `run --rm`
// whose spec fails after the layer is mounted (a user absent from the
// image, a bind source that cannot be made): the prestarted init, told
// the root file system, was ended only after the layer was unmounted, so
// a late one made /proc and /dev in the bare mount point, and the
// container stayed, one that even `rm -f` could not remove. Side by side
// runs make the init late: before the fix about a third of them left one.
func TestRunBadSpecLeavesNoContainer(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	var cmds [][]string
	for i := range 24 {
		if i%2 == 0 {
			cmds = append(cmds, []string{"run", "--rm", "-u", "nosuchuser", busybox, "true"})
		} else {
			cmds = append(cmds, []string{"run", "--rm", "-v", "/proc/1/nosuchdir/x:/x", busybox, "true"})
		}
	}
	for _, r := range runAll(t.Context(), u, store, cmds) {
		if r.err != nil || r.code != 125 {
			t.Errorf("%v: exit %d, %v (want 125)\n%s", r.args, r.code, r.err, r.stderr)
		}
	}
	if ids := strings.Fields(mustTug(t, u, store, "ps", "-a", "-q").Stdout); len(ids) != 0 {
		res := tug(t, u, store, append([]string{"rm", "-f"}, ids...)...)
		t.Fatalf("failed runs with --rm left %d containers (rm -f: exit %d, %s)", len(ids), res.Code, lastLine(res.Stderr))
	}
	if res := tug(t, u, store, "system", "check"); res.Code != 0 || !strings.Contains(res.Stdout, "No problems found") {
		t.Errorf("system check: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
}

// TestRmClearsStrayMountPoint: a container whose layer's bare mount point
// holds directories, what a tug before TestRunBadSpecLeavesNoContainer's
// fix left (/proc and /dev, made by a late init), is removed by rm;
// storage alone refused ("replacing mount point ...: directory not
// empty").
func TestRmClearsStrayMountPoint(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	pattern := filepath.Join(store[1], "overlay", "*", "merged")
	before, _ := filepath.Glob(pattern)
	id := strings.TrimSpace(mustTug(t, u, store, "create", busybox, "true").Stdout)
	after, _ := filepath.Glob(pattern)
	after = slices.DeleteFunc(after, func(p string) bool { return slices.Contains(before, p) })
	if len(after) != 1 {
		t.Fatalf("create made %d layers with a mount point, want 1: %v", len(after), after)
	}
	merged := after[0]
	for _, d := range []string{"proc", "dev"} {
		fixture.MustRun(t, u, "mkdir", filepath.Join(merged, d))
	}
	if res := tug(t, u, store, "rm", id); res.Code != 0 {
		t.Fatalf("rm of a container with a stray /proc and /dev in its mount point: exit %d\n%s", res.Code, res.Stderr)
	}
	if got := strings.TrimSpace(mustTug(t, u, store, "ps", "-a", "-q").Stdout); got != "" {
		t.Fatalf("ps -a after rm: %q", got)
	}
	if _, err := os.Stat(filepath.Dir(merged)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the container's layer is still there: %v", err)
	}
}

// A named volume mounted empty gets what the image has at its destination,
// owners and modes kept, and takes the directory's own owner and mode (as
// Docker and Podman fill it): a non-root image can write to its volume.
// Only an empty volume is filled; nocopy (-v) and volume-nocopy (--mount)
// keep it empty.
func TestNamedVolumeCopyUp(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + "\nRUN mkdir -p /data/sub && echo hi > /data/sub/f && ln -s sub/f /data/link && chown -R 1000:1000 /data && chmod 750 /data\nUSER 1000\n",
	})
	mustTug(t, u, store, "build", "-q", "--network", "none", "-t", "copyup", ctx)
	show := "stat -c '%n %u:%g %a' /data /data/sub /data/sub/f; readlink /data/link; cat /data/sub/f; touch /data/new && echo writable"
	want := "/data 1000:1000 750\n/data/sub 1000:1000 755\n/data/sub/f 1000:1000 644\nsub/f\nhi\nwritable\n"
	if got := mustTug(t, u, store, "run", "--rm", "--network", "none", "-v", "cu:/data", "copyup", "sh", "-c", show).Stdout; got != want {
		t.Errorf("a new volume on /data shows\n%s\nwant\n%s", got, want)
	}
	// Not empty any more: kept as it is.
	mustTug(t, u, store, "run", "--rm", "--network", "none", "-v", "cu:/data", "copyup", "sh", "-c", "echo changed > /data/sub/f")
	if got := mustTug(t, u, store, "run", "--rm", "--network", "none", "-v", "cu:/data", "copyup", "cat", "/data/sub/f").Stdout; got != "changed\n" {
		t.Errorf("the volume's file after a change: %q", got)
	}
	for _, args := range [][]string{{"-v", "nocopy1:/data:nocopy"}, {"--mount", "type=volume,src=nocopy2,dst=/data,volume-nocopy"}} {
		run := append(append([]string{"run", "--rm", "--network", "none", "-u", "0"}, args...), "copyup", "ls", "-A", "/data")
		if got := mustTug(t, u, store, run...).Stdout; got != "" {
			t.Errorf("%v: the volume has %q, want it empty", args, got)
		}
	}
}

// -v DEST makes an anonymous volume (named at random, filled from the
// image as a new named volume is): run --rm and rm -v remove it with the
// container, rm alone keeps it, as Docker does.
func TestAnonymousVolumes(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	volumes := func() []string { return strings.Fields(mustTug(t, u, store, "volume", "ls", "-q").Stdout) }
	if got := mustTug(t, u, store, "run", "--rm", "--network", "none", "-v", "/etc", busybox, "sh", "-c", "cat /etc/passwd | head -1; grep -c ' /etc ' /proc/mounts").Stdout; !strings.HasPrefix(got, "root:") || !strings.HasSuffix(got, "\n1\n") {
		t.Errorf("-v /etc: %q, want the image's /etc on a mount of its own", got)
	}
	if v := volumes(); len(v) != 0 {
		t.Errorf("run --rm left its anonymous volume: %v", v)
	}
	res := tug(t, u, store, "run", "--name", "keeps", "--network", "none", "-v", "/data", "-v", "/etc:ro", busybox, "sh", "-c", "touch /data/x && touch /etc/y")
	if res.Code != 1 || !strings.Contains(res.Stderr, "Read-only file system") {
		t.Errorf("-v /etc:ro: exit %d, %s", res.Code, res.Stderr)
	}
	if v := volumes(); len(v) != 2 || len(v[0]) != 64 {
		t.Errorf("two anonymous volumes, named as Docker names them, want; volume ls -q: %v", v)
	}
	mustTug(t, u, store, "rm", "keeps")
	if v := volumes(); len(v) != 2 {
		t.Errorf("rm without -v removed anonymous volumes: %v", v)
	}
	mustTug(t, u, store, "volume", "prune", "-f")
	mustTug(t, u, store, "run", "--name", "goes", "--network", "none", "-v", "/data", busybox, "true")
	mustTug(t, u, store, "rm", "-v", "goes")
	id := strings.TrimSpace(mustTug(t, u, store, "run", "-d", "--rm", "--network", "none", "-v", "/data", busybox, "sleep", "1").Stdout)
	mustTug(t, u, store, "wait", id)
	for deadline := time.Now().Add(10 * time.Second); len(volumes()) != 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if v := volumes(); len(v) != 0 {
		t.Errorf("rm -v, and run -d --rm, left anonymous volumes: %v", v)
	}

	// An image's VOLUME gets one too, unless a mount of the command line
	// covers it.
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + "\nRUN mkdir /data && echo seeded > /data/seed && chown -R 1000:1000 /data\nVOLUME /data\n",
	})
	mustTug(t, u, store, "build", "-q", "--network", "none", "-t", "withvolume", ctx)
	if got := mustTug(t, u, store, "run", "--rm", "--network", "none", "withvolume", "sh", "-c", "cat /data/seed; grep -c ' /data ' /proc/mounts; stat -c %u /data").Stdout; got != "seeded\n1\n1000\n" {
		t.Errorf("an image's VOLUME /data: %q, want it seeded from the image, mounted, owned by 1000", got)
	}
	mustTug(t, u, store, "run", "--rm", "--network", "none", "-v", "mine:/data", "withvolume", "true")
	if v := volumes(); len(v) != 1 || v[0] != "mine" {
		t.Errorf("after run --rm of an image with a VOLUME, and one with -v mine:/data over it: volume ls -q %v, want [mine]", v)
	}
	// --mount type=volume without a source is one too.
	mustTug(t, u, store, "run", "--name", "mounted", "--network", "none", "--mount", "type=volume,target=/m", busybox, "touch", "/m/x")
	if v := volumes(); len(v) != 2 {
		t.Errorf("--mount type=volume,target=/m: volume ls -q %v, want mine and an anonymous one", v)
	}
	mustTug(t, u, store, "rm", "-v", "mounted")
	if v := volumes(); len(v) != 1 {
		t.Errorf("rm -v of a container with --mount type=volume,target=/m: volume ls -q %v, want [mine]", v)
	}
}

// run pulls a missing image as Docker's does, saying so on stderr; -q
// silences the pull's progress and leaves the one line before it. stdout
// has the command's output alone either way.
func TestRunPullOutput(t *testing.T) {
	u := fixture.RootlessUser(t)
	res := tug(t, u, isolated(t, u), "run", "--rm", "--network", "none", busybox, "echo", "hi")
	if res.Code != 0 || res.Stdout != "hi\n" || !strings.HasPrefix(res.Stderr, "Unable to find image '"+busybox+"' locally\n") ||
		!strings.Contains(res.Stderr, "Pulling "+busybox) || !strings.Contains(res.Stderr, "Status: Downloaded newer image for "+busybox) {
		t.Fatalf("run of a missing image: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	res = tug(t, u, isolated(t, u), "run", "--rm", "-q", "--network", "none", busybox, "echo", "hi")
	if res.Code != 0 || res.Stdout != "hi\n" || res.Stderr != "Unable to find image '"+busybox+"' locally\n" {
		t.Fatalf("run -q of a missing image: exit %d, stdout %q, stderr %q (want only the line that it is not here)", res.Code, res.Stdout, res.Stderr)
	}
}

// --cidfile, as Docker's: the id written once the container is made, an
// existing file refused before anything is made, no file left by a run
// that made no container.
func TestRunCIDFile(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	dir := fixture.TempDirFor(t, u)
	cid := filepath.Join(dir, "cid")
	id := lastLine(mustTug(t, u, store, "run", "-d", "--rm", "--cidfile", cid, "--network", "none", busybox, "sleep", "4257").Stdout)
	cleanupContainers(t, u, store, id)
	if b, err := os.ReadFile(cid); err != nil || string(b) != id {
		t.Fatalf("--cidfile holds %q (%v), want the id run -d printed, %s", b, err, id)
	}
	before := mustTug(t, u, store, "ps", "-aq").Stdout
	res := tug(t, u, store, "run", "--rm", "--cidfile", cid, "--network", "none", busybox, "true")
	if res.Code != 125 || !strings.Contains(res.Stderr, "container ID file found") {
		t.Fatalf("--cidfile of an existing file: exit %d, %q", res.Code, res.Stderr)
	}
	if after := mustTug(t, u, store, "ps", "-aq").Stdout; after != before {
		t.Errorf("a refused --cidfile made a container: ps -aq %q, was %q", after, before)
	}
	if b, _ := os.ReadFile(cid); string(b) != id {
		t.Errorf("a refused --cidfile changed the file to %q", b)
	}
	none := filepath.Join(dir, "none")
	if res := tug(t, u, store, "run", "--rm", "--cidfile", none, "--pull", "never", registry.Addr+"/nosuchimage", "true"); res.Code != 125 {
		t.Fatalf("run of a missing image: exit %d, %q", res.Code, res.Stderr)
	}
	if _, err := os.Stat(none); !os.IsNotExist(err) {
		t.Errorf("a run that made no container left its --cidfile (%v)", err)
	}
}

// --group-add joins groups by name (the image's /etc/group) or number,
// beside the user's own; an unknown name is refused by name; without a
// subordinate range no other group can be mapped, and tug says so.
func TestRunGroupAdd(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	if got := runOut(t, u, store, "-u", "user", "--group-add", "4000", "--group-add", "nobody", busybox, "id", "-G"); got != "1000 4000 65534" {
		t.Fatalf("-u user --group-add 4000 --group-add nobody: id -G %q, want 1000 4000 65534", got)
	}
	// tug as PID 1 (--init, and -d) starts the command with them too, as
	// root as well (it once kept root's own group alone).
	for _, args := range [][]string{{"--group-add", "10"}, {"--init", "--group-add", "10"}} {
		if got := runOut(t, u, store, append(args, busybox, "id", "-G")...); got != "0 10" {
			t.Fatalf("run %v id -G: %q, want 0 10", args, got)
		}
	}
	// Root's groups from the image alone (root is in group 0): with tug
	// as PID 1 too, which kept the groups tug was started with (none
	// here) instead.
	for _, args := range [][]string{nil, {"--init"}} {
		if got := runOut(t, u, store, append(args, busybox, "grep", "^Groups:", "/proc/self/status")...); strings.Join(strings.Fields(got), " ") != "Groups: 0" {
			t.Fatalf("run %v: supplementary %q, want group 0 alone", args, got)
		}
	}
	if res := tug(t, u, store, "run", "--rm", "--group-add", "nosuchgroup", busybox, "true"); res.Code != 125 || !strings.Contains(res.Stderr, "unable to find group nosuchgroup") {
		t.Fatalf("--group-add nosuchgroup: exit %d, %q", res.Code, res.Stderr)
	}
	nosub := fixture.NoSubIDUser(t)
	if res := tug(t, nosub, pulled(t, nosub), "run", "--rm", "--group-add", "10", busybox, "true"); res.Code != 125 || !strings.Contains(res.Stderr, "--group-add needs more ids than your own") {
		t.Fatalf("--group-add without a subordinate range: exit %d, %q", res.Code, res.Stderr)
	}
}

// Labels: the image's, then --label-file's, then --label's, shown by
// inspect and ps, and filtered on by ps.
func TestRunLabels(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := isolated(t, u)
	dir := fixture.TempDirFor(t, u)
	file := filepath.Join(dir, "labels")
	if err := os.WriteFile(file, []byte("team=infra\n# a comment\nfromfile=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustTug(t, u, store, "create", "--name", "lab", "--label", "app=web", "--label", "team=core", "--label-file", file, "--label", "flag", busybox, "true")
	mustTug(t, u, store, "create", "--name", "other", busybox, "true")
	want := "app=web,flag=,fromfile=1,org.opencontainers.image.title=tug-busybox-fixture,team=core"
	if got := strings.TrimSpace(mustTug(t, u, store, "ps", "-a", "--filter", "name=lab", "--format", "{{.Labels}} {{.Label \"team\"}}").Stdout); got != want+" core" {
		t.Errorf("ps .Labels, .Label: %q, want %q (the image's label, the file's, --label over both)", got, want+" core")
	}
	if got := strings.TrimSpace(mustTug(t, u, store, "inspect", "-f", "{{index .Config.Labels \"app\"}}", "lab").Stdout); got != "web" {
		t.Errorf("inspect .Config.Labels app: %q", got)
	}
	for filter, names := range map[string]string{"label=app=web": "lab", "label=app=db": "", "label=flag": "lab", "label=org.opencontainers.image.title": "lab other"} {
		got := strings.Fields(mustTug(t, u, store, "ps", "-a", "--filter", filter, "--format", "{{.Names}}").Stdout)
		slices.Sort(got)
		if strings.Join(got, " ") != names {
			t.Errorf("ps -a --filter %s: %v, want %q", filter, got, names)
		}
	}
	if res := tug(t, u, store, "run", "--rm", "--label", "=x", busybox, "true"); res.Code != 125 || !strings.Contains(res.Stderr, `invalid label "=x"`) {
		t.Errorf("--label =x: exit %d, %q", res.Code, res.Stderr)
	}
}
