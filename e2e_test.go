//go:build e2e

// End-to-end tests: the real tug binary, a real docker-registry on
// loopback, real user namespaces, as root and as unprivileged users with
// and without a subordinate id range. Run by .ci/run as root.
package main_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tugcli/tug/fixture"
)

var (
	tugBin   string
	registry *fixture.Registry
	busybox  string // REGISTRY/busybox:latest, pushed once
	bbDigest string
	bbID     string // the busybox image's config digest hex = its image id
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		var err error
		// Distributions ship /dev/net/tun 0666; this machine has it 0600,
		// which would keep rootless containers off the default network.
		if os.Geteuid() == 0 {
			if fi, err := os.Stat("/dev/net/tun"); err == nil && fi.Mode().Perm() != 0o666 {
				os.Chmod("/dev/net/tun", 0o666)
			}
		}
		if tugBin, err = fixture.BuildTug(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer fixture.RemoveTugBuild()
		dir, err := os.MkdirTemp("", "tug-e2e-registry-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if registry, err = fixture.StartRegistry(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer registry.Stop()
		img, err := fixture.BusyboxImage()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		cfg, _ := img.ConfigName()
		bbID = cfg.Hex
		busybox = registry.Addr + "/busybox:latest"
		if bbDigest, err = fixture.Push(img, busybox); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}())
}

// isolated returns global flags that give u a store of its own in a fresh
// directory, so tests can run side by side.
func isolated(t *testing.T, u fixture.User) []string {
	dir := fixture.TempDirFor(t, u)
	return []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run")}
}

func tug(t *testing.T, u fixture.User, store []string, args ...string) fixture.Result {
	t.Helper()
	return fixture.Run(t, u, tugBin, append(append([]string{}, store...), args...)...)
}

func mustTug(t *testing.T, u fixture.User, store []string, args ...string) fixture.Result {
	t.Helper()
	return fixture.MustRun(t, u, tugBin, append(append([]string{}, store...), args...)...)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// findInStore returns the host paths of rel (a path inside an image) in
// the layers under the store's graph root.
func findInStore(t *testing.T, graphRoot, rel string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(graphRoot, "overlay", "*", "diff", rel))
	if err != nil {
		t.Fatal(err)
	}
	return matches
}

func owner(t *testing.T, path string) (uint32, uint32) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

// The main case: an unprivileged user with a subordinate range
// pulls into Podman's default per-user store, and ids are mapped as Podman
// maps them (uid N in the image is subuid-start + N - 1 on the host).
func TestPullRootlessSubordinateIDs(t *testing.T) {
	u := fixture.RootlessUser(t)
	fixture.ResetStore(t, u)
	t.Cleanup(func() { fixture.ResetStore(t, u) })

	res := mustTug(t, u, nil, "pull", busybox)
	if got := lastLine(res.Stdout); got != bbID {
		t.Fatalf("last line of pull output = %q, want the image id %s", got, bbID)
	}
	if strings.Contains(res.Stderr, "WARNING") {
		t.Fatalf("pull with a subordinate range warned:\n%s", res.Stderr)
	}
	for _, want := range []string{"Pull complete", "Digest: " + bbDigest, "Downloaded newer image for " + busybox} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("pull output lacks %q:\n%s", want, res.Stderr)
		}
	}

	graphRoot := filepath.Join(u.Home, ".local/share/containers/storage")
	info := mustTug(t, u, nil, "info", "--format", "{{.Store.GraphRoot}} {{.Store.Driver}} {{.Rootless}}")
	if got := strings.TrimSpace(info.Stdout); got != graphRoot+" overlay true" {
		t.Fatalf("tug info = %q, want %q", got, graphRoot+" overlay true")
	}
	owned := findInStore(t, graphRoot, "home/user/owned")
	if len(owned) != 1 {
		t.Fatalf("found %d copies of /home/user/owned in %s, want 1", len(owned), graphRoot)
	}
	uid, gid := owner(t, owned[0])
	if want := uint32(u.SubIDStart + 999); uid != want || gid != uint32(u.SubGIDStart+999) {
		t.Fatalf("/home/user/owned (uid 1000 in the image) is owned by %d:%d on the host, want %d:%d", uid, gid, want, u.SubGIDStart+999)
	}
	bb := findInStore(t, graphRoot, "bin/busybox")
	if len(bb) != 1 {
		t.Fatalf("found %d copies of /bin/busybox", len(bb))
	}
	if uid, _ := owner(t, bb[0]); uid != u.UID {
		t.Fatalf("/bin/busybox (root in the image) is owned by %d on the host, want the user's uid %d", uid, u.UID)
	}

	images := mustTug(t, u, nil, "images")
	if !strings.Contains(images.Stdout, registry.Addr+"/busybox") || !strings.Contains(images.Stdout, bbID[:12]) {
		t.Fatalf("tug images does not list the pulled image:\n%s", images.Stdout)
	}

	// A second pull fetches nothing.
	again := mustTug(t, u, nil, "pull", busybox)
	if strings.Contains(again.Stderr, "Pull complete") || !strings.Contains(again.Stderr, "Image is up to date") {
		t.Fatalf("second pull of the same image:\n%s", again.Stderr)
	}
}

