//go:build e2e

package main_test

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tugcli/tug/fixture"
)

// waitStatus polls ps until the container's status starts with want.
func waitStatus(t *testing.T, u fixture.User, store []string, name, want string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := strings.TrimSpace(mustTug(t, u, store, "inspect", "-f", "{{.State.Status}} {{.RestartCount}}", name).Stdout)
		if strings.HasPrefix(got, want) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// --restart: on-failure:N stops after N restarts, always restarts a
// container that exits 0, and stop ends it for good; bad policies are
// refused with 125.
func TestRestartPolicies(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	mustTug(t, u, store, "run", "-d", "--name", "fails", "--network", "none", "--restart", "on-failure:2", busybox, "sh", "-c", "echo attempt; exit 3")
	if got := waitStatus(t, u, store, "fails", "exited"); got != "exited 2" {
		t.Fatalf("on-failure:2 ended as %q, want exited after 2 restarts", got)
	}
	if n := strings.Count(mustTug(t, u, store, "logs", "fails").Stdout, "attempt"); n != 3 {
		t.Fatalf("the command ran %d times, want 3", n)
	}
	if got := strings.TrimSpace(mustTug(t, u, store, "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.State.ExitCode}}", "fails").Stdout); got != "on-failure:2 3" {
		t.Fatalf("inspect = %q", got)
	}
	mustTug(t, u, store, "run", "-d", "--name", "again", "--network", "none", "--restart", "always", busybox, "sh", "-c", "sleep 0.2")
	deadline := time.Now().Add(15 * time.Second)
	for {
		f := strings.Fields(mustTug(t, u, store, "inspect", "-f", "{{.RestartCount}}", "again").Stdout)
		if n, _ := strconv.Atoi(f[0]); n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("--restart always did not restart a container that exited 0")
		}
		time.Sleep(100 * time.Millisecond)
	}
	mustTug(t, u, store, "stop", "-t", "1", "again")
	st := waitStatus(t, u, store, "again", "exited")
	time.Sleep(time.Second)
	if got := waitStatus(t, u, store, "again", "exited"); got != st || !strings.HasPrefix(got, "exited") {
		t.Fatalf("after stop: %q, then %q: the policy restarted a stopped container", st, got)
	}
	for _, bad := range []string{"sometimes", "always:3", "on-failure:x"} {
		if res := tug(t, u, store, "run", "-d", "--restart", bad, busybox, "true"); res.Code != 125 || !strings.Contains(res.Stderr, "--restart") {
			t.Fatalf("--restart %s: exit %d, stderr %q", bad, res.Code, res.Stderr)
		}
	}
	if res := tug(t, u, store, "run", "--rm", "--restart", "always", busybox, "true"); res.Code != 125 || !strings.Contains(res.Stderr, "--rm") {
		t.Fatalf("--restart with --rm: exit %d, stderr %q", res.Code, res.Stderr)
	}
}

// rename: a running container keeps running under its new name, and
// keeps it when it exits; names taken or malformed are refused.
func TestRename(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	mustTug(t, u, store, "run", "-d", "--name", "old", "--network", "none", busybox, "sleep", "1")
	mustTug(t, u, store, "create", "--name", "other", busybox, "true")
	mustTug(t, u, store, "rename", "old", "new")
	if got := strings.TrimSpace(mustTug(t, u, store, "inspect", "-f", "{{.Name}}", "new").Stdout); got != "/new" {
		t.Fatalf("inspect new = %q", got)
	}
	if res := tug(t, u, store, "inspect", "old"); res.Code == 0 {
		t.Fatal("the old name still resolves")
	}
	mustTug(t, u, store, "wait", "new")
	if got := mustTug(t, u, store, "ps", "-a", "--format", "{{.Names}}").Stdout; !strings.Contains(got, "new\n") || strings.Contains(got, "old") {
		t.Fatalf("after the container exited, ps -a shows:\n%s", got)
	}
	for _, bad := range []string{"other", "bad name", "-x"} {
		if res := tug(t, u, store, "rename", "new", bad); res.Code == 0 || !strings.HasPrefix(res.Stderr, "Error: ") {
			t.Fatalf("rename to %q: exit %d, stderr %q", bad, res.Code, res.Stderr)
		}
	}
}

