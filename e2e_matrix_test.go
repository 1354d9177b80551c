//go:build e2e

// The host matrix of issue #10: one scenario (pull → build → run → push →
// pull back) on every kind of host this machine can simulate, with the
// result of each step recorded. Where the kernel truly forbids a step, the
// step must fail with exactly one Error: line that names what is missing.
package main_test

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tugcli/tug/fixture"
)

// matrixHost is one simulated host: who runs tug, with which flags and
// environment, and, for a host that forbids what tug needs, the word the
// one Error: line of every step must contain.
type matrixHost struct {
	name string
	// setup prepares the host for u and returns the global flags (store
	// included) tug runs with; it may change u.Env.
	setup func(t *testing.T, u *fixture.User) []string
	user  func(t testing.TB) fixture.User
	// helper, when set, runs tug through this test binary as root, which
	// sets the host up ("seccomp", "notun", "nonewprivs") and then becomes u.
	helper string
	// forbidden is set when the host refuses what tug needs: every step
	// must fail with one Error: line containing it.
	forbidden string
	// network is passed to build and run when the default network truly
	// cannot work on the host; defaultNetErr is then what the default
	// network's one Error: line must contain.
	network, defaultNetErr string
	// wantInfo are lines `tug info` must print.
	wantInfo []string
	// notRun, when set, says why this host is listed but not run here.
	notRun string
	// container, when not nil, makes the host a container that u's tug
	// starts with these flags: the tool runs inside it (as root there),
	// bound in read-only with its store and build context, on the
	// host's network.
	container []string
	// isolation is passed to build and run as --isolation.
	isolation string
	// runOnly are flags for the run step alone.
	runOnly []string
}

// notPureV2 says why the cgroup v2 row cannot run on this host, or ""
// on a pure v2 host (the lent device host; .ci/device.sh runs it there).
func notPureV2() string {
	if pureCgroupV2() {
		return ""
	}
	return "this kernel boots cgroup v1 hybrid; every row above ran on it (the row runs on a pure v2 host: .ci/device.sh)"
}

// overlayfsStoreInfo is what tug info must say of a store on overlayfs:
// fuse-overlayfs where it is installed and /dev/fuse opens (for root
// here), vfs otherwise, naming why.
func overlayfsStoreInfo(root bool) string {
	const refused = "storage:         %s (native overlay refused: the store is on overlayfs"
	if _, err := exec.LookPath("fuse-overlayfs"); err != nil {
		return fmt.Sprintf(refused, "vfs") + ", which overlay cannot stack on; fuse-overlayfs unusable: fuse-overlayfs not on PATH (package fuse-overlayfs)"
	}
	if root {
		return fmt.Sprintf(refused, "overlay with fuse-overlayfs")
	}
	return fmt.Sprintf(refused, "vfs") + ", which overlay cannot stack on; fuse-overlayfs unusable: /dev/fuse: permission denied"
}

type matrixRow struct {
	host, step, result, errLine string
}

var matrixSteps = []string{"info", "pull", "build", "run", "push", "pull back"}