// Without a subordinate range, the pull works with one warning that names
// the fix, and every file belongs to the user.
func TestPullRootlessSingleID(t *testing.T) {
	u := fixture.NoSubIDUser(t)
	store := isolated(t, u)
	res := mustTug(t, u, store, "pull", busybox)
	if n := strings.Count(res.Stderr, "WARNING"); n != 1 {
		t.Fatalf("got %d warnings, want exactly 1:\n%s", n, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "usermod --add-subuids") {
		t.Fatalf("warning does not say how to add a range:\n%s", res.Stderr)
	}
	if lastLine(res.Stdout) != bbID {
		t.Fatalf("pull printed %q, want %s", res.Stdout, bbID)
	}
	owned := findInStore(t, store[1], "home/user/owned")
	if len(owned) != 1 {
		t.Fatalf("found %d copies of /home/user/owned", len(owned))
	}
	if uid, _ := owner(t, owned[0]); uid != u.UID {
		t.Fatalf("/home/user/owned is owned by %d, want the user's own uid %d", uid, u.UID)
	}
	info := mustTug(t, u, store, "info")
	if !strings.Contains(info.Stdout, "single-id") {
		t.Fatalf("tug info does not report single-id mapping:\n%s", info.Stdout)
	}
}

func TestPullAsRoot(t *testing.T) {
	u := fixture.Root()
	fixture.RequireRoot(t)
	store := isolated(t, u)
	res := mustTug(t, u, store, "pull", "-q", busybox)
	if strings.TrimSpace(res.Stdout) != bbID || res.Stderr != "" {
		t.Fatalf("pull -q printed stdout %q stderr %q, want only the id", res.Stdout, res.Stderr)
	}
	owned := findInStore(t, store[1], "home/user/owned")
	if len(owned) != 1 {
		t.Fatalf("found %d copies of /home/user/owned", len(owned))
	}
	if uid, gid := owner(t, owned[0]); uid != 1000 || gid != 1000 {
		t.Fatalf("as root, /home/user/owned is %d:%d, want 1000:1000", uid, gid)
	}
	info := mustTug(t, u, store, "info", "--format", "{{.Rootless}}")
	if strings.TrimSpace(info.Stdout) != "false" {
		t.Fatalf("root's tug info says rootless %q", info.Stdout)
	}
}

// Podman and tug share one store: each lists what the other pulled, and
// Podman runs what tug pulled. Debian 12's Podman 4.3 picks vfs for a
// rootless user without storage.conf (current Podman and tug pick native
// overlay), so the user's storage.conf names overlay, as a user of that
// Podman would write.
func TestPodmanSharesTheStore(t *testing.T) {
	if _, err := exec.LookPath("podman"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("podman is not installed; .ci/run installs it")
		}
		t.Skip("podman is not installed")
	}
	u := fixture.RootlessUser(t)
	fixture.ResetStore(t, u)
	t.Cleanup(func() { fixture.ResetStore(t, u) })
	conf := filepath.Join(u.Home, ".config/containers/storage.conf")
	fixture.MustRun(t, u, "/bin/sh", "-c", "mkdir -p ~/.config/containers && printf '[storage]\\ndriver = \"overlay\"\\n' > "+conf)
	t.Cleanup(func() { os.Remove(conf) })

	mustTug(t, u, nil, "pull", "-q", busybox)
	pm := fixture.MustRun(t, u, "podman", "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	if !strings.Contains(pm.Stdout, busybox+" "+bbID[:12]) {
		t.Fatalf("podman images does not list the image tug pulled:\n%s", pm.Stdout)
	}
	run := fixture.MustRun(t, u, "podman", "--runtime", "runc", "run", "--rm", "--network", "none", busybox, "stat", "-c", "%u:%g", "/home/user/owned")
	if strings.TrimSpace(run.Stdout) != "1000:1000" {
		t.Fatalf("podman run of tug's image: /home/user/owned is %q inside, want 1000:1000", run.Stdout)
	}

	// A container of Podman's keeps the image from being removed.
	ctr := strings.TrimSpace(fixture.MustRun(t, u, "podman", "create", busybox, "true").Stdout)
	inUse := tug(t, u, nil, "rmi", busybox)
	if inUse.Code == 0 || !strings.Contains(inUse.Stderr, "in use by a container") || !strings.Contains(inUse.Stderr, ctr[:12]) {
		t.Fatalf("rmi of an image a container uses: exit %d\n%s", inUse.Code, inUse.Stderr)
	}
	fixture.MustRun(t, u, "podman", "rm", ctr)

	other := registry.Addr + "/podman-pulled:v1"
	img, err := fixture.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fixture.Push(img, other); err != nil {
		t.Fatal(err)
	}
	fixture.MustRun(t, u, "podman", "pull", "-q", "--tls-verify=false", other)
	images := mustTug(t, u, nil, "images", "--format", "{{.Repository}}:{{.Tag}}")
	if !strings.Contains(images.Stdout, other) {
		t.Fatalf("tug images does not list what podman pulled:\n%s", images.Stdout)
	}
	if got := strings.TrimSpace(mustTug(t, u, nil, "run", "--rm", other, "cat", "/etc/tug-fixture").Stdout); got != "tug busybox fixture" {
		t.Fatalf("tug run of the image Podman pulled: %q", got)
	}
}

