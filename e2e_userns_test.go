//go:build e2e

package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tugcli/tug/fixture"
)

// A rootless tug run's user-namespace child is cloned by tug's entry
// point (main.entry) before Go's runtime starts, and goes on once its id
// maps are written. Without the entry point (_TUG_NO_EARLY_ENTRY, as a
// build without -ldflags=-E=main.entry) the child is tug re-executed with
// its capabilities in the ambient set; TUG_USERNS_STAGE1=exec clones it
// without them, as tug does where the kernel refuses the ambient set, and
// the child execs itself again after the maps. Each gives the container
// the subordinate mapping, uid 0 and no file descriptor of tug's, and
// leaves tug's child with every capability of its namespace and nothing
// to hand on through exec.
func TestUsernsFirstStage(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	for _, stage := range []string{"entry", "ambient", "exec"} {
		v := u
		switch stage {
		case "ambient":
			v.Env = append(append([]string{}, u.Env...), "_TUG_NO_EARLY_ENTRY=1")
		case "exec":
			v.Env = append(append([]string{}, u.Env...), "TUG_USERNS_STAGE1=exec")
		}
		got := mustTug(t, v, store, "run", "--rm", "--network", "none", busybox, "sh", "-c", "id -u; cat /proc/self/uid_map; ls /proc/self/fd").Stdout
		want := fmt.Sprintf("0 0 %d 1 1 300000 65536 0 1 2 3", u.UID)
		if f := strings.Join(strings.Fields(got), " "); f != want {
			t.Errorf("first stage %s: the container printed %q, want %q", stage, f, want)
		}
		if res := tug(t, v, store, "run", "--rm", "--network", "none", busybox, "sh", "-c", "exit 7"); res.Code != 7 {
			t.Errorf("first stage %s: exit %d, want 7\n%s", stage, res.Code, res.Stderr)
		}
		caps, environ := childCapabilities(t, v, store)
		if caps["CapEff"] != caps["CapBnd"] || caps["CapPrm"] != caps["CapBnd"] || caps["CapInh"] != 0 || caps["CapAmb"] != 0 || caps["CapBnd"] == 0 {
			t.Errorf("first stage %s: tug's child in its user namespace has %x", stage, caps)
		}
		// A re-executed child starts with the stage in its environment; a
		// cloned one with the caller's.
		if reexecuted := strings.Contains(environ, "\x00_TUG_USERNS_STAGE="); reexecuted != (stage != "entry") {
			t.Errorf("first stage %s: tug's child was re-executed: %v (built without -ldflags=-E=main.entry?)", stage, reexecuted)
		}
	}
}

// The entry point clones a user-namespace child for any line holding the
// word "run"; where run is not the command, the child has the line run
// again the usual way, and what the user sees is what they would.
func TestUsernsEntryNotRun(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	mustTug(t, u, store, "tag", busybox, "run:x")
	res := mustTug(t, u, store, "images", "run")
	if lines := strings.Split(strings.TrimSpace(res.Stdout), "\n"); len(lines) != 2 || !strings.HasSuffix(strings.Fields(lines[1])[0], "run") || strings.Fields(lines[1])[1] != "x" {
		t.Errorf("tug images run printed:\n%s\nwant the header and the image tagged run:x", res.Stdout)
	}
	if res.Stderr != "" {
		t.Errorf("tug images run said: %s", res.Stderr)
	}
	if res := tug(t, u, store, "inspect", "--format", "{{.Id}}", "run"); res.Code != 1 || !strings.Contains(res.Stderr, "run") {
		t.Errorf("tug inspect run: exit %d, %q; want 1 and no such object: run", res.Code, res.Stderr)
	}
}

// An unprivileged tug run starts its user-namespace child before it
// parses its command line; a line that does not parse ends that child
// unused: the error is said once (a child let go would parse the line
// again and say it twice), and nothing runs.
func TestUsernsEarlyChildEnded(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	res := tug(t, u, store, "run", "--rm", "--no-such-flag", busybox, "echo", "ran")
	wantOneError(t, "run with an unknown flag", res, "unknown flag --no-such-flag")
	if res.Stdout != "" {
		t.Errorf("run with an unknown flag ran its command: %q", res.Stdout)
	}
}