func matrixHosts() []matrixHost {
	plain := func(t *testing.T, u *fixture.User) []string { return isolated(t, *u) }
	return []matrixHost{
		{name: "root", user: rootUser, setup: plain,
			wantInfo: []string{"id mapping:      none needed (root)", "storage:         overlay (native overlay mounts as root)"}},
		{name: "rootless, subordinate range", user: fixture.RootlessUser, setup: plain,
			wantInfo: []string{"id mapping:      subordinate range 300000:65536", "storage:         overlay (native overlay mounts in tug's user namespace)"}},
		{name: "rootless, no subordinate range", user: fixture.NoSubIDUser, setup: plain,
			wantInfo: []string{"id mapping:      single id (no range for tug-e2e-nosub in /etc/subuid or /etc/subgid)"}},
		{name: "rootless, no newuidmap on PATH", user: fixture.RootlessUser, setup: withoutNewuidmap,
			wantInfo: []string{"id mapping:      single id (newuidmap not found on PATH (package uidmap))"}},
		{name: "rootless, --storage-driver vfs", user: fixture.RootlessUser,
			setup: func(t *testing.T, u *fixture.User) []string {
				return append(isolated(t, *u), "--storage-driver", "vfs")
			},
			wantInfo: []string{"storage:         vfs (chosen with --storage-driver): every layer is a full copy"}},
		{name: "root, store on overlayfs (native overlay refused)", user: rootUser, setup: storeOnOverlayfs,
			wantInfo: []string{overlayfsStoreInfo(true)}},
		{name: "rootless, store on overlayfs, /dev/fuse closed to users", user: fixture.RootlessUser, setup: storeOnOverlayfs,
			wantInfo: []string{overlayfsStoreInfo(false)}},
		{name: "rootless, /dev/net/tun closed to users", user: fixture.RootlessUser, setup: plain, helper: "notun",
			network: "none", defaultNetErr: "/dev/net/tun",
			wantInfo: []string{"network:         /dev/net/tun: permission denied (mode 0600): the default network"}},
		{name: "rootless, no_new_privs set (no-new-privileges, NoNewPrivileges=)", user: fixture.RootlessUser, setup: plain, helper: "nonewprivs",
			wantInfo: []string{"id mapping:      single id (no_new_privs is set"}},
		{name: "rootless, seccomp filter refusing user namespaces (as in an unprivileged container)", user: fixture.RootlessUser, setup: plain, helper: "seccomp",
			forbidden: "seccomp",
			wantInfo:  []string{"user namespaces: refused (operation not permitted; a seccomp filter"}},
		{name: "root in a tug container (default seccomp: no namespaces), --isolation=chroot", user: rootUser, setup: plain,
			container: []string{}, isolation: "chroot",
			wantInfo: []string{"isolation:       chroot (auto: no namespace can be made here (operation not permitted: a seccomp filter", "storage:         vfs (native overlay refused: mount -t overlay: operation not permitted"}},
		{name: "root in a tug container (default seccomp: no namespaces), auto", user: rootUser, setup: plain,
			container: []string{},
			wantInfo:  []string{"isolation:       chroot (auto: no namespace can be made here"}},
		{name: "nested: tug in a rootless tug container, seccomp=unconfined", user: fixture.RootlessUser, setup: plain,
			container: []string{"--security-opt", "seccomp=unconfined", "-v", "/dev/net/tun:/dev/net/tun"},
			wantInfo:  []string{"isolation:       rootless (auto: root without CAP_SYS_ADMIN (as in a container): a user namespace of tug's own)", "storage:         overlay (native overlay mounts in tug's user namespace)"}},
		{name: "cgroup v2, root, run with --memory 64m --pids-limit 100", user: rootUser, setup: plain, notRun: notPureV2(),
			runOnly:  []string{"--memory", "64m", "--pids-limit", "100"},
			wantInfo: []string{"cgroups:         v2, root"}},
		{name: "user.max_user_namespaces=0 or kernel.unprivileged_userns_clone=0", notRun: "a host-wide sysctl would break the tests running beside this one; the refusal path is the seccomp row's, and the message is unit-tested with a fake /proc"},
		{name: "kernel without unprivileged overlay (< 5.11)", notRun: "one kernel here (6.18); the fallback it causes is the overlayfs-store rows'"},
	}
}

func rootUser(t testing.TB) fixture.User {
	fixture.RequireRoot(t)
	return fixture.Root()
}

// withoutNewuidmap gives u a PATH where everything of /usr/bin and
// /usr/sbin is, except newuidmap and newgidmap.
func withoutNewuidmap(t *testing.T, u *fixture.User) []string {
	dir := filepath.Join(fixture.TempDirFor(t, *u), "bin")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"/usr/bin", "/usr/sbin"} {
		ents, err := os.ReadDir(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if n := e.Name(); n != "newuidmap" && n != "newgidmap" {
				os.Symlink(filepath.Join(src, n), filepath.Join(dir, n))
			}
		}
	}
	u.Env = append(u.Env, "PATH="+dir)
	return isolated(t, *u)
}