func TestPullIndexPicksHostPlatform(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := isolated(t, u)
	img, err := fixture.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	ref := registry.Addr + "/multi:latest"
	idxDigest, err := fixture.PushIndex(img, ref)
	if err != nil {
		t.Fatal(err)
	}
	res := mustTug(t, u, store, "pull", ref)
	if lastLine(res.Stdout) != bbID {
		t.Fatalf("pulled %q from the index, want the %s image %s", lastLine(res.Stdout), runtime.GOARCH, bbID)
	}
	if !strings.Contains(res.Stderr, "Digest: "+idxDigest) {
		t.Fatalf("pull does not report the index digest %s:\n%s", idxDigest, res.Stderr)
	}
	arch := mustTug(t, u, store, "inspect", "-f", "{{.Architecture}}", ref)
	if strings.TrimSpace(arch.Stdout) != runtime.GOARCH {
		t.Fatalf("inspect says %q, want %s", arch.Stdout, runtime.GOARCH)
	}
	// And another platform on request.
	o := fixture.OtherArch()
	other := mustTug(t, u, store, "pull", "-q", "--platform", "linux/"+o, ref)
	arch = mustTug(t, u, store, "inspect", "-f", "{{.Architecture}}", strings.TrimSpace(other.Stdout))
	if strings.TrimSpace(arch.Stdout) != o {
		t.Fatalf("--platform linux/%s gave an image for %q", o, arch.Stdout)
	}
}

