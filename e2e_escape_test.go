//go:build e2e

package main_test

import (
	"archive/tar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tugcli/tug/fixture"
)

// BuildKit's "Leaky Vessels" classes, against tug's build, rootless and as
// root: a mount target reached through a symlink to / (CVE-2024-23651's
// race lands there), a mount stub swapped for a link to a host directory
// before its cleanup (CVE-2024-23652), and RUN --security=insecure
// (CVE-2024-23653: the privilege check); plus an ADDed archive whose
// entries aim outside the root. Each must leave the host alone.
func TestBuildEscapes(t *testing.T) {
	for _, mode := range []string{"rootless", "root"} {
		t.Run(mode, func(t *testing.T) {
			u := fixture.Root()
			if mode == "rootless" {
				u = fixture.RootlessUser(t)
			}
			store := pulled(t, u)
			victim := fixture.TempDirFor(t, u)
			os.WriteFile(filepath.Join(victim, "x"), []byte("keep me\n"), 0o644)
			os.Chown(filepath.Join(victim, "x"), int(u.UID), int(u.GID))

			// Mount targets through a symlink to the container's /.
			ctx := buildContext(t, u, map[string]string{"Dockerfile": "FROM " + busybox + "\n" +
				"RUN ln -s / /up\n" +
				"RUN --mount=type=cache,target=/up" + victim + "/cache --mount=type=tmpfs,target=/up" + victim + "/tmpfs touch /up" + victim + "/cache/pwned /up" + victim + "/tmpfs/pwned\n" +
				// A stub created for a mount, swapped for a link to the
				// host's directory before tug removes the stub.
				"RUN --mount=type=tmpfs,target=/stub/x sh -c 'rm -rf /stub 2>/dev/null; ln -s " + victim + " /stub' || true\n",
			})
			mustTug(t, u, store, "build", "-q", "--network", "none", ctx)
			ents, _ := os.ReadDir(victim)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if strings.Join(names, ",") != "x" {
				t.Fatalf("the build touched the host directory %s: it holds %v", victim, names)
			}
			if b, _ := os.ReadFile(filepath.Join(victim, "x")); string(b) != "keep me\n" {
				t.Fatalf("the host file changed: %q", b)
			}

			// RUN --security=insecure is refused with one Error: line.
			ctx = buildContext(t, u, map[string]string{"Dockerfile": "FROM " + busybox + "\nRUN --security=insecure grep CapEff /proc/self/status\n"})
			res := tug(t, u, store, "build", "-q", "--network", "none", ctx)
			if res.Code == 0 || !strings.HasPrefix(lastLine(res.Stderr), "Error: ") || !strings.Contains(res.Stderr, "--security=insecure") {
				t.Fatalf("RUN --security=insecure: exit %d, stderr %q", res.Code, res.Stderr)
			}

			// ADD of an archive with entries that aim outside the root.
			ctx = buildContext(t, u, nil)
			f, err := os.Create(filepath.Join(ctx, "evil.tar"))
			if err != nil {
				t.Fatal(err)
			}
			tw := tar.NewWriter(f)
			for _, h := range []*tar.Header{
				{Name: "../../../../../../.." + victim + "/dotdot", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
				{Name: victim + "/absolute", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
				{Name: "link", Typeflag: tar.TypeSymlink, Linkname: victim, Mode: 0o777},
				{Name: "link/through", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
				{Name: "hard", Typeflag: tar.TypeLink, Linkname: "../../../../../.." + victim + "/x"},
			} {
				tw.WriteHeader(h)
				if h.Size > 0 {
					tw.Write([]byte("!"))
				}
			}
			tw.Close()
			f.Close()
			os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM "+busybox+"\nADD evil.tar /evil/\n"), 0o644)
			fixture.MustRun(t, fixture.Root(), "chown", "-R", u.Name, ctx)
			tug(t, u, store, "build", "-q", "--network", "none", ctx) // may fail; must not escape
			ents, _ = os.ReadDir(victim)
			names = nil
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if strings.Join(names, ",") != "x" {
				t.Fatalf("ADD of a hostile archive wrote into the host directory %s: it holds %v", victim, names)
			}
			if b, _ := os.ReadFile(filepath.Join(victim, "x")); string(b) != "keep me\n" {
				t.Fatalf("the host file changed: %q", b)
			}
		})
	}
}

// A setuid-root binary gains nothing under no_new_privs (tug sets it for
// every container unless --privileged): run as uid 1000 it stays 1000.
func TestSetuidUnderNoNewPrivs(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + "\nCOPY probe /probe\nRUN chmod 4755 /probe\n",
	})
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go tool to build the setuid probe (CI has it; a host carrying only the test binary does not)")
	}
	src := filepath.Join(t.TempDir(), "main.go")
	os.WriteFile(src, []byte("package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() { fmt.Println(os.Geteuid()) }\n"), 0o644)
	build := exec.Command("go", "build", "-o", filepath.Join(ctx, "probe"), src)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the probe: %v\n%s", err, out)
	}
	fixture.MustRun(t, fixture.Root(), "chown", "-R", u.Name, ctx)
	mustTug(t, u, store, "build", "-q", "-t", "suid", "--network", "none", ctx)
	if got := runOut(t, u, store, "--network", "none", "-u", "1000", "suid", "/probe"); got != "1000" {
		t.Fatalf("a setuid-root binary run as 1000 has euid %s under no_new_privs", got)
	}
	// The check can fail: without no_new_privs the same binary is root.
	if got := runOut(t, u, store, "--network", "none", "--privileged", "-u", "1000", "suid", "/probe"); got != "0" {
		t.Fatalf("with --privileged (no no_new_privs) the setuid binary has euid %s, want 0", got)
	}
}