// storeOnOverlayfs puts u's graph root on an overlay mount, as a store in
// a container's root file system is: the kernel will not stack overlay on
// it, so tug must fall back to fuse-overlayfs or vfs.
func storeOnOverlayfs(t *testing.T, u *fixture.User) []string {
	base := fixture.TempDirFor(t, *u)
	for _, d := range []string{"lower", "upper", "work", "merged", "run"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o700); err != nil {
			t.Fatal(err)
		}
		os.Chown(filepath.Join(base, d), int(u.UID), int(u.GID))
	}
	merged := filepath.Join(base, "merged")
	data := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work"))
	if err := unix.Mount("overlay", merged, "overlay", 0, data); err != nil {
		t.Fatalf("mounting an overlay for the store: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	return []string{"--root", filepath.Join(merged, "graph"), "--runroot", filepath.Join(base, "run")}
}

// TestHostMatrix runs the scenario with tug on every host and writes the
// table to $TUG_MATRIX_OUT when it is set.
func TestHostMatrix(t *testing.T) {
	fixture.RequireRoot(t)
	hostMatrix(t, tugTool(), os.Getenv("TUG_MATRIX_OUT"))
}

// TestHostMatrixPodman runs the same scenario with Podman (its build is
// Buildah's) on the same hosts, for comparison, and writes its table to
// $TUG_MATRIX_PODMAN_OUT. Podman's failures are recorded, not failed on.
func TestHostMatrixPodman(t *testing.T) {
	fixture.RequireRoot(t)
	p, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("podman is not installed")
	}
	hostMatrix(t, podmanTool(p), os.Getenv("TUG_MATRIX_PODMAN_OUT"))
}

// matrixTool is the program the scenario runs: tug, or Podman beside it.
type matrixTool struct {
	name string
	bin  string
	// strict: every step must pass or be refused in one Error: line.
	strict bool
	// flags are added to the host's global flags.
	flags func(hostFlags []string) []string
	// args gives the command line of a step.
	args func(step string, a stepArgs) []string
	// driver reads the storage line from the info step's output.
	driver func(stdout string) string
}

type stepArgs struct {
	image, local, remote, ctxDir string
	net, runOnly                 []string
}

func tugTool() matrixTool {
	return matrixTool{
		name: "tug", bin: tugBin, strict: true,
		flags: func(f []string) []string { return f },
		args: func(step string, a stepArgs) []string {
			switch step {
			case "info":
				return []string{"info"}
			case "pull":
				return []string{"pull", "-q", a.image}
			case "build":
				return append(append([]string{"build", "-q"}, a.net...), "-t", a.local, a.ctxDir)
			case "run":
				return append(append(append([]string{"run", "--rm"}, a.net...), a.runOnly...), a.image)
			case "push":
				return []string{"push", a.local, a.remote}
			case "rmi":
				return []string{"rmi", a.local}
			}
			panic(step)
		},
		driver: func(stdout string) string {
			for _, l := range strings.Split(stdout, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(l), "storage:"); ok {
					return strings.TrimSpace(v)
				}
			}
			return ""
		},
	}
}