func TestPullByDigest(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := isolated(t, u)
	ref := registry.Addr + "/busybox@" + bbDigest
	res := mustTug(t, u, store, "pull", "-q", ref)
	if strings.TrimSpace(res.Stdout) != bbID {
		t.Fatalf("pull by digest printed %q", res.Stdout)
	}
	digests := mustTug(t, u, store, "images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}")
	if want := registry.Addr + "/busybox <none> " + bbDigest; strings.TrimSpace(digests.Stdout) != want {
		t.Fatalf("images --digests = %q, want %q", digests.Stdout, want)
	}
}

// tag, images, inspect and rmi on a real store, checking what a user sees.
func TestImageCommands(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := isolated(t, u)
	mustTug(t, u, store, "pull", "-q", busybox)
	mustTug(t, u, store, "tag", busybox, "localhost/mine:v1")
	mustTug(t, u, store, "tag", bbID[:8], "mine:v2")

	q := mustTug(t, u, store, "images", "-q")
	if strings.TrimSpace(q.Stdout) != bbID[:12] {
		t.Fatalf("images -q = %q, want one id %s", q.Stdout, bbID[:12])
	}
	table := mustTug(t, u, store, "images")
	lines := strings.Split(strings.TrimSpace(table.Stdout), "\n")
	if len(lines) != 4 || strings.Join(strings.Fields(lines[0]), " ") != "REPOSITORY TAG IMAGE ID CREATED SIZE" {
		t.Fatalf("images table:\n%s", table.Stdout)
	}
	for _, want := range []string{"localhost/mine", "docker.io/library/mine", registry.Addr + "/busybox"} {
		if !strings.Contains(table.Stdout, want) {
			t.Errorf("images lacks %s:\n%s", want, table.Stdout)
		}
	}

	var inspected []map[string]any
	out := mustTug(t, u, store, "inspect", "mine:v2")
	if err := json.Unmarshal([]byte(out.Stdout), &inspected); err != nil || len(inspected) != 1 {
		t.Fatalf("inspect output is not a one-element JSON array (%v):\n%s", err, out.Stdout)
	}
	got := inspected[0]
	// Lookup leaves the size out (a run has no use for it); inspect and
	// the listing fill it in.
	if size, _ := got["Size"].(float64); size < 100000 {
		t.Errorf("inspect Size = %v, want busybox's bytes", got["Size"])
	}
	if sizes := mustTug(t, u, store, "images", "--format", "{{.Size}}").Stdout; strings.Contains(sizes, "0B") || !strings.Contains(sizes, "MB") {
		t.Errorf("images sizes:\n%s", sizes)
	}
	if got["Id"] != "sha256:"+bbID || got["Os"] != "linux" || got["Architecture"] != runtime.GOARCH {
		t.Fatalf("inspect: Id %v Os %v Architecture %v", got["Id"], got["Os"], got["Architecture"])
	}
	if layers := got["RootFS"].(map[string]any)["Layers"].([]any); len(layers) != 3 {
		t.Fatalf("inspect lists %d layers, want 3", len(layers))
	}
	if cmd := got["Config"].(map[string]any)["Cmd"].([]any); len(cmd) != 1 || cmd[0] != "sh" {
		t.Fatalf("inspect Config.Cmd = %v", cmd)
	}
	if rd := got["RepoDigests"].([]any); len(rd) == 0 || !strings.HasSuffix(rd[0].(string), "@"+bbDigest) {
		t.Fatalf("inspect RepoDigests = %v, want ...@%s", rd, bbDigest)
	}
	f := mustTug(t, u, store, "inspect", "--format", "{{.Id}} {{json .RepoTags}}", busybox)
	if !strings.HasPrefix(f.Stdout, "sha256:"+bbID+` ["`) {
		t.Fatalf("inspect --format = %q", f.Stdout)
	}
	missing := tug(t, u, store, "inspect", "nosuchimage")
	if missing.Code != 1 || !strings.Contains(missing.Stderr, "No such object: nosuchimage") {
		t.Fatalf("inspect of a missing image: exit %d, %q", missing.Code, missing.Stderr)
	}

	// By id while named three times: refused without -f.
	if res := tug(t, u, store, "rmi", bbID[:12]); res.Code == 0 || !strings.Contains(res.Stderr, "must be forced") {
		t.Fatalf("rmi by id of a multiply-tagged image: exit %d, %q", res.Code, res.Stderr)
	}
	rm := mustTug(t, u, store, "rmi", "localhost/mine:v1")
	if strings.TrimSpace(rm.Stdout) != "Untagged: localhost/mine:v1" {
		t.Fatalf("rmi of one name printed %q", rm.Stdout)
	}
	rm = mustTug(t, u, store, "rmi", "-f", bbID)
	if !strings.Contains(rm.Stdout, "Deleted: sha256:"+bbID) {
		t.Fatalf("rmi -f printed %q", rm.Stdout)
	}
	if left := mustTug(t, u, store, "images", "-q"); left.Stdout != "" {
		t.Fatalf("images after rmi: %q", left.Stdout)
	}
	if left := findInStore(t, store[1], "bin/busybox"); len(left) != 0 {
		t.Fatalf("rmi left the image's layers behind: %v", left)
	}
	if res := tug(t, u, store, "rmi", "nosuchimage"); res.Code != 1 || !strings.Contains(res.Stderr, "no such image") {
		t.Fatalf("rmi of a missing image: exit %d, %q", res.Code, res.Stderr)
	}
}