// childCapabilities runs a container and reads, from the host, the
// capability sets of the tug in the user namespace that started it, and
// the environment that tug started with (NUL before each entry).
func childCapabilities(t *testing.T, u fixture.User, store []string) (map[string]uint64, string) {
	t.Helper()
	cmd := u.Command(t.Context(), tugBin, append(store, "run", "--rm", "--network", "none", busybox, "sleep", "4132")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		// sleep as PID 1 ignores SIGTERM; tug's child dies with it.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	// tug's child is the caller's only child; the container runs once
	// its sleep does.
	child, running := 0, false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !running; time.Sleep(50 * time.Millisecond) {
		procs, _ := os.ReadDir("/proc")
		for _, p := range procs {
			stat, _ := os.ReadFile("/proc/" + p.Name() + "/stat")
			cmdline, _ := os.ReadFile("/proc/" + p.Name() + "/cmdline")
			if f := strings.Fields(string(stat[min(len(stat), strings.LastIndex(string(stat), ")")+1):])); len(f) > 1 && f[1] == strconv.Itoa(cmd.Process.Pid) {
				child, _ = strconv.Atoi(p.Name())
			}
			running = running || string(cmdline) == "sleep\x004132\x00"
		}
	}
	if child == 0 || !running {
		t.Fatalf("no container running sleep 4132 under tug's child (child pid %d)", child)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", child))
	if err != nil {
		t.Fatal(err)
	}
	caps := map[string]uint64{}
	for _, line := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.HasPrefix(k, "Cap") {
			caps[k], _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", child))
	if err != nil {
		t.Fatal(err)
	}
	return caps, "\x00" + string(environ)
}

// Under no_new_privs (a CI container's no-new-privileges, systemd's
// NoNewPrivileges=) newuidmap cannot gain its privileges: tug says so
// once, maps the user's own id, and runs, as with no subordinate range.
func TestUsernsNoNewPrivs(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	res := fixture.Run(t, u, "setpriv", append([]string{"--no-new-privs", tugBin}, append(store, "run", "--rm", "--network", "none", busybox, "sh", "-c", "id -u; cat /proc/self/uid_map")...)...)
	want := fmt.Sprintf("0 0 %d 1", u.UID)
	if got := strings.Join(strings.Fields(res.Stdout), " "); res.Code != 0 || got != want {
		t.Fatalf("under no_new_privs: exit %d, printed %q (want %q)\n%s", res.Code, got, want, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "no_new_privs is set on this process") || strings.Count(res.Stderr, "WARNING") != 1 {
		t.Errorf("under no_new_privs, stderr:\n%s", res.Stderr)
	}
}

// With a cached plan (userns-maps in $XDG_CACHE_HOME/tug, written by the
// run that worked it out), tug's entry point starts newuidmap and
// newgidmap itself and the caller never starts Go's runtime. A cache that
// is not the plan tug works out now (another range), that names a range
// the helpers refuse, that is not the format, or that others may write,
// changes nothing the user sees: the run maps what tug chooses, and the
// cache is mended for the next.
func TestUsernsMapCache(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	cacheHome := fixture.TempDirFor(t, u)
	v := u
	v.Env = append(append([]string{}, u.Env...), "XDG_CACHE_HOME="+cacheHome)
	cache := filepath.Join(cacheHome, "tug", "userns-maps")
	const fromCache = "id maps written by tug's entry point"
	wantMap := fmt.Sprintf("0 %d 1 1 300000 65536", u.UID)
	run := func(what string, wantCached bool) {
		t.Helper()
		res := mustTug(t, v, store, "--debug", "run", "--rm", "--network", "none", busybox, "cat", "/proc/self/uid_map", "/proc/self/gid_map")
		if got := strings.Join(strings.Fields(res.Stdout), " "); got != wantMap+" "+strings.Replace(wantMap, strconv.Itoa(int(u.UID)), strconv.Itoa(int(u.GID)), 1) {
			t.Errorf("%s: the container's uid_map and gid_map: %q, want %q and the same for gid %d", what, got, wantMap, u.GID)
		}
		if cached := strings.Contains(res.Stderr, fromCache); cached != wantCached {
			t.Errorf("%s: maps from the cache: %v, want %v\n%s", what, cached, wantCached, res.Stderr)
		}
		if strings.Contains(res.Stderr, "newuidmap:") || strings.Contains(res.Stderr, "newgidmap:") {
			t.Errorf("%s: a helper's complaint reached the user:\n%s", what, res.Stderr)
		}
	}
	wantCache := func(what string) []byte {
		t.Helper()
		b, err := os.ReadFile(cache)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		want := fmt.Sprintf("tug-userns-maps-1\x00%d\x00%d\x00/usr/bin/newuidmap\x00@PID\x000\x00%d\x001\x001\x00300000\x0065536\x00\x00/usr/bin/newgidmap\x00@PID\x000\x00%d\x001\x001\x00300000\x0065536\x00\x00", u.UID, u.GID, u.UID, u.GID)
		if string(b) != want {
			t.Fatalf("%s: the cache holds %q, want %q", what, b, want)
		}
		if fi, err := os.Stat(cache); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: the cache's mode: %v %v, want 0600", what, fi.Mode(), err)
		}
		return b
	}
	run("first run", false)
	good := wantCache("after the first run")
	run("second run", true)
	if res := tug(t, v, store, "run", "--rm", "--network", "none", busybox, "sh", "-c", "exit 7"); res.Code != 7 || res.Stderr != "" {
		t.Errorf("exit 7 with the cache: exit %d, %q", res.Code, res.Stderr)
	}

	write := func(b []byte, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(cache, b, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(cache, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(cache, int(u.UID), int(u.GID)); err != nil {
			t.Fatal(err)
		}
	}
	// Allowed by /etc/subuid, but not the plan: the child finds out and
	// the line runs again the usual way.
	write([]byte(strings.ReplaceAll(string(good), "65536", "1000")), 0o600)
	run("a cache of a smaller range", false)
	wantCache("after a cache of a smaller range")
	// A range the helpers refuse: the cache goes, the line runs again.
	write([]byte(strings.ReplaceAll(string(good), "300000", "900000")), 0o600)
	run("a cache the helpers refuse", false)
	if _, err := os.Stat(cache); !os.IsNotExist(err) {
		t.Errorf("a cache the helpers refused is still there: %v", err)
	}
	run("after a refused cache", false)
	wantCache("after a refused cache")
	for _, c := range []struct {
		what string
		b    []byte
		mode os.FileMode
	}{
		{"a cache that is not the format", []byte("tug-userns-maps-1\x00garbage"), 0o600},
		{"a cache without its end", good[:len(good)-1], 0o600},
		{"a cache of another user", []byte(strings.Replace(string(good), fmt.Sprintf("\x00%d\x00", u.UID), "\x00123\x00", 1)), 0o600},
		{"a relative helper", []byte(strings.Replace(string(good), "/usr/bin/newuidmap", "newuidmap", 1)), 0o600},
		{"a cache others may write", good, 0o602},
		{"a cache its group may write", good, 0o620},
	} {
		write(c.b, c.mode)
		run(c.what, false)
		wantCache("after " + c.what)
	}

	// A line that does not parse ends the child before slow helpers are
	// done (with --debug, which the child does not speculate past: see
	// commands/speculate.go): the error is said once, with its status
	// (125), whether the helper then fails on the ended child or not.
	dir := fixture.TempDirFor(t, u)
	for what, then := range map[string]string{"slow helpers": `exec /usr/bin/newuidmap "$@"`, "slow helpers that fail": "exit 1"} {
		slow := filepath.Join(dir, "slow-newuidmap")
		if err := os.WriteFile(slow, []byte("#!/bin/sh\nsleep 0.5\n"+then+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(slow, int(u.UID), int(u.GID)); err != nil {
			t.Fatal(err)
		}
		write([]byte(strings.Replace(string(good), "/usr/bin/newuidmap", slow, 1)), 0o600)
		res := tug(t, v, store, "--debug", "run", "--rm", "--no-such-flag", busybox, "true")
		wantOneError(t, "an unknown flag with "+what, res, "unknown flag --no-such-flag")
		os.Remove(slow)
	}
	write(good, 0o600)

	// A signal to the caller that never started Go's runtime reaches the
	// container.
	run("before a signal", true)
	wantSignalForwarded(t, " (maps from the cache)", v, store)
}

// A rootless run opens its store and completes its entry while kong
// parses the line (see commands/speculate.go): the globals it assumed are
// the parse's in either spelling, and what the entry says is said once.
func TestUsernsEntryBesideParse(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	eq := []string{store[0] + "=" + store[1], store[2] + "=" + store[3]} // --root=A --runroot=B
	mustTug(t, u, eq, "run", "--name", "beside-parse", "--network", "none", busybox, "true")
	if ps := mustTug(t, u, store, "ps", "-a", "--format", "{{.Names}}").Stdout; strings.TrimSpace(ps) != "beside-parse" {
		t.Errorf("after a run with --root=A --runroot=B, ps -a in that store lists %q", ps)
	}
	nosub := fixture.NoSubIDUser(t)
	res := mustTug(t, nosub, pulled(t, nosub), "run", "--rm", "--network", "none", busybox, "echo", "ran")
	if res.Stdout != "ran\n" || strings.Count(res.Stderr, "WARNING:") != 1 || !strings.Contains(res.Stderr, "single-id mapping") {
		t.Errorf("a run with single-id mapping printed %q and said %q; want ran and one warning", res.Stdout, res.Stderr)
	}
}