func podmanTool(bin string) matrixTool {
	tls := "--tls-verify=false"
	return matrixTool{
		name: "podman", bin: bin,
		flags: func(f []string) []string {
			// A libpod state directory beside the run root; runc, as
			// Debian's crun refuses cgroup v1 hybrid.
			runroot := f[slices.Index(f, "--runroot")+1]
			return append(append([]string{}, f...), "--tmpdir", filepath.Join(filepath.Dir(runroot), "podman-tmp"), "--runtime", "runc")
		},
		args: func(step string, a stepArgs) []string {
			switch step {
			case "info":
				return []string{"info", "--format", `{{.Store.GraphDriverName}}{{with index .Store.GraphStatus "Native Overlay Diff"}} (Native Overlay Diff: {{.}}){{end}}`}
			case "pull":
				return []string{"pull", "-q", tls, a.image}
			case "build":
				return append(append([]string{"build", "-q", tls}, a.net...), "-t", a.local, a.ctxDir)
			case "run":
				return append(append(append([]string{"run", "--rm"}, a.net...), a.runOnly...), a.image)
			case "push":
				return []string{"push", "-q", tls, a.local, a.remote}
			case "rmi":
				return []string{"rmi", a.local}
			}
			panic(step)
		},
		driver: func(stdout string) string { return lastLine(stdout) },
	}
}

func hostMatrix(t *testing.T, tool matrixTool, out string) {
	var mu sync.Mutex
	var rows []matrixRow
	add := func(r matrixRow) {
		mu.Lock()
		rows = append(rows, r)
		mu.Unlock()
	}
	hosts := matrixHosts()
	t.Cleanup(func() {
		// In the order of the hosts, then of the steps.
		order := func(r matrixRow) (int, int) {
			h := slices.IndexFunc(hosts, func(x matrixHost) bool { return x.name == r.host })
			s := slices.Index(matrixSteps, r.step)
			if s < 0 {
				s = len(matrixSteps)
			}
			return h, s
		}
		slices.SortStableFunc(rows, func(a, b matrixRow) int {
			ah, as := order(a)
			bh, bs := order(b)
			if ah != bh {
				return ah - bh
			}
			return as - bs
		})
		table := matrixTable(rows)
		t.Logf("host matrix, %s:\n%s", tool.name, table)
		if out != "" {
			if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
				t.Errorf("writing %s: %v", out, err)
			}
		}
	})
	for _, h := range hosts {
		t.Run(h.name, func(t *testing.T) {
			if h.notRun != "" {
				add(matrixRow{h.name, "all", "not run here: " + h.notRun, ""})
				t.Skip(h.notRun)
			}
			if h.container != nil && tool.name != "tug" {
				const why = "Podman is no static binary: it cannot be bound into a busybox container as tug is (it needs conmon, an OCI runtime and shared libraries)"
				add(matrixRow{h.name, "all", "not run here: " + why, ""})
				t.Skip(why)
			}
			if h.helper == "seccomp" && goruntime.GOARCH != "amd64" {
				add(matrixRow{h.name, "all", "not run here: the test's seccomp filter is written for amd64", ""})
				t.Skip("seccomp filter is amd64 only")
			}
			t.Parallel()
			runMatrixHost(t, h, tool, add)
		})
	}
}

