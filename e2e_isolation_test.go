//go:build e2e

// --isolation (issue #10, "Works anywhere"): chroot isolation for root
// that can make no namespace, as a CI job in a container; tug nested in a
// tug container; auto's choice; and the one-line refusal where nothing
// works.
package main_test

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tugcli/tug/fixture"
)

// tugContainer runs the tug under test inside a container that the same
// tug started: u's outer tug, with the binary bound read-only at
// /usr/local/bin/tug (as a user would), dir (u's, for the inner store and
// build contexts) bound at the same path, and the host's network, so that
// the registry on loopback is reached.
type tugContainer struct {
	u     fixture.User
	outer []string // the outer tug's store flags
	flags []string // more flags for the outer run
	dir   string
}

func newTugContainer(t *testing.T, u fixture.User, flags ...string) tugContainer {
	return tugContainer{u: u, outer: pulled(t, u), flags: flags, dir: fixture.TempDirFor(t, u)}
}

// with is c with more flags for the outer run.
func (c tugContainer) with(flags ...string) tugContainer {
	c.flags = append(append([]string{}, c.flags...), flags...)
	return c
}

// args is the outer command line that runs the inner tug with args.
func (c tugContainer) args(args ...string) []string {
	out := []string{"run", "--rm", "--network", "host", "-v", tugBin + ":/usr/local/bin/tug:ro", "-v", c.dir + ":" + c.dir}
	out = append(out, c.flags...)
	out = append(out, busybox, "tug", "--root", filepath.Join(c.dir, "root"), "--runroot", filepath.Join(c.dir, "run"))
	return append(out, args...)
}

func (c tugContainer) tug(t *testing.T, args ...string) fixture.Result {
	t.Helper()
	return tug(t, c.u, c.outer, c.args(args...)...)
}

func (c tugContainer) mustTug(t *testing.T, args ...string) fixture.Result {
	t.Helper()
	return mustTug(t, c.u, c.outer, c.args(args...)...)
}

// isolationContext writes a build context in dir (a directory of u's)
// whose image prints "built from " + marker; its RUN step also needs a
// working /dev/null.
func isolationContext(t *testing.T, u fixture.User, dir, marker string) string {
	ctx := filepath.Join(dir, "ctx-"+strings.ReplaceAll(marker, " ", "-"))
	if err := os.Mkdir(ctx, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(ctx, int(u.UID), int(u.GID))
	writeFileFor(t, u, filepath.Join(ctx, "hello.txt"), []byte(marker+"\n"))
	writeFileFor(t, u, filepath.Join(ctx, "Dockerfile"), []byte(fmt.Sprintf(
		"FROM %s\nCOPY hello.txt /hello.txt\nRUN echo \"built from $(cat /hello.txt)\" > /built.txt && echo gone > /dev/null\nCMD [\"cat\", \"/built.txt\"]\n", busybox)))
	return ctx
}

// lastLayerFiles lists the entries of the top layer of ref, read from the
// registry: what the RUN step left in the image.
func lastLayerFiles(t *testing.T, ref string) []string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[len(layers)-1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/"))
	}
}

// wantOneError fails unless res failed with exit 125 and exactly one
// Error: line containing want.
func wantOneError(t *testing.T, what string, res fixture.Result, want string) {
	t.Helper()
	lines := errorLines(res.Stderr)
	if res.Code != 125 || len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Errorf("%s: exit %d, want 125 and one Error: line containing %q:\n%s", what, res.Code, want, res.Stderr)
	}
}

// Inside a container started with tug run's defaults (root, Docker's
// capabilities without CAP_SYS_ADMIN, the default seccomp profile, which
// refuses every new namespace), auto picks chroot and says so with
// --debug, and the inner tug pulls, builds, runs and pushes. Nothing can
// be mounted there: the RUN step still gets /dev/null and /etc/hosts
// (made and copied in by tug), and none of them ends up in the layer.
func TestIsolationInContainerPicksChroot(t *testing.T) {
	fixture.RequireRoot(t)
	c := newTugContainer(t, fixture.Root())
	c.mustTug(t, "pull", "-q", busybox)
	ctxDir := isolationContext(t, c.u, c.dir, "the container")
	res := c.mustTug(t, "--debug", "build", "-t", "localhost/chrooted", ctxDir)
	for _, want := range []string{
		"isolation: chroot (auto: no namespace can be made here (operation not permitted: a seccomp filter",
		"storage driver: vfs",
		"chroot isolation: made /dev/null",
		"chroot isolation: /proc, /sys, /dev/pts, /dev/shm not mounted",
	} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("build --debug lacks %q:\n%s", want, res.Stderr)
		}
	}
	out := c.mustTug(t, "run", "--rm", "localhost/chrooted").Stdout
	if strings.TrimSpace(out) != "built from the container" {
		t.Errorf("run printed %q", out)
	}
	// The command runs as the image says, with tug's /etc files, the
	// host's network and no CAP_SYS_CHROOT (root could leave the chroot
	// with it).
	out = c.mustTug(t, "run", "--rm", "-w", "/etc", "-e", "X=y", busybox, "sh", "-c",
		`pwd; echo $X; grep -q localhost hosts && echo hosts; test -e /proc/self/status || echo no-proc; test -c /dev/zero && echo dev`).Stdout
	if want := "/etc\ny\nhosts\nno-proc\ndev\n"; out != want {
		t.Errorf("run printed %q, want %q", out, want)
	}
	ref := registry.Addr + "/isolation/chrooted:1"
	c.mustTug(t, "push", "localhost/chrooted", ref)
	if files := lastLayerFiles(t, ref); strings.Join(files, " ") != "built.txt" {
		t.Errorf("the RUN step's layer holds %q, want only built.txt (tug's /dev nodes and /etc files must not stay)", files)
	}
	mustTug(t, fixture.Root(), isolated(t, fixture.Root()), "pull", "-q", ref)

	// What only namespaces give is refused in one line, not half done.
	wantOneError(t, "--isolation=rootless", c.tug(t, "run", "--rm", "--isolation=rootless", busybox, "true"),
		"rootless isolation needs namespaces, and this process is root without CAP_SYS_ADMIN")
	wantOneError(t, "--network none", c.tug(t, "run", "--rm", "--network", "none", busybox, "true"),
		"--network none needs a network namespace, which chroot isolation does not make")
	wantOneError(t, "-v DIR", c.tug(t, "run", "--rm", "-v", c.dir+":/mnt", busybox, "true"),
		"needs a mount, which chroot isolation cannot give without a mount namespace")
}