func TestPullBadInput(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := isolated(t, u)
	for _, tc := range []struct {
		name, ref string
		want      []string
	}{
		{"unknown tag", registry.Addr + "/busybox:nosuchtag", []string{"manifest unknown", registry.Addr + "/busybox:nosuchtag"}},
		{"unknown repository", registry.Addr + "/nosuchrepo", []string{"manifest unknown", "nosuchrepo"}},
		{"bad reference", "Not//A:Ref", []string{"invalid reference format"}},
		{"registry down", "127.0.0.1:1/busybox", []string{"127.0.0.1:1", "connection refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tug(t, u, store, "pull", tc.ref)
			if res.Code == 0 {
				t.Fatalf("pull %s succeeded", tc.ref)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.Stderr, w) {
					t.Errorf("error lacks %q:\n%s", w, res.Stderr)
				}
			}
			if n := strings.Count(res.Stderr, "Error: "); n != 1 {
				t.Errorf("want one Error: line, got %d:\n%s", n, res.Stderr)
			}
		})
	}
	if images := mustTug(t, u, store, "images", "-q"); images.Stdout != "" {
		t.Fatalf("failed pulls left images: %q", images.Stdout)
	}
}

// A blob whose bytes do not match its digest is refused and nothing of the
// image is stored.
func TestPullRefusesCorruptBlob(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := isolated(t, u)
	img, err := fixture.ImageWithLayers(1, 64<<10, 42)
	if err != nil {
		t.Fatal(err)
	}
	ref := registry.Addr + "/corrupt:latest"
	if _, err := fixture.Push(img, ref); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	d, _ := layers[len(layers)-1].Digest()
	blob := filepath.Join(registry.Dir, "data/docker/registry/v2/blobs/sha256", d.Hex[:2], d.Hex, "data")
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatalf("reading the registry's copy of the blob: %v", err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(blob, b, 0o644); err != nil {
		t.Fatal(err)
	}
	res := tug(t, u, store, "pull", ref)
	if res.Code == 0 {
		t.Fatal("pull of a corrupt blob succeeded")
	}
	if !strings.Contains(res.Stderr, d.String()) {
		t.Fatalf("error does not name the blob %s:\n%s", d, res.Stderr)
	}
	if images := mustTug(t, u, store, "images", "-q"); images.Stdout != "" {
		t.Fatalf("a corrupt pull left an image: %q", images.Stdout)
	}
}

// SIGKILL at any moment of a pull leaves no half image, and the next pull
// completes. The moments are spread over the pull; the seed is the loop
// index, printed on failure.
func TestPullSurvivesSIGKILL(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := isolated(t, u)
	img, err := fixture.ImageWithLayers(6, 4<<20, 7)
	if err != nil {
		t.Fatal(err)
	}
	ref := registry.Addr + "/big:latest"
	if _, err := fixture.Push(img, ref); err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigName()
	for i, delay := range []time.Duration{5, 30, 80, 150, 250, 400} {
		cmd := u.Command(t.Context(), tugBin, append(append([]string{}, store...), "pull", "-q", ref)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		images := mustTug(t, u, store, "images", "-q", "--no-trunc")
		if s := strings.TrimSpace(images.Stdout); s != "" && s != "sha256:"+cfg.Hex {
			t.Fatalf("kill %d (after %v): images shows %q", i, delay*time.Millisecond, s)
		}
		if s := strings.TrimSpace(images.Stdout); s != "" {
			// Killed after the pull finished: the image must be whole.
			mustTug(t, u, store, "rmi", ref)
		}
	}
	res := mustTug(t, u, store, "pull", "-q", ref)
	if strings.TrimSpace(res.Stdout) != cfg.Hex {
		t.Fatalf("pull after kills printed %q", res.Stdout)
	}
	leftovers, _ := filepath.Glob(filepath.Join(store[1], "tug-tmp", "*"))
	if len(leftovers) != 0 {
		for _, l := range leftovers {
			pid := strings.Split(filepath.Base(l), "-")[1]
			st, _ := os.ReadFile("/proc/" + pid + "/status")
			cmd, _ := os.ReadFile("/proc/" + pid + "/cmdline")
			t.Logf("%s: %q %s", pid, cmd, st)
		}
		t.Fatalf("scratch files left after a clean pull: %v", leftovers)
	}
}

func TestStoreNotWritable(t *testing.T) {
	u := fixture.RootlessUser(t)
	dir, err := os.MkdirTemp("", "tug-e2e-rootowned-") // root's, 0755
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	res := tug(t, u, []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run")}, "images")
	if res.Code == 0 || !strings.Contains(res.Stderr, dir) || !strings.Contains(res.Stderr, "not writable") {
		t.Fatalf("store in a directory owned by root: exit %d\n%s", res.Code, res.Stderr)
	}
	if strings.Contains(res.Stderr, "panic") {
		t.Fatalf("panicked:\n%s", res.Stderr)
	}
}

func TestVFSDriver(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := append(isolated(t, u), "--storage-driver", "vfs")
	mustTug(t, u, store, "pull", "-q", busybox)
	info := mustTug(t, u, store, "info", "--format", "{{.Store.Driver}}")
	if strings.TrimSpace(info.Stdout) != "vfs" {
		t.Fatalf("driver = %q, want vfs", info.Stdout)
	}
	found := 0
	filepath.WalkDir(filepath.Join(store[1], "vfs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, "/home/user/owned") {
			found++
		}
		return nil
	})
	if found == 0 {
		t.Fatal("vfs store holds no /home/user/owned")
	}
}

// The binary is one static executable: it runs on any distribution.
func TestBinaryIsStatic(t *testing.T) {
	out, err := exec.Command("file", tugBin).Output()
	if err != nil {
		t.Fatalf("file %s: %v (the 'file' package is installed by .ci/run)", tugBin, err)
	}
	if !strings.Contains(string(out), "statically linked") {
		t.Fatalf("file says: %s", out)
	}
}

func TestVersionAndHelpNeedNoStore(t *testing.T) {
	u := fixture.NoSubIDUser(t)
	v := mustTug(t, u, []string{"--root", "/nonexistent/x"}, "version")
	if !strings.Contains(v.Stdout, "Version:") || strings.Contains(v.Stderr, "WARNING") {
		t.Fatalf("version: %q %q", v.Stdout, v.Stderr)
	}
	// docker --version's one line, before a command or alone.
	for _, args := range [][]string{{"--version"}, {"--version", "run"}} {
		if res := tug(t, u, []string{"--root", "/nonexistent/x"}, args...); res.Code != 0 || !strings.HasPrefix(res.Stdout, "tug version ") || !strings.Contains(res.Stdout, ", build ") || strings.Count(res.Stdout, "\n") != 1 {
			t.Fatalf("tug %v: exit %d, %q, want one line: tug version VERSION, build COMMIT", args, res.Code, res.Stdout)
		}
	}
	bad := tug(t, u, nil, "pull", "--nosuchflag", "x")
	if bad.Code != 125 {
		t.Fatalf("unknown flag exited %d, want 125", bad.Code)
	}
}

// Several tugs pulling into one store at once, overlapping images: all
// succeed, and each image is stored once and whole.
func TestConcurrentPulls(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := isolated(t, u)
	img, err := fixture.ImageWithLayers(4, 1<<20, 11)
	if err != nil {
		t.Fatal(err)
	}
	big := registry.Addr + "/concurrent:latest"
	if _, err := fixture.Push(img, big); err != nil {
		t.Fatal(err)
	}
	refs := []string{big, busybox, big, busybox, big, big}
	type result struct {
		ref string
		out []byte
		err error
	}
	results := make(chan result, len(refs))
	for _, ref := range refs {
		go func() {
			cmd := u.Command(t.Context(), tugBin, append(append([]string{}, store...), "pull", "-q", ref)...)
			out, err := cmd.CombinedOutput()
			results <- result{ref, out, err}
		}()
	}
	for range refs {
		r := <-results
		if r.err != nil {
			t.Errorf("concurrent pull of %s: %v\n%s", r.ref, r.err, r.out)
		}
	}
	images := mustTug(t, u, store, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	lines := strings.Split(strings.TrimSpace(images.Stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("after concurrent pulls, images lists:\n%s", images.Stdout)
	}
	// Each image reads back whole: inspect lists every layer.
	layers := mustTug(t, u, store, "inspect", "-f", "{{len .RootFS.Layers}}", big)
	if strings.TrimSpace(layers.Stdout) != "7" {
		t.Fatalf("concurrently pulled image has %q layers, want 7", layers.Stdout)
	}
}

// On a terminal, pull redraws one line per layer; on a pipe it prints
// plain lines without escape codes.
func TestPullProgressOnTerminal(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script (bsdutils) is not installed")
	}
	u := fixture.RootlessUser(t)
	store := isolated(t, u)
	cmdline := strings.Join(append(append([]string{tugBin}, store...), "pull", busybox), " ")
	res := fixture.MustRun(t, u, "script", "-qec", cmdline, "/dev/null")
	if !strings.Contains(res.Stdout, "\x1b[") || !strings.Contains(res.Stdout, "Pull complete") {
		t.Fatalf("pull on a terminal shows no live progress:\n%q", res.Stdout)
	}
	piped := mustTug(t, u, isolated(t, u), "pull", busybox)
	if strings.Contains(piped.Stderr, "\x1b[") {
		t.Fatalf("pull on a pipe printed escape codes:\n%q", piped.Stderr)
	}
	if n := strings.Count(piped.Stderr, "Pull complete"); n != 3 {
		t.Fatalf("pull on a pipe printed %d 'Pull complete' lines, want one per layer (3):\n%s", n, piped.Stderr)
	}
}

// storage.conf decides the store as it does for Podman: here through
// CONTAINERS_STORAGE_CONF, naming the driver and both roots.
func TestStorageConfHonoured(t *testing.T) {
	u := fixture.RootlessUser(t)
	dir := fixture.TempDirFor(t, u)
	conf := filepath.Join(dir, "storage.conf")
	body := fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n", filepath.Join(dir, "g"), filepath.Join(dir, "r"))
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	u.Env = append(u.Env, "CONTAINERS_STORAGE_CONF="+conf)
	mustTug(t, u, nil, "pull", "-q", busybox)
	info := mustTug(t, u, nil, "info", "--format", "{{.Store.Driver}} {{.Store.GraphRoot}}")
	if want := "vfs " + filepath.Join(dir, "g"); strings.TrimSpace(info.Stdout) != want {
		t.Fatalf("tug info = %q, want %q", info.Stdout, want)
	}
	// --storage-driver and --root still win over the file.
	over := fixture.TempDirFor(t, u)
	info = mustTug(t, u, []string{"--root", filepath.Join(over, "g"), "--runroot", filepath.Join(over, "r"), "--storage-driver", "overlay"}, "info", "--format", "{{.Store.Driver}} {{.Store.GraphRoot}}")
	if want := "overlay " + filepath.Join(over, "g"); strings.TrimSpace(info.Stdout) != want {
		t.Fatalf("with flags, tug info = %q, want %q", info.Stdout, want)
	}
}

// system df / prune / check on a real store: check finds a layer whose
// files were changed behind the store's back, --repair removes the damaged
// image and keeps the whole one.
func TestSystemCommands(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := isolated(t, u)
	mustTug(t, u, store, "pull", "-q", busybox)
	img, err := fixture.ImageWithLayers(1, 4096, 99)
	if err != nil {
		t.Fatal(err)
	}
	other := registry.Addr + "/damaged:latest"
	if _, err := fixture.Push(img, other); err != nil {
		t.Fatal(err)
	}
	mustTug(t, u, store, "pull", "-q", other)
	mustTug(t, u, store, "run", busybox, "true") // a stopped container
	df := mustTug(t, u, store, "system", "df").Stdout
	if !strings.Contains(df, "Images") || !strings.Contains(df, "Containers") {
		t.Fatalf("system df:\n%s", df)
	}
	if out := mustTug(t, u, store, "system", "check").Stdout; !strings.Contains(out, "No problems found") {
		t.Fatalf("check of a healthy store:\n%s", out)
	}
	// Change a file of the extra layer (the one only "damaged" has).
	files, _ := filepath.Glob(filepath.Join(store[1], "overlay", "*", "diff", "data", "layer-*.bin"))
	if len(files) != 1 {
		t.Fatalf("found %d extra-layer files", len(files))
	}
	if err := os.WriteFile(files[0], []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := tug(t, u, store, "system", "check")
	if res.Code != 1 || !strings.Contains(res.Stdout, "damaged layer") {
		t.Fatalf("check of a tampered layer: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	mustTug(t, u, store, "system", "check", "--repair")
	images := mustTug(t, u, store, "images", "--format", "{{.Repository}}").Stdout
	if strings.Contains(images, "damaged") || !strings.Contains(images, registry.Addr+"/busybox") {
		t.Fatalf("after --repair, images:\n%s", images)
	}
	if out := mustTug(t, u, store, "system", "check").Stdout; !strings.Contains(out, "No problems found") {
		t.Fatalf("check after repair:\n%s", out)
	}
	prune := mustTug(t, u, store, "system", "prune", "-f").Stdout
	if !strings.Contains(prune, "Deleted Containers:") || !strings.Contains(prune, "Total reclaimed space") {
		t.Fatalf("system prune:\n%s", prune)
	}
	if left := mustTug(t, u, store, "ps", "-aq").Stdout; left != "" {
		t.Fatalf("containers left after system prune: %q", left)
	}
}