func runMatrixHost(t *testing.T, h matrixHost, tool matrixTool, add func(matrixRow)) {
	u := h.user(t)
	flags := tool.flags(h.setup(t, &u))
	slug := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(h.name))
	slug = strings.Join(strings.FieldsFunc(slug, func(r rune) bool { return r == '-' }), "-")
	if len(slug) > 40 {
		// Names alike in their first 40 characters must not share a
		// repository: the rows run side by side (on 16 cores two chroot
		// rows pulled back each other's image).
		slug = strings.Trim(slug[:40], "-") + fmt.Sprintf("-%08x", crc32.ChecksumIEEE([]byte(h.name)))
	}
	a := stepArgs{
		local:  "localhost/matrix-" + tool.name + "-" + slug,
		remote: registry.Addr + "/matrix-" + tool.name + "-" + slug + ":v1",
	}
	marker := "hello from " + h.name
	a.ctxDir = buildContext(t, u, map[string]string{
		"hello.txt":  marker + "\n",
		"Dockerfile": "FROM " + busybox + "\nCOPY hello.txt /hello.txt\nRUN echo \"built from $(cat /hello.txt)\" > /built.txt\nCMD [\"cat\", \"/built.txt\"]\n",
	})
	if h.network != "" {
		a.net = []string{"--network", h.network}
	}
	if h.isolation != "" {
		a.net = append(a.net, "--isolation", h.isolation)
	}
	a.runOnly = h.runOnly
	inContainer := matrixContainer(t, h, u, tool.bin, []string{filepath.Dir(flags[slices.Index(flags, "--root")+1]), a.ctxDir})
	run := func(step string, a stepArgs) fixture.Result {
		t.Helper()
		args := append(append([]string{}, flags...), tool.args(step, a)...)
		if inContainer != nil {
			return inContainer(args)
		}
		return matrixRun(t, h, u, tool.bin, args)
	}

	var builtID string
	failed := ""
	for _, step := range matrixSteps {
		if failed != "" && h.forbidden == "" {
			add(matrixRow{h.name, step, "skipped (" + failed + " failed)", ""})
			continue
		}
		var res fixture.Result
		var problem string // why a step that ran without error is wrong
		note := ""
		switch step {
		case "info":
			res = run(step, a)
			t.Logf("%s info:\n%s", tool.name, res.Stdout)
			if tool.strict {
				for _, want := range h.wantInfo {
					if !strings.Contains(res.Stdout, want) {
						problem = fmt.Sprintf("%s info lacks %q", tool.name, want)
					}
				}
			}
			if d := tool.driver(res.Stdout); res.Code == 0 && d != "" {
				note = "storage: " + d
			}
			if h.container != nil {
				// Which isolation auto picks is what these hosts are about.
				for _, l := range strings.Split(res.Stdout, "\n") {
					if v, ok := strings.CutPrefix(strings.TrimSpace(l), "isolation:"); ok {
						v, _, _ = strings.Cut(strings.TrimSpace(v), " (")
						note += "; isolation (auto): " + v
					}
				}
			}
		case "pull":
			a.image = busybox
			res = run(step, a)
			if res.Code == 0 && lastLine(res.Stdout) != bbID {
				problem = fmt.Sprintf("pull printed %q, want %s", lastLine(res.Stdout), bbID)
			}
		case "build":
			res = run(step, a)
			builtID = strings.TrimPrefix(lastLine(res.Stdout), "sha256:")
			if res.Code == 0 && len(builtID) != 64 {
				problem = fmt.Sprintf("build printed %q, want the image id", res.Stdout)
			}
		case "run":
			a.image = a.local
			res = run(step, a)
			if res.Code == 0 && strings.TrimSpace(res.Stdout) != "built from "+marker {
				problem = fmt.Sprintf("run printed %q, want %q", res.Stdout, "built from "+marker)
			}
		case "push":
			res = run(step, a)
		case "pull back":
			if rm := run("rmi", a); rm.Code != 0 && h.forbidden == "" {
				res = rm
				break
			}
			a.image = a.remote
			res = run("pull", a)
			if res.Code == 0 && lastLine(res.Stdout) != builtID {
				problem = fmt.Sprintf("pulled back %q, want the built image %s", lastLine(res.Stdout), builtID)
			}
		}
		errLines := errorLines(res.Stderr)
		errLine := strings.Join(errLines, " / ")
		switch {
		case h.forbidden != "" && tool.strict:
			ok := res.Code != 0 && len(errLines) == 1 && strings.Contains(errLine, h.forbidden)
			if step == "info" {
				// info prints what it found before the error.
				ok = ok && problem == ""
			}
			if ok {
				add(matrixRow{h.name, step, "refused, as the host forbids it", errLine})
			} else {
				add(matrixRow{h.name, step, "FAIL: want one Error: line naming " + h.forbidden, errLine})
				t.Errorf("%s: want exit != 0 and one Error: line naming %q; exit %d\n%s%s", step, h.forbidden, res.Code, res.Stdout, res.Stderr)
			}
		case res.Code != 0:
			if errLine == "" {
				errLine = lastLine(res.Stderr)
			}
			add(matrixRow{h.name, step, fmt.Sprintf("FAIL (exit %d)", res.Code), errLine})
			if tool.strict {
				t.Errorf("%s: exit %d\n--- stdout ---\n%s--- stderr ---\n%s", step, res.Code, res.Stdout, res.Stderr)
			}
			if h.forbidden == "" && step != "info" {
				failed = step
			}
		case problem != "":
			add(matrixRow{h.name, step, "FAIL: " + problem, ""})
			if tool.strict {
				t.Errorf("%s: %s", step, problem)
			}
			if step != "info" {
				failed = step
			}
		default:
			result := "pass"
			if h.network != "" && (step == "build" || step == "run") {
				result = "pass with --network " + h.network
			}
			if h.isolation != "" && (step == "build" || step == "run") {
				result = "pass with --isolation=" + h.isolation
			}
			if w := warningLine(res.Stderr); w != "" {
				result += " (" + w + ")"
			}
			if note != "" {
				result += "; " + note
			}
			add(matrixRow{h.name, step, result, ""})
		}
	}
	if h.defaultNetErr != "" && failed == "" {
		// The default network must fail in one line that names the cause.
		a.net, a.image = nil, a.remote
		res := run("run", a)
		errLines := errorLines(res.Stderr)
		step := "run, default network"
		switch {
		case res.Code != 0 && len(errLines) == 1 && strings.Contains(errLines[0], h.defaultNetErr):
			add(matrixRow{h.name, step, "refused, as the host forbids it", errLines[0]})
		case tool.strict:
			add(matrixRow{h.name, step, "FAIL: want one Error: line naming " + h.defaultNetErr, strings.Join(errLines, " / ")})
			t.Errorf("default network on %s: exit %d\n%s", h.name, res.Code, res.Stderr)
		case res.Code == 0:
			add(matrixRow{h.name, step, "pass", ""})
		default:
			add(matrixRow{h.name, step, fmt.Sprintf("FAIL (exit %d)", res.Code), strings.Join(errLines, " / ")})
		}
	}
}