// Root on the host may ask for chroot: the command gets a mount and UTS
// namespace of its own (/proc, /dev, /etc files mounted, its own host
// name), the host's PIDs and network, and no CAP_SYS_CHROOT.
func TestIsolationChrootAsRoot(t *testing.T) {
	u := rootUser(t)
	store := pulled(t, u)
	dir := fixture.TempDirFor(t, u)
	res := mustTug(t, u, store, "--debug", "build", "--isolation=chroot", "-t", "localhost/chroot-host", isolationContext(t, u, dir, "the host"))
	if want := "isolation: chroot (chosen with --isolation=chroot)"; !strings.Contains(res.Stderr, want) {
		t.Errorf("build --debug lacks %q:\n%s", want, res.Stderr)
	}
	if out := runOut(t, u, store, "--isolation=chroot", "localhost/chroot-host"); out != "built from the host" {
		t.Errorf("run printed %q", out)
	}
	out := runOut(t, u, store, "--isolation=chroot", "--hostname", "chrooted", busybox, "sh", "-c",
		`echo $$; hostname; grep CapEff: /proc/self/status; grep -c nameserver /etc/resolv.conf; test -d /proc/1 && echo host-pids`)
	lines := strings.Split(out, "\n")
	if len(lines) != 5 || lines[0] == "1" || lines[1] != "chrooted" || lines[2] != "CapEff:\t00000000a80025fb" || lines[4] != "host-pids" {
		t.Errorf("in chroot isolation: %q; want a PID other than 1, host name chrooted, Docker's capabilities without CAP_SYS_CHROOT (a80025fb), the host's PIDs", out)
	}
	ref := registry.Addr + "/isolation/chroot-host:1"
	mustTug(t, u, store, "push", "localhost/chroot-host", ref)
	// The directory etc itself may be there, as from every build's RUN
	// step (its mount points for /etc/hosts and co. change its time).
	if files := strings.Join(lastLayerFiles(t, ref), " "); files != "built.txt" && files != "built.txt etc" {
		t.Errorf("the RUN step's layer holds %q, want only built.txt", files)
	}
}

// Nested: tug in a container started by rootless tug with seccomp
// unconfined is uid 0 in the outer user namespace, without CAP_SYS_ADMIN.
// It makes a user namespace of its own that maps every id it has (it has
// CAP_SETUID and CAP_SETGID: no newuidmap) and runs with namespaces there;
// /proc, which the container's masks keep from being mounted afresh, is
// bound instead. With the host's /dev/net/tun bound in, the default
// network works; without it, the run fails in one line naming it.
func TestIsolationNested(t *testing.T) {
	u := fixture.RootlessUser(t)
	c := newTugContainer(t, u, "--security-opt", "seccomp=unconfined")
	tun := c.with("-v", "/dev/net/tun:/dev/net/tun")
	c.mustTug(t, "pull", "-q", busybox)
	ctxDir := isolationContext(t, u, c.dir, "a nested tug")
	res := tun.mustTug(t, "--debug", "build", "-t", "localhost/nested", ctxDir)
	for _, want := range []string{
		"isolation: rootless (auto: root without CAP_SYS_ADMIN (as in a container): a user namespace of tug's own)",
		"/proc: a fresh proc mount was refused",
	} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("build --debug lacks %q:\n%s", want, res.Stderr)
		}
	}
	if out := tun.mustTug(t, "run", "--rm", "localhost/nested").Stdout; strings.TrimSpace(out) != "built from a nested tug" {
		t.Errorf("run printed %q", out)
	}
	// Every id of the outer namespace, onto itself; Docker's capabilities
	// inside; the private network's address.
	out := tun.mustTug(t, "run", "--rm", busybox, "sh", "-c", "cat /proc/self/uid_map; grep CapEff: /proc/self/status; ip -4 -o addr show tap0").Stdout
	f := strings.Fields(out)
	if len(f) < 8 || strings.Join(f[:6], " ") != "0 0 1 1 1 65536" || f[7] != "00000000a80425fb" || !strings.Contains(out, "10.0.2.100/24") {
		t.Errorf("nested container: %q; want uid_map 0 0 1 / 1 1 65536, CapEff a80425fb, tap0 10.0.2.100", out)
	}
	wantOneError(t, "default network without /dev/net/tun", c.tug(t, "run", "--rm", busybox, "true"), "/dev/net/tun")
	c.mustTug(t, "run", "--rm", "--network", "host", busybox, "true")
	tun.mustTug(t, "push", "localhost/nested", registry.Addr+"/isolation/nested:1")
}

