//go:build e2e

package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tugcli/tug/fixture"
)

// cp both ways, into a running and a stopped container, as root and
// rootless: files, directories, "dir/." contents, symlinks kept as links,
// tar on stdin and stdout.
func TestCp(t *testing.T) {
	for mode, u := range users(t) {
		t.Run(mode, func(t *testing.T) {
			store := pulled(t, u)
			host := fixture.TempDirFor(t, u)
			fixture.MustRun(t, u, "sh", "-c", "cd "+host+" && mkdir -p in/sub && echo a > in/a.txt && echo b > in/sub/b.txt && ln -s a.txt in/link")
			mustTug(t, u, store, "run", "-d", "--name", "cc", "--network", "none", busybox, "sh", "-c", "mkdir /data && echo inside > /data/f && exec sleep 60")
			defer tug(t, u, store, "rm", "-f", "cc")
			mustTug(t, u, store, "cp", filepath.Join(host, "in"), "cc:/data/")
			mustTug(t, u, store, "cp", filepath.Join(host, "in", "a.txt"), "cc:/data/renamed.txt")
			mustTug(t, u, store, "cp", filepath.Join(host, "in")+"/.", "cc:/flat")
			got := strings.TrimSpace(mustTug(t, u, store, "exec", "cc", "sh", "-c", "cat /data/in/a.txt /data/in/sub/b.txt /data/renamed.txt /flat/sub/b.txt; readlink /data/in/link; stat -c %u /data/in/a.txt").Stdout)
			if got != "a\nb\na\nb\na.txt\n0" {
				t.Fatalf("in the container after cp in: %q", got)
			}
			mustTug(t, u, store, "cp", "cc:/data", filepath.Join(host, "out"))
			mustTug(t, u, store, "cp", "cc:/data/f", host+"/")
			out := fixture.MustRun(t, u, "sh", "-c", "cd "+host+" && cat out/f out/in/a.txt f && readlink out/in/link && stat -c %U f").Stdout
			if out != "inside\na\ninside\na.txt\n"+u.Name+"\n" {
				t.Fatalf("on the host after cp out: %q", out)
			}
			listing := mustTug(t, u, store, "cp", "cc:/data/in", "-").Stdout
			for _, want := range []string{"in/", "in/a.txt", "in/sub/b.txt", "in/link"} {
				if !strings.Contains(listing, want) {
					t.Fatalf("the tar on stdout lacks %s", want)
				}
			}
			mustTug(t, u, store, "stop", "-t", "0", "cc")
			mustTug(t, u, store, "cp", filepath.Join(host, "in", "a.txt"), "cc:/stopped.txt")
			mustTug(t, u, store, "cp", "cc:/stopped.txt", filepath.Join(host, "back.txt"))
			if b, _ := os.ReadFile(filepath.Join(host, "back.txt")); string(b) != "a\n" {
				t.Fatalf("round trip through a stopped container: %q", b)
			}
			for _, bad := range [][]string{{"cc:/nonexistent", host}, {filepath.Join(host, "nope"), "cc:/x"}, {"cc:/a", "cc:/b"}, {host, host}, {"nosuchctr:/x", host}} {
				res := tug(t, u, store, append([]string{"cp"}, bad...)...)
				if res.Code == 0 || !strings.HasPrefix(lastLine(res.Stderr), "Error: ") {
					t.Fatalf("cp %v: exit %d, stderr %q", bad, res.Code, res.Stderr)
				}
			}
		})
	}
}

// docker cp's escapes (CVE-2018-15664, CVE-2019-14271 class): symlinks in
// the container — absolute, relative with .., and one swapped in while cp
// runs — resolve inside the container's root, never the host's.
func TestCpSymlinksStayInside(t *testing.T) {
	for _, mode := range []string{"rootless", "root"} {
		t.Run(mode, func(t *testing.T) {
			u := fixture.Root()
			if mode == "rootless" {
				u = fixture.RootlessUser(t)
			}
			store := pulled(t, u)
			host := fixture.TempDirFor(t, u)
			secretDir := fixture.TempDirFor(t, u)
			os.WriteFile(filepath.Join(secretDir, "secret"), []byte("host secret\n"), 0o644)
			os.Chown(filepath.Join(secretDir, "secret"), int(u.UID), int(u.GID))
			// The container also swaps /race between a directory and a link
			// to / in a loop, for the race below.
			racer := "mkdir -p /race.d && echo in > /race.d/f; (while true; do ln -sfn / /race.l; mv -T /race.l /race 2>/dev/null; rm -rf /race; cp -r /race.d /race 2>/dev/null; done) &"
			script := fmt.Sprintf("mkdir -p /c && ln -s %s /c/abs && ln -s ../../../../../../%s /c/rel && ln -s %s /c/dirlink && %s exec sleep 60", secretDir+"/secret", secretDir+"/secret", secretDir, racer)
			mustTug(t, u, store, "run", "-d", "--name", "evil", "--network", "none", busybox, "sh", "-c", script)
			defer tug(t, u, store, "rm", "-f", "evil")
			os.WriteFile(filepath.Join(host, "payload"), []byte("payload\n"), 0o644)
			links := func(state string) {
				for _, src := range []string{"evil:/c/abs", "evil:/c/rel", "evil:/c/dirlink/secret"} {
					res := tug(t, u, store, "cp", "-L", src, filepath.Join(host, "got"))
					if b, _ := os.ReadFile(filepath.Join(host, "got")); strings.Contains(string(b), "host secret") {
						t.Fatalf("%s container: cp -L %s read the host's file", state, src)
					}
					if res.Code == 0 {
						t.Fatalf("%s container: cp -L %s found a file the container does not have", state, src)
					}
				}
				// Writing through a link to a host directory lands in the
				// container's own directory of that name, if anywhere.
				tug(t, u, store, "cp", filepath.Join(host, "payload"), "evil:/c/dirlink/")
				if _, err := os.Stat(filepath.Join(secretDir, "payload")); err == nil {
					t.Fatalf("%s container: cp into the container wrote into the host's directory", state)
				}
			}
			links("running")
			// The race: cp from and into /race while the container swaps it.
			for i := 0; i < 30; i++ {
				tug(t, u, store, "cp", "evil:/race/"+strings.TrimPrefix(secretDir, "/")+"/secret", filepath.Join(host, "raced"))
				if b, _ := os.ReadFile(filepath.Join(host, "raced")); strings.Contains(string(b), "host secret") {
					t.Fatalf("round %d: cp out followed the swapped link to the host", i)
				}
				tug(t, u, store, "cp", filepath.Join(host, "payload"), "evil:/race"+secretDir+"/")
				if _, err := os.Stat(filepath.Join(secretDir, "payload")); err == nil {
					t.Fatalf("round %d: cp in followed the swapped link to the host", i)
				}
			}
			// A stopped container's files are reached from the host side,
			// in its root filesystem mounted there: the links must still
			// resolve inside it.
			mustTug(t, u, store, "stop", "-t", "0", "evil")
			links("stopped")
		})
	}
}