// matrixContainer returns, for a host that is a container, how to run
// bin with args in a fresh one: u's tug runs busybox with the host's
// flags, bin bound read-only at /usr/local/bin/tug and each of dirs at
// its own path, on the host's network (the registry is on loopback).
// It returns nil for any other host.
func matrixContainer(t *testing.T, h matrixHost, u fixture.User, bin string, dirs []string) func(args []string) fixture.Result {
	if h.container == nil {
		return nil
	}
	outer := pulled(t, u)
	return func(args []string) fixture.Result {
		t.Helper()
		cmd := append(append([]string{}, outer...), "run", "--rm", "--network", "host", "-v", bin+":/usr/local/bin/tug:ro")
		for _, d := range dirs {
			cmd = append(cmd, "-v", d+":"+d)
		}
		cmd = append(append(cmd, h.container...), busybox, "tug")
		return fixture.Run(t, u, tugBin, append(cmd, args...)...)
	}
}

func errorLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "Error:") {
			out = append(out, l)
		}
	}
	return out
}

// warningLine returns the first warning, tug's (WARNING: ...) or
// Podman's (level=warning msg="..."), shortened to its cause.
func warningLine(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		w, ok := strings.CutPrefix(l, "WARNING: ")
		if !ok {
			if _, m, found := strings.Cut(l, "level=warning msg="); found {
				w, ok = strings.Trim(m, "\""), true
				w = strings.ReplaceAll(w, `\"`, `"`)
			}
		}
		if ok {
			if i := strings.Index(w, ": using"); i > 0 {
				w = w[:i]
			}
			return "warns: " + w
		}
	}
	return ""
}

func matrixTable(rows []matrixRow) string {
	var b strings.Builder
	b.WriteString("| host | step | result | error line |\n|---|---|---|---|\n")
	esc := func(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", esc(r.host), esc(r.step), esc(r.result), esc(r.errLine))
	}
	return b.String()
}