// auto says, with --debug, what it chose and why: namespaces for root on
// the host, tug's user namespace for a user.
func TestIsolationAutoSaysWhich(t *testing.T) {
	for _, tc := range []struct {
		user func(testing.TB) fixture.User
		want string
	}{
		{rootUser, "isolation: rootless (auto: root, and namespaces work here)"},
		{fixture.RootlessUser, "isolation: rootless (tug's user namespace, for user tug-e2e)"},
	} {
		u := tc.user(t)
		store := pulled(t, u)
		res := mustTug(t, u, store, "--debug", "run", "--rm", "--network", "none", busybox, "true")
		if strings.Count(res.Stderr, "isolation: ") != 1 || !strings.Contains(res.Stderr, tc.want) {
			t.Errorf("as %s, --debug run says, not once, %q:\n%s", u.Name, tc.want, res.Stderr)
		}
		if info := mustTug(t, u, store, "info").Stdout; !strings.Contains(info, strings.Replace(tc.want, "isolation: ", "isolation:       ", 1)) {
			t.Errorf("as %s, info lacks the isolation:\n%s", u.Name, info)
		}
	}
}

// Where no isolation can work, run and build refuse in one Error: line
// that names what is missing; commands that run nothing still work.
func TestIsolationNothingWorks(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	wantOneError(t, "rootless run --isolation=chroot", tug(t, u, store, "run", "--rm", "--isolation=chroot", busybox, "true"),
		"chroot isolation needs root: chroot(2) needs CAP_SYS_CHROOT, which uid")
	dir := fixture.TempDirFor(t, u)
	res := tug(t, u, store, "build", "--isolation=chroot", isolationContext(t, u, dir, "nothing"))
	if lines := errorLines(res.Stderr); res.Code == 0 || len(lines) != 1 || !strings.Contains(lines[0], "chroot isolation needs root") {
		t.Errorf("rootless build --isolation=chroot: exit %d, want one Error: line saying chroot needs root:\n%s", res.Code, res.Stderr)
	}
	wantOneError(t, "--isolation=bogus", tug(t, u, store, "run", "--rm", "--isolation=bogus", busybox, "true"),
		`unknown isolation "bogus": use auto (the default), rootless or chroot`)
	// The configuration file's default is honoured by run; a command that
	// runs nothing opens the store as auto would.
	cfg := filepath.Join(fixture.TempDirFor(t, u), "config.toml")
	writeFileFor(t, u, cfg, []byte("[isolation]\ndefault = \"chroot\"\n"))
	uc := u
	uc.Env = append(append([]string{}, u.Env...), "TUG_CONFIG="+cfg)
	wantOneError(t, "isolation.default = chroot", tug(t, uc, store, "run", "--rm", busybox, "true"), "chroot isolation needs root")
	mustTug(t, uc, store, "images", "-q")
	mustTug(t, uc, store, "run", "--rm", "--isolation=auto", "--network", "none", busybox, "true")

	// Root in a container without CAP_SYS_CHROOT, under Docker's seccomp
	// profile: neither namespaces nor chroot.
	if os.Geteuid() != 0 {
		return
	}
	c := newTugContainer(t, fixture.Root())
	c.mustTug(t, "pull", "-q", busybox)
	c = c.with("--cap-drop", "SYS_CHROOT")
	wantOneError(t, "no isolation", c.tug(t, "run", "--rm", busybox, "true"),
		"no isolation works here: namespaces cannot be made (operation not permitted: a seccomp filter")
	if out := c.mustTug(t, "images", "-q", "--no-trunc").Stdout; strings.TrimSpace(out) != "sha256:"+bbID {
		t.Errorf("images where no isolation works: %q", out)
	}
	// Storage unpacks layers in a chroot: a pull there says what it lacks.
	c.mustTug(t, "rmi", busybox)
	res = c.tug(t, "pull", "-q", busybox)
	if lines := errorLines(res.Stderr); res.Code == 0 || len(lines) != 1 || !strings.Contains(lines[0], "may not chroot (no CAP_SYS_CHROOT") {
		t.Errorf("pull without CAP_SYS_CHROOT: exit %d, want one Error: line naming CAP_SYS_CHROOT:\n%s", res.Code, res.Stderr)
	}
}
