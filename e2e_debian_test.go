//go:build e2e

package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tugcli/tug/fixture"
)

// debianHelloDockerfile installs a package from Debian's mirror in a RUN
// step, over the build's default network, and adds a user whose home is
// chowned to it.
func debianHelloDockerfile(base string) string {
	return "FROM " + base + "\n" +
		"RUN apt-get update && apt-get install -y --no-install-recommends hello && rm -rf /var/lib/apt/lists/*\n" +
		"RUN useradd -m app && chown app /home/app\n" +
		"USER app\n" +
		"CMD [\"hello\"]\n"
}

// A real distribution as the base: a Debian image made by debootstrap,
// apt-get update && apt-get install in a RUN step reaching deb.debian.org
// through tug's default (private) network, useradd and chown to a non-root
// uid, built rootless (a subordinate range) and as root. The image runs
// with tug run, is pushed, and runs with Podman as root from the registry.
func TestDebianAptBuild(t *testing.T) {
	fixture.RequireRoot(t)
	base := registry.Addr + "/debian:" + fixture.DebianSuite
	fixture.DebianBase(t, base)

	for _, mode := range []string{"rootless", "root"} {
		t.Run(mode, func(t *testing.T) {
			u := fixture.Root()
			if mode == "rootless" {
				u = fixture.RootlessUser(t)
			}
			store := isolated(t, u)
			// Built-in defaults, whatever config a user has: the RUN steps
			// get the private network.
			conf := filepath.Join(fixture.TempDirFor(t, u), "config.toml")
			if err := os.WriteFile(conf, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			u.Env = append(u.Env, "TUG_CONFIG="+conf)
			ctx := buildContext(t, u, map[string]string{"Dockerfile": debianHelloDockerfile(base)})
			tag := "localhost/debhello:" + mode

			start := time.Now()
			res := mustTug(t, u, store, "build", "-t", tag, ctx)
			t.Logf("build (FROM pull, apt-get update and install, useradd) took %v", time.Since(start).Round(time.Millisecond))
			out := res.Stdout + res.Stderr
			if !strings.Contains(out, "Setting up hello") {
				t.Fatalf("the build's apt-get did not install hello:\n%s", out)
			}
			// apt downloads as _apt (uid 42); it falls back to root and
			// says so when that uid cannot be used.
			if strings.Contains(out, "unsandboxed") {
				t.Errorf("apt could not drop to its _apt user in the RUN step:\n%s", out)
			}

			if got := runOut(t, u, store, tag); got != "Hello, world!" {
				t.Fatalf("tug run --rm %s printed %q, want Hello, world!", tag, got)
			}
			if got := runOut(t, u, store, tag, "sh", "-c", "id -un; stat -c %U:%G:%u:%g /home/app"); got != "app\napp:app:1000:1000" {
				t.Fatalf("user and /home/app inside the image:\n%s\nwant app, app:app:1000:1000", got)
			}
			// On the host, the chown went through the mapping: uid 1000 of
			// the container is subordinate uid start+999 rootless.
			homes := findInStore(t, store[1], "home/app")
			if len(homes) != 1 {
				t.Fatalf("found %d copies of /home/app in the store, want 1: %v", len(homes), homes)
			}
			wantUID, wantGID := uint32(1000), uint32(1000)
			if mode == "rootless" {
				wantUID, wantGID = uint32(u.SubIDStart+999), uint32(u.SubGIDStart+999)
			}
			if uid, gid := owner(t, homes[0]); uid != wantUID || gid != wantGID {
				t.Fatalf("/home/app is %d:%d on the host, want %d:%d", uid, gid, wantUID, wantGID)
			}

			ref := registry.Addr + "/debhello:" + mode
			mustTug(t, u, store, "push", tag, ref)

			if _, err := exec.LookPath("podman"); err != nil {
				if os.Getenv("CI") == "true" {
					t.Fatal("podman is not installed; .ci/run installs it")
				}
				t.Skip("podman is not installed")
			}
			root := fixture.Root()
			pdir := fixture.TempDirFor(t, root)
			// Runs before TempDirFor's removal (cleanups run last first).
			t.Cleanup(func() { waitForProcessesUsing(t, pdir) })
			podman := podmanStore(t, root, pdir)
			run := append([]string{"--runtime", "runc", "run", "--rm", "--network", "none"}, rootPodmanUlimits()...)
			got := podman(append(run, "--tls-verify=false", ref)...).Stdout
			if strings.TrimSpace(got) != "Hello, world!" {
				t.Fatalf("podman run of %s printed %q, want Hello, world!", ref, got)
			}
			got = podman(append(run, ref, "sh", "-c", "id -un; stat -c %U:%G:%u:%g /home/app")...).Stdout
			if strings.TrimSpace(got) != "app\napp:app:1000:1000" {
				t.Fatalf("in Podman, user and /home/app:\n%s\nwant app, app:app:1000:1000", got)
			}
		})
	}
}

// rootPodmanUlimits returns --ulimit flags for root Podman. By default
// root Podman raises RLIMIT_NOFILE and RLIMIT_NPROC in the container to
// 1048576, which runc cannot do where root lacks CAP_SYS_RESOURCE, as on
// the CI machine ("error setting rlimit type 7: operation not
// permitted"). Passing this process's hard limits fails there too: Podman
// itself ran with a lower RLIMIT_NPROC (32768, against the test's 96365),
// and "host" or -1 ask for more than root may set. Small fixed limits can
// always be set; hello needs neither.
func rootPodmanUlimits() []string {
	return []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}
}

// waitForProcessesUsing waits up to 20 seconds until no process has dir
// in its command line. Podman's conmon runs "podman container cleanup"
// after the container exits, even after run --rm has returned; it mounts
// the store again, so removing the store before it is done fails with
// EBUSY.
func waitForProcessesUsing(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		busy := ""
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if err == nil && strings.Contains(string(b), dir) {
				busy = strings.ReplaceAll(string(b), "\x00", " ")
				break
			}
		}
		if busy == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("a process still uses %s after 20s: %s", dir, busy)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