// matrixRun runs bin with args as u on host h: directly, or through this
// test binary as the set-up helper h.helper names.
func matrixRun(t *testing.T, h matrixHost, u fixture.User, bin string, args []string) fixture.Result {
	t.Helper()
	if h.helper == "" {
		return fixture.Run(t, u, bin, args...)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("as %s via the %s helper: %s %s", u.Name, h.helper, bin, strings.Join(args, " "))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	base := u.Command(ctx, bin, args...)
	cmd := exec.CommandContext(ctx, self, append([]string{bin}, args...)...)
	cmd.Dir = base.Dir
	cmd.Env = append(base.Env,
		envMatrixHelper+"="+h.helper,
		envMatrixCred+"="+strconv.Itoa(int(u.UID))+":"+strconv.Itoa(int(u.GID)))
	cmd.WaitDelay = 10 * time.Second
	if h.helper == "notun" {
		standIn := filepath.Join(fixture.TempDirFor(t, fixture.Root()), "tun")
		if err := os.WriteFile(standIn, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd.Env = append(cmd.Env, envMatrixTun+"="+standIn)
		// A mount namespace of its own, so that hiding /dev/net/tun
		// touches nothing outside it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	res := fixture.Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running %s through the %s helper: %v", bin, h.helper, err)
	}
	return res
}

const (
	envMatrixHelper = "_TUG_MATRIX_HELPER"
	envMatrixCred   = "_TUG_MATRIX_CRED"
	envMatrixTun    = "_TUG_MATRIX_TUN"
)

// init turns this test binary into the host-matrix helper when asked: as
// root it sets up the simulated host, becomes the user and executes its
// arguments. It runs before TestMain and never returns when it acts.
func init() {
	role := os.Getenv(envMatrixHelper)
	if role == "" {
		return
	}
	if err := matrixHelper(role); err != nil {
		fmt.Fprintf(os.Stderr, "matrix helper %s: %v\n", role, err)
		os.Exit(126)
	}
}

func matrixHelper(role string) error {
	var uid, gid int
	if _, err := fmt.Sscanf(os.Getenv(envMatrixCred), "%d:%d", &uid, &gid); err != nil {
		return fmt.Errorf("%s: %w", envMatrixCred, err)
	}
	switch role {
	case "notun":
		// Like a host that ships /dev/net/tun 0600: users cannot open it.
		if err := unix.Mount(os.Getenv(envMatrixTun), "/dev/net/tun", "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("hiding /dev/net/tun: %w", err)
		}
	case "seccomp":
		// Like Docker's default profile: clone with CLONE_NEWUSER and
		// unshare get EPERM, clone3 ENOSYS; set by root, no no_new_privs.
		if err := refuseUserNamespaces(); err != nil {
			return err
		}
	case "nonewprivs":
		// Like a container started with no-new-privileges or a systemd
		// unit with NoNewPrivileges=: setuid newuidmap gains nothing.
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("setting no_new_privs: %w", err)
		}
	default:
		return fmt.Errorf("unknown role")
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "_TUG_MATRIX_")
	})
	if err := syscall.Setgroups(nil); err != nil {
		return err
	}
	if err := syscall.Setgid(gid); err != nil {
		return err
	}
	if err := syscall.Setuid(uid); err != nil {
		return err
	}
	return unix.Exec(os.Args[1], os.Args[1:], env)
}

func refuseUserNamespaces() error {
	const auditArchX8664 = 0xC000003E
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jump := func(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: code, K: k, Jt: jt, Jf: jf}
	}
	prog := []unix.SockFilter{
		/* 0 */ stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, 4), // arch
		/* 1 */ jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, auditArchX8664, 0, 6),
		/* 2 */ stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, 0), // syscall number
		/* 3 */ jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, unix.SYS_UNSHARE, 5, 0),
		/* 4 */ jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, unix.SYS_CLONE3, 5, 0),
		/* 5 */ jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, unix.SYS_CLONE, 0, 2),
		/* 6 */ stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, 16), // clone flags, low word
		/* 7 */ jump(unix.BPF_JMP|unix.BPF_JSET|unix.BPF_K, unix.CLONE_NEWUSER, 1, 0),
		/* 8 */ stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ALLOW),
		/* 9 */ stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM)),
		/* 10 */ stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS)),
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	// TSYNC: every thread of this Go process, so that the setuid calls
	// and the exec that follow run under it whichever thread makes them.
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return fmt.Errorf("installing the seccomp filter: %w", errno)
	}
	return nil
}