// logs --since and --until select lines by their time.
func TestLogsSinceUntil(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	mustTug(t, u, store, "run", "-d", "--name", "talk", "--network", "none", busybox, "sh", "-c", "echo early; sleep 2; echo late")
	mustTug(t, u, store, "wait", "talk")
	if got := strings.TrimSpace(mustTug(t, u, store, "logs", "--since", "1s", "talk").Stdout); got != "late" && got != "" {
		t.Fatalf("logs --since 1s = %q", got)
	}
	if got := strings.TrimSpace(mustTug(t, u, store, "logs", "--since", "1h", "talk").Stdout); got != "early\nlate" {
		t.Fatalf("logs --since 1h = %q", got)
	}
	ts := strings.Fields(mustTug(t, u, store, "logs", "-t", "talk").Stdout)
	if len(ts) != 4 {
		t.Fatalf("logs -t = %q", ts)
	}
	if got := strings.TrimSpace(mustTug(t, u, store, "logs", "--since", ts[2], "talk").Stdout); got != "late" {
		t.Fatalf("logs --since %s = %q", ts[2], got)
	}
	if got := strings.TrimSpace(mustTug(t, u, store, "logs", "--until", ts[2], "talk").Stdout); got != "early" {
		t.Fatalf("logs --until %s = %q", ts[2], got)
	}
	if res := tug(t, u, store, "logs", "--since", "yesterday-ish", "talk"); res.Code == 0 || !strings.Contains(res.Stderr, "--since") {
		t.Fatalf("a bad --since: exit %d, stderr %q", res.Code, res.Stderr)
	}
}