// tug info shows each host check with what it means, as root and
// rootless, and the checks reach --format; rootless, they are the outer
// tug's view of the user, not its namespace child's.
func TestInfoHostChecks(t *testing.T) {
	checks := `{{range .Checks}}{{println .}}{{end}}`
	for _, tc := range []struct {
		name string
		user func(testing.TB) fixture.User
		want []string
	}{
		{"root", rootUser, []string{"user namespaces: allowed, not needed as root", "id mapping: none needed (root)", "storage: overlay (native overlay mounts as root)"}},
		{"rootless", fixture.RootlessUser, []string{"user namespaces: allowed", "id mapping: subordinate range 300000:65536", "storage: overlay (native overlay mounts in tug's user namespace)"}},
		{"no range", fixture.NoSubIDUser, []string{"id mapping: single id (no range for tug-e2e-nosub in /etc/subuid or /etc/subgid): every file of a pulled image is owned by you"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.user(t)
			store := isolated(t, u)
			out := mustTug(t, u, store, "info").Stdout
			for _, section := range []string{"Host:", " kernel:", " cgroups:", " network:", " seccomp:", "Store:"} {
				if !strings.Contains(out, section) {
					t.Errorf("tug info lacks %q:\n%s", section, out)
				}
			}
			got := mustTug(t, u, store, "info", "--format", checks).Stdout
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("checks lack %q:\n%s", w, got)
				}
			}
			who := mustTug(t, u, store, "info", "--format", "{{.Host.User}} {{.Host.UID}} {{.Store.DriverChoice.Driver}}").Stdout
			if want := fmt.Sprintf("%s %d overlay", u.Name, u.UID); strings.TrimSpace(who) != want {
				t.Errorf("info --format = %q, want %q", who, want)
			}
		})
	}
}

// The storage driver is chosen once per store, said with --debug, and
// recorded: a store made with --storage-driver vfs stays vfs without it.
func TestInfoDriverChoiceRecorded(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := isolated(t, u)
	first := mustTug(t, u, store, "--debug", "info")
	if want := "storage driver: overlay (native overlay mounts in tug's user namespace); decided by probe"; !strings.Contains(first.Stderr, want) {
		t.Fatalf("first --debug info lacks %q:\n%s", want, first.Stderr)
	}
	again := mustTug(t, u, store, "--debug", "info")
	if want := "decided by store record"; !strings.Contains(again.Stderr, want) {
		t.Fatalf("second --debug info lacks %q:\n%s", want, again.Stderr)
	}
	rec, err := os.ReadFile(filepath.Join(store[1], "tug-storage-driver.json"))
	if err != nil || !strings.Contains(string(rec), `"driver": "overlay"`) {
		t.Fatalf("driver record: %q, %v", rec, err)
	}

	vfs := isolated(t, u)
	mustTug(t, u, append(vfs, "--storage-driver", "vfs"), "pull", "-q", busybox)
	res := mustTug(t, u, vfs, "--debug", "images", "-q", "--no-trunc")
	if strings.TrimSpace(res.Stdout) != "sha256:"+bbID {
		t.Fatalf("without --storage-driver, the vfs store lists %q", res.Stdout)
	}
	if !strings.Contains(res.Stderr, "storage driver: vfs (chosen with --storage-driver); decided by store record") {
		t.Fatalf("--debug does not say the recorded vfs was used:\n%s", res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(vfs[1], "overlay")); err == nil {
		t.Fatal("opening the vfs store without the flag made an overlay directory beside it")
	}
}