// A monitor killed with SIGKILL: ps shows the container exited (never
// running forever), and rm cleans it up.
func TestMonitorKilled(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	mustTug(t, u, store, "run", "-d", "--name", "orphan", busybox, "sleep", "4108")
	pid := strings.TrimSpace(mustTug(t, u, store, "inspect", "-f", "{{.State.Pid}}", "orphan").Stdout)
	// The monitor is the tug process that runs the container: find it as
	// the tug ancestor of the container's init.
	monitor := 0
	for p, _ := strconv.Atoi(pid); p > 1; {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
		if err != nil {
			break
		}
		if strings.Contains(string(b), "container-monitor") {
			monitor = p
			break
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
	for processRunning("sleep\x004108\x00") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if processRunning("sleep\x004108\x00") {
		t.Fatal("the container outlived its monitor")
	}
	// The monitor's threads may still be on their way out once its
	// container is gone (the lent 16-core host saw "running" for that
	// moment): ps must say exited once they are.
	got := ""
	for {
		got = mustTug(t, u, store, "ps", "-a", "--format", "{{.Names}} {{.State}}").Stdout
		if strings.Contains(got, "orphan exited") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(got, "orphan exited") {
		t.Fatalf("ps -a after the monitor was killed:\n%s", got)
	}
	if got := mustTug(t, u, store, "ps", "-q").Stdout; got != "" {
		t.Fatalf("ps still lists a running container: %q", got)
	}
	mustTug(t, u, store, "rm", "orphan")
	if got := mustTug(t, u, store, "ps", "-aq").Stdout; got != "" {
		t.Fatalf("rm left %q", got)
	}
}

// run -dit keeps a shell running on an open, silent terminal (the usual
// way to keep a container up to exec into); -di likewise without one.
func TestRunDetachedInteractive(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	mustTug(t, u, store, "run", "-dit", "--name", "shell", "--network", "none", busybox, "sh")
	mustTug(t, u, store, "run", "-di", "--name", "plain", "--network", "none", busybox, "sh")
	time.Sleep(time.Second)
	got := mustTug(t, u, store, "ps", "--format", "{{.Names}} {{.State}}").Stdout
	if !strings.Contains(got, "shell running") || !strings.Contains(got, "plain running") {
		t.Fatalf("the shells did not stay up:\n%s", got)
	}
	if got := strings.TrimSpace(mustTug(t, u, store, "exec", "shell", "sh", "-c", "test -t 0 && echo tty; true").Stdout); got != "" {
		t.Fatalf("exec without -t got a terminal: %q", got)
	}
	// The container's shell is the oldest sh in it.
	if got := strings.TrimSpace(mustTug(t, u, store, "exec", "shell", "sh", "-c", "for p in $(ls /proc | grep -E '^[0-9]+$' | sort -n); do if [ \"$(cat /proc/$p/comm)\" = sh ]; then readlink /proc/$p/fd/0; break; fi; done").Stdout); !strings.HasPrefix(got, "/dev/pts/") {
		t.Fatalf("the -t shell's stdin is %q, want a terminal", got)
	}
	// Two tugs stopping the same container at once both succeed.
	a := u.Command(t.Context(), tugBin, append(append([]string{}, store...), "stop", "-t", "1", "shell")...)
	b := u.Command(t.Context(), tugBin, append(append([]string{}, store...), "stop", "-t", "1", "shell")...)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	errB := b.Run()
	if errA := a.Wait(); errA != nil || errB != nil {
		t.Fatalf("concurrent stops: %v, %v", errA, errB)
	}
	if got := strings.TrimSpace(mustTug(t, u, store, "inspect", "-f", "{{.State.Status}}", "shell").Stdout); got != "exited" {
		t.Fatalf("after two stops the container is %q", got)
	}
	mustTug(t, u, store, "rm", "-f", "shell", "plain")
}

// stop sends the image's STOPSIGNAL (or --stop-signal, or stop -s), and
// waits --stop-timeout before it kills.
func TestStopSignal(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := fixture.TempDirFor(t, u)
	os.WriteFile(ctx+"/Dockerfile", []byte("FROM "+busybox+"\nSTOPSIGNAL SIGUSR1\n"), 0o644)
	mustTug(t, u, store, "build", "-q", "-t", "usr1", ctx)
	trap := `trap "exit 7" USR1; trap "exit 8" USR2; trap "exit 9" TERM; while true; do sleep 0.1; done`
	for _, tc := range []struct {
		name string
		run  []string
		stop []string
		want string
	}{
		{"image", []string{"usr1"}, nil, "7"},
		{"flag", []string{"--stop-signal", "USR2", "usr1"}, nil, "8"},
		{"stop -s", []string{"usr1"}, []string{"-s", "TERM"}, "9"},
		{"default", []string{busybox}, nil, "9"},
	} {
		name := "sig-" + strings.ReplaceAll(tc.name, " ", "")
		mustTug(t, u, store, append(append([]string{"run", "-d", "--name", name, "--network", "none"}, tc.run...), "sh", "-c", trap)...)
		time.Sleep(300 * time.Millisecond)
		mustTug(t, u, store, append(append([]string{"stop"}, tc.stop...), name)...)
		if got := strings.TrimSpace(mustTug(t, u, store, "wait", name).Stdout); got != tc.want {
			t.Errorf("%s: exit %s, want %s", tc.name, got, tc.want)
		}
	}
	// A command that ignores its stop signal is killed after --stop-timeout.
	mustTug(t, u, store, "run", "-d", "--name", "stubborn", "--network", "none", "--stop-timeout", "1", busybox, "sh", "-c", `trap "" TERM; while true; do sleep 0.1; done`)
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	mustTug(t, u, store, "stop", "stubborn")
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("stop took %v with --stop-timeout 1", took)
	}
	if got := strings.TrimSpace(mustTug(t, u, store, "wait", "stubborn").Stdout); got != "137" {
		t.Fatalf("a stubborn container exited %s, want 137", got)
	}
}

// tug's init (PID 1 of detached containers and of --init) reaps the
// orphans that exit under it: no zombies pile up.
func TestInitReapsZombies(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	orphans := "for i in 1 2 3 4 5; do (sleep 0.1 &); done"
	mustTug(t, u, store, "run", "-d", "--name", "reaper", "--network", "none", busybox, "sh", "-c", orphans+"; exec sleep 60")
	defer tug(t, u, store, "rm", "-f", "reaper")
	time.Sleep(time.Second)
	if got := mustTug(t, u, store, "exec", "reaper", "ps", "-o", "stat,comm").Stdout; strings.Contains(got, "Z ") || strings.Count(got, "sleep") != 1 {
		t.Fatalf("processes in a detached container a second later:\n%s", got)
	}
	got := runOut(t, u, store, "--init", "--network", "none", busybox, "sh", "-c", orphans+"; sleep 1; ps -o stat,comm")
	if strings.Contains(got, "Z ") {
		t.Fatalf("zombies under --init:\n%s", got)
	}
}

// The detached clock: it survives its caller, `logs -f` follows
// it line by line as they come, and ends when the container stops.
func TestLogsFollow(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	mustTug(t, u, store, "run", "-d", "--name", "clock", "--network", "none", busybox, "sh", "-c", "while true; do date +%s; sleep 1; done")
	defer tug(t, u, store, "rm", "-f", "clock")
	cmd := u.Command(t.Context(), tugBin, append(append([]string{}, store...), "logs", "-f", "clock")...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		buf := make([]byte, 4096)
		var pending string
		for {
			n, err := out.Read(buf)
			pending += string(buf[:n])
			for {
				i := strings.IndexByte(pending, '\n')
				if i < 0 {
					break
				}
				lines <- pending[:i]
				pending = pending[i+1:]
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < 4 {
		select {
		case l := <-lines:
			got = append(got, l)
		case <-timeout:
			t.Fatalf("logs -f printed only %q in 10 s", got)
		}
	}
	if got[3] <= got[0] {
		t.Fatalf("the lines followed are not later ones: %q", got)
	}
	mustTug(t, u, store, "stop", "-t", "1", "clock")
	done := make(chan error)
	go func() {
		for range lines {
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("logs -f ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f kept running after the container stopped")
	}
}

// Volumes in use are known: rm refuses them, prune keeps them; system
// prune --volumes and volume prune remove the rest; system reset (only
// with --force) empties the store, killing what runs.
func TestVolumePruneAndReset(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	mustTug(t, u, store, "volume", "create", "spare")
	mustTug(t, u, store, "volume", "create", "spare2")
	mustTug(t, u, store, "run", "--name", "user", "--network", "none", "-v", "kept:/data", busybox, "touch", "/data/f")
	if res := tug(t, u, store, "volume", "rm", "kept"); res.Code == 0 || !strings.Contains(res.Stderr, "in use by container user") {
		t.Fatalf("volume rm of a volume in use: exit %d, stderr %q", res.Code, res.Stderr)
	}
	if got := mustTug(t, u, store, "volume", "prune", "-f").Stdout; !strings.Contains(got, "spare\n") || !strings.Contains(got, "spare2\n") || strings.Contains(got, "kept") {
		t.Fatalf("volume prune printed %q", got)
	}
	mustTug(t, u, store, "rm", "user")
	if got := mustTug(t, u, store, "system", "prune", "-f", "--volumes").Stdout; !strings.Contains(got, "kept") {
		t.Fatalf("system prune --volumes printed %q", got)
	}
	if got := strings.TrimSpace(mustTug(t, u, store, "volume", "ls", "-q").Stdout); got != "" {
		t.Fatalf("volumes left: %q", got)
	}

	mustTug(t, u, store, "run", "-d", "--name", "running", "--network", "none", busybox, "sleep", "4110")
	mustTug(t, u, store, "volume", "create", "v")
	if res := tug(t, u, store, "system", "reset"); res.Code != 125 || !strings.Contains(res.Stderr, "--force") {
		t.Fatalf("system reset without --force: exit %d, stderr %q", res.Code, res.Stderr)
	}
	if got := mustTug(t, u, store, "images", "-q").Stdout; got == "" {
		t.Fatal("system reset without --force removed images")
	}
	mustTug(t, u, store, "system", "reset", "--force")
	if processRunning("sleep\x004110\x00") {
		t.Fatal("a container outlived system reset")
	}
	for _, args := range [][]string{{"images", "-q"}, {"ps", "-aq"}, {"volume", "ls", "-q"}} {
		if got := mustTug(t, u, store, args...).Stdout; got != "" {
			t.Fatalf("after system reset, %v lists %q", args, got)
		}
	}
	mustTug(t, u, store, "pull", "-q", busybox) // the store works again
}

// A container removed as it exits (--rm) is one Docker's lifecycle
// commands handle: a foreground one shows in ps and stop ends it; stop of
// a detached one says it stopped it; wait and start -a give its exit
// status although it has gone by then.
func TestAutoRemoveLifecycle(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)

	// In the foreground: ps lists it, wait (from elsewhere) and stop.
	fg := u.Command(t.Context(), tugBin, append(slices.Clone(store), "run", "--rm", "--name", "fg", busybox, "sleep", "4251")...)
	if err := fg.Start(); err != nil {
		t.Fatal(err)
	}
	got := ""
	for deadline := time.Now().Add(15 * time.Second); got != "running" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got = strings.TrimSpace(tug(t, u, store, "inspect", "-f", "{{.State.Status}}", "fg").Stdout)
	}
	if got != "running" {
		fg.Process.Kill()
		t.Fatalf("a foreground run --rm is %q to inspect, want running", got)
	}
	if ps := mustTug(t, u, store, "ps", "--format", "{{.Names}} {{.Command}}").Stdout; ps != "fg \"sleep 4251\"\n" {
		t.Errorf("ps while run --rm runs in the foreground:\n%s", ps)
	}
	waiter := u.Command(t.Context(), tugBin, append(slices.Clone(store), "wait", "fg")...)
	var waited strings.Builder
	waiter.Stdout = &waited
	if err := waiter.Start(); err != nil {
		t.Fatal(err)
	}
	// sleep, PID 1, ignores SIGTERM: killed after the second.
	if res := mustTug(t, u, store, "stop", "-t", "1", "fg"); res.Stdout != "fg\n" {
		t.Errorf("stop printed %q", res.Stdout)
	}
	if err := fg.Wait(); fg.ProcessState.ExitCode() != 137 {
		t.Errorf("the foreground run ended %v, want exit status 137", err)
	}
	if err := waiter.Wait(); err != nil || waited.String() != "137\n" {
		t.Errorf("wait: %v, printed %q, want 137", err, waited.String())
	}

	// Detached: stop says so; wait gives the status of one that has gone.
	mustTug(t, u, store, "run", "-d", "--rm", "--name", "bg", busybox, "sleep", "4252")
	if res := tug(t, u, store, "stop", "-t", "1", "bg"); res.Code != 0 || res.Stdout != "bg\n" {
		t.Errorf("stop of a detached --rm container: exit %d, %q %q", res.Code, res.Stdout, res.Stderr)
	}
	id := strings.TrimSpace(mustTug(t, u, store, "run", "-d", "--rm", busybox, "sh", "-c", "sleep 1; exit 6").Stdout)
	if got := mustTug(t, u, store, "wait", id).Stdout; got != "6\n" {
		t.Errorf("wait of a detached --rm container: %q, want 6", got)
	}

	// Created with --rm, started attached: its output and its status.
	id = strings.TrimSpace(mustTug(t, u, store, "create", "--rm", busybox, "sh", "-c", "echo hi; exit 4").Stdout)
	if res := tug(t, u, store, "start", "-a", id); res.Code != 4 || res.Stdout != "hi\n" || res.Stderr != "" {
		t.Errorf("start -a of a --rm container: exit %d, stdout %q, stderr %q (want 4, \"hi\")", res.Code, res.Stdout, res.Stderr)
	}
	if left := mustTug(t, u, store, "ps", "-aq").Stdout; left != "" {
		t.Errorf("--rm containers left: %q", left)
	}
}
