//go:build e2e

package main_test

import (
	"archive/tar"
	"crypto/rand"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tugcli/tug/fixture"
)

var archiveFormats = []string{"docker-archive", "oci-archive", "oci-dir"}

// archiveSource gives u a fresh store holding the busybox image.
func archiveSource(t *testing.T, u fixture.User) []string {
	t.Helper()
	store := isolated(t, u)
	mustTug(t, u, store, "pull", "-q", busybox)
	return store
}

// imageIdentity is what must survive a save and a load: the image id and
// the diff ids of its layers.
func imageIdentity(t *testing.T, u fixture.User, store []string, ref string) string {
	t.Helper()
	return strings.TrimSpace(mustTug(t, u, store, "inspect", "-f", "{{.Id}} {{json .RootFS.Layers}}", ref).Stdout)
}

// runsBusybox checks that a container of ref starts and sees the image's
// files with their owners.
func runsBusybox(t *testing.T, u fixture.User, store []string, ref string) {
	t.Helper()
	res := mustTug(t, u, store, "run", "--rm", ref, "sh", "-c", "stat -c %u:%g /home/user/owned && cat /home/user/owned")
	if want := "1000:1000\n" + fixture.BusyboxOwned; res.Stdout != want {
		t.Fatalf("run of the loaded image printed %q, want %q", res.Stdout, want)
	}
}

// shQuote joins args for sh -c.
func shQuote(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// The round trip, in each format: saved from one store and loaded
// into another, the image keeps its id and layers and runs.
func TestSaveLoadEachFormat(t *testing.T) {
	u := fixture.RootlessUser(t)
	src := archiveSource(t, u)
	want := imageIdentity(t, u, src, busybox)
	for _, format := range archiveFormats {
		t.Run(format, func(t *testing.T) {
			out := filepath.Join(fixture.TempDirFor(t, u), "saved")
			if res := mustTug(t, u, src, "save", "--format", format, "-o", out, busybox); res.Stdout != "" {
				t.Fatalf("save -o printed %q", res.Stdout)
			}
			dst := isolated(t, u)
			res := mustTug(t, u, dst, "load", "-i", out)
			if got := strings.TrimSpace(res.Stdout); got != "Loaded image: "+busybox {
				t.Fatalf("load printed %q, want %q", got, "Loaded image: "+busybox)
			}
			if got := imageIdentity(t, u, dst, busybox); got != want {
				t.Fatalf("loaded image is %s, saved was %s", got, want)
			}
			runsBusybox(t, u, dst, busybox)
			// Loading again stores nothing new and says the same.
			again := mustTug(t, u, dst, "load", "-q", "-i", out)
			if strings.TrimSpace(again.Stdout) != "Loaded image: "+busybox {
				t.Fatalf("second load printed %q", again.Stdout)
			}
		})
	}
}

// Through pipes: tug save | gzip | tug load, and tug save | tug load into
// the very store it saves from (the save must not hold the store's lock
// while the pipe waits for the load).
func TestSaveLoadPipes(t *testing.T) {
	u := fixture.RootlessUser(t)
	src := archiveSource(t, u)
	want := imageIdentity(t, u, src, busybox)
	dst := isolated(t, u)
	save := shQuote(append(append([]string{tugBin}, src...), "save", busybox)...)
	load := shQuote(append(append([]string{tugBin}, dst...), "load")...)
	res := fixture.MustRun(t, u, "/bin/sh", "-c", save+" | gzip | "+load)
	if strings.TrimSpace(res.Stdout) != "Loaded image: "+busybox {
		t.Fatalf("save | gzip | load printed %q", res.Stdout)
	}
	if got := imageIdentity(t, u, dst, busybox); got != want {
		t.Fatalf("loaded image is %s, saved was %s", got, want)
	}

	mustTug(t, u, src, "tag", busybox, "localhost/again:v1")
	same := shQuote(append(append([]string{tugBin}, src...), "load")...)
	res = fixture.MustRun(t, u, "timeout", "120", "/bin/sh", "-c", shQuote(append(append([]string{tugBin}, src...), "save", "localhost/again:v1")...)+" | "+same)
	if strings.TrimSpace(res.Stdout) != "Loaded image: localhost/again:v1" {
		t.Fatalf("save | load into the same store printed %q", res.Stdout)
	}
}

// Several images and several tags of one image share one archive, and
// come back with every tag; an image saved by id comes back without a
// name, as with docker.
func TestSaveLoadSeveralImages(t *testing.T) {
	u := fixture.RootlessUser(t)
	src := archiveSource(t, u)
	img, err := fixture.ImageWithLayers(2, 64<<10, 21)
	if err != nil {
		t.Fatal(err)
	}
	other := registry.Addr + "/save-other:v1"
	if _, err := fixture.Push(img, other); err != nil {
		t.Fatal(err)
	}
	otherID := strings.TrimSpace(mustTug(t, u, src, "pull", "-q", other).Stdout)
	mustTug(t, u, src, "tag", busybox, "localhost/bb:one")
	mustTug(t, u, src, "tag", busybox, "localhost/bb:two")
	third, err := fixture.ImageWithLayers(1, 16<<10, 22)
	if err != nil {
		t.Fatal(err)
	}
	thirdRef := registry.Addr + "/save-third:v1"
	if _, err := fixture.Push(third, thirdRef); err != nil {
		t.Fatal(err)
	}
	thirdID := strings.TrimSpace(mustTug(t, u, src, "pull", "-q", thirdRef).Stdout)

	for _, format := range archiveFormats {
		t.Run(format, func(t *testing.T) {
			out := filepath.Join(fixture.TempDirFor(t, u), "saved")
			mustTug(t, u, src, "save", "--format", format, "-o", out, "localhost/bb:one", other, "localhost/bb:two", thirdID[:12])
			dst := isolated(t, u)
			res := mustTug(t, u, dst, "load", "-i", out)
			wantOut := strings.Join([]string{
				"Loaded image: localhost/bb:one",
				"Loaded image: localhost/bb:two",
				"Loaded image: " + other,
				"Loaded image ID: sha256:" + thirdID,
			}, "\n")
			if got := strings.TrimSpace(res.Stdout); got != wantOut {
				t.Fatalf("load printed\n%s\nwant\n%s", got, wantOut)
			}
			images := mustTug(t, u, dst, "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
			for _, want := range []string{
				"localhost/bb:one sha256:" + bbID,
				"localhost/bb:two sha256:" + bbID,
				other + " sha256:" + otherID,
				"<none>:<none> sha256:" + thirdID,
			} {
				if !strings.Contains(images.Stdout, want+"\n") {
					t.Errorf("images after load lacks %q:\n%s", want, images.Stdout)
				}
			}
			if n := len(strings.Split(strings.TrimSpace(images.Stdout), "\n")); n != 4 {
				t.Errorf("images lists %d rows, want 4:\n%s", n, images.Stdout)
			}
			if got, want := imageIdentity(t, u, dst, other), imageIdentity(t, u, src, other); got != want {
				t.Errorf("%s loaded as %s, saved as %s", other, got, want)
			}
			runsBusybox(t, u, dst, "localhost/bb:two")
		})
	}
}

// podmanStore runs podman as u on a store of its own under dir.
func podmanStore(t *testing.T, u fixture.User, dir string) func(args ...string) fixture.Result {
	return func(args ...string) fixture.Result {
		t.Helper()
		return fixture.MustRun(t, u, "podman", append([]string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"), "--storage-driver", "overlay"}, args...)...)
	}
}

func requirePodman(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("podman is not installed; .ci/run installs it")
		}
		t.Skip("podman is not installed")
	}
}

// Podman's archives load in tug, in each format: podman save converts a
// Docker image's config to OCI's when it writes an OCI layout, so there
// only the layers must match; its docker-archive keeps the image id.
func TestLoadPodmanArchives(t *testing.T) {
	requirePodman(t)
	u := fixture.RootlessUser(t)
	dir := fixture.TempDirFor(t, u)
	podman := podmanStore(t, u, filepath.Join(dir, "podman"))
	podman("pull", "-q", "--tls-verify=false", busybox)
	src := archiveSource(t, u)
	wantLayers := strings.Fields(imageIdentity(t, u, src, busybox))[1]
	for _, format := range archiveFormats {
		t.Run(format, func(t *testing.T) {
			out := filepath.Join(dir, format)
			podman("save", "-q", "--format", format, "-o", out, busybox)
			dst := isolated(t, u)
			res := mustTug(t, u, dst, "load", "-i", out)
			if got := strings.TrimSpace(res.Stdout); got != "Loaded image: "+busybox {
				t.Fatalf("load of podman's %s printed %q", format, got)
			}
			id := strings.Fields(imageIdentity(t, u, dst, busybox))
			if id[1] != wantLayers {
				t.Fatalf("podman's %s loads with layers %s, want %s", format, id[1], wantLayers)
			}
			if format == "docker-archive" && id[0] != "sha256:"+bbID {
				t.Fatalf("podman's docker-archive loads as %s, want sha256:%s", id[0], bbID)
			}
			runsBusybox(t, u, dst, busybox)
		})
	}
	// Several images in one docker-archive (podman save -m).
	other := registry.Addr + "/podman-multi:v1"
	img, err := fixture.ImageWithLayers(1, 32<<10, 23)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fixture.Push(img, other); err != nil {
		t.Fatal(err)
	}
	podman("pull", "-q", "--tls-verify=false", other)
	multi := filepath.Join(dir, "multi.tar")
	podman("save", "-q", "-m", "-o", multi, busybox, other)
	dst := isolated(t, u)
	res := mustTug(t, u, dst, "load", "-i", multi)
	for _, want := range []string{"Loaded image: " + busybox, "Loaded image: " + other} {
		if !strings.Contains(res.Stdout, want+"\n") {
			t.Errorf("load of podman save -m lacks %q:\n%s", want, res.Stdout)
		}
	}
}

// tug's archives load in Podman: the docker-archive with several images
// and tags, the OCI ones with the image id kept (tug writes the config as
// it is stored); Podman runs what it loaded.
func TestSavePodmanLoads(t *testing.T) {
	requirePodman(t)
	u := fixture.RootlessUser(t)
	src := archiveSource(t, u)
	mustTug(t, u, src, "tag", busybox, "localhost/bb:one")
	mustTug(t, u, src, "tag", busybox, "localhost/bb:two")
	img, err := fixture.ImageWithLayers(1, 32<<10, 24)
	if err != nil {
		t.Fatal(err)
	}
	other := registry.Addr + "/for-podman:v1"
	if _, err := fixture.Push(img, other); err != nil {
		t.Fatal(err)
	}
	otherID := strings.TrimSpace(mustTug(t, u, src, "pull", "-q", other).Stdout)
	wantLayers := strings.Fields(imageIdentity(t, u, src, busybox))[1]

	dir := fixture.TempDirFor(t, u)
	archive := filepath.Join(dir, "multi.tar")
	mustTug(t, u, src, "save", "-o", archive, "localhost/bb:one", "localhost/bb:two", other)
	podman := podmanStore(t, u, filepath.Join(dir, "p-docker"))
	podman("load", "-q", "-i", archive)
	images := podman("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").Stdout
	for _, want := range []string{"localhost/bb:one sha256:" + bbID, "localhost/bb:two sha256:" + bbID, other + " sha256:" + otherID} {
		if !strings.Contains(images, want) {
			t.Errorf("podman images after loading tug's archive lacks %q:\n%s", want, images)
		}
	}
	var inspected []struct{ RootFS struct{ Layers []string } }
	if err := json.Unmarshal([]byte(podman("image", "inspect", "localhost/bb:one").Stdout), &inspected); err != nil || len(inspected) != 1 {
		t.Fatalf("podman image inspect: %v", err)
	}
	if got, _ := json.Marshal(inspected[0].RootFS.Layers); string(got) != wantLayers {
		t.Fatalf("podman loaded layers %s, want %s", got, wantLayers)
	}
	run := podman("--runtime", "runc", "run", "--rm", "--network", "none", "localhost/bb:two", "stat", "-c", "%u:%g", "/home/user/owned")
	if strings.TrimSpace(run.Stdout) != "1000:1000" {
		t.Fatalf("podman run of tug's archive: /home/user/owned is %q, want 1000:1000", run.Stdout)
	}

	for _, format := range []string{"oci-archive", "oci-dir"} {
		t.Run(format, func(t *testing.T) {
			out := filepath.Join(dir, format)
			mustTug(t, u, src, "save", "--format", format, "-o", out, "localhost/bb:one")
			p := podmanStore(t, u, filepath.Join(dir, "p-"+format))
			p("load", "-q", "-i", out)
			id := strings.TrimSpace(p("images", "-q", "--no-trunc").Stdout)
			if id != "sha256:"+bbID {
				t.Fatalf("podman loaded tug's %s as %q, want sha256:%s", format, id, bbID)
			}
		})
	}
}

// flipInEntry flips one byte in the middle of the tar entry of archive
// whose name ends in suffix.
func flipInEntry(t *testing.T, archive, suffix string) {
	t.Helper()
	f, err := os.OpenFile(archive, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("no entry *%s in %s: %v", suffix, archive, err)
		}
		if hdr.Typeflag != tar.TypeReg || !strings.HasSuffix(hdr.Name, suffix) {
			continue
		}
		// tar.Reader reads no further than the header: the file offset is
		// where the entry's data starts.
		off, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, off+hdr.Size/2); err != nil {
			t.Fatal(err)
		}
		b[0] ^= 0xff
		if _, err := f.WriteAt(b, off+hdr.Size/2); err != nil {
			t.Fatal(err)
		}
		return
	}
}

// A corrupt or foreign archive: exit 1, one error line that says what is
// wrong, and no image. The flipped layer belongs to the second image of
// the archive, so the first one is whole: it must not be loaded either.
func TestLoadRefusesCorruptArchives(t *testing.T) {
	u := fixture.RootlessUser(t)
	src := archiveSource(t, u)
	img, err := fixture.ImageWithLayers(1, 256<<10, 25)
	if err != nil {
		t.Fatal(err)
	}
	other := registry.Addr + "/save-corrupt:v1"
	if _, err := fixture.Push(img, other); err != nil {
		t.Fatal(err)
	}
	mustTug(t, u, src, "pull", "-q", other)
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	last := cfg.RootFS.DiffIDs[len(cfg.RootFS.DiffIDs)-1].Hex

	dir := fixture.TempDirFor(t, u)
	file := func(name string) string { return filepath.Join(dir, name) }
	mustTug(t, u, src, "save", "-o", file("good.tar"), busybox, other)
	mustTug(t, u, src, "save", "--format", "oci-archive", "-o", file("good-oci.tar"), busybox, other)
	good, err := os.ReadFile(file("good.tar"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(file(name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("truncated.tar", good[:len(good)/2])
	write("flipped.tar", good)
	flipInEntry(t, file("flipped.tar"), last+".tar")
	goodOCI, _ := os.ReadFile(file("good-oci.tar"))
	write("flipped-oci.tar", goodOCI)
	flipInEntry(t, file("flipped-oci.tar"), "blobs/sha256/"+last)
	random := make([]byte, 1<<20)
	rand.Read(random)
	write("random.bin", random)
	os.MkdirAll(file("notlayout"), 0o755)
	write("notlayout/index.json", []byte("{}"))
	for _, p := range []string{dir, file("notlayout")} {
		os.Chown(p, int(u.UID), int(u.GID))
	}

	dst := isolated(t, u)
	for _, tc := range []struct{ input, want string }{
		{"truncated.tar", "truncated.tar is truncated"},
		{"flipped.tar", "does not match its digest sha256:" + last},
		{"flipped-oci.tar", "does not match its digest sha256:" + last},
		{"random.bin", "random.bin is not an image archive"},
		{"notlayout", "is not an image archive"},
	} {
		t.Run(tc.input, func(t *testing.T) {
			res := tug(t, u, dst, "load", "-i", file(tc.input))
			if res.Code != 1 {
				t.Fatalf("load of %s: exit %d, want 1\n%s", tc.input, res.Code, res.Stderr)
			}
			if !strings.Contains(res.Stderr, tc.want) {
				t.Errorf("error lacks %q:\n%s", tc.want, res.Stderr)
			}
			if n := strings.Count(res.Stderr, "Error: "); n != 1 || strings.HasSuffix(strings.TrimSpace(res.Stderr), "EOF") {
				t.Errorf("want one Error: line that says more than EOF:\n%s", res.Stderr)
			}
			if res.Stdout != "" {
				t.Errorf("a failed load printed %q", res.Stdout)
			}
		})
	}
	// The same through standard input.
	res := fixture.Run(t, u, "/bin/sh", "-c", shQuote(append(append([]string{tugBin}, dst...), "load")...)+" < "+shQuote(file("flipped.tar")))
	if res.Code != 1 || !strings.Contains(res.Stderr, "does not match its digest") {
		t.Errorf("load of a corrupt archive on stdin: exit %d\n%s", res.Code, res.Stderr)
	}
	if images := mustTug(t, u, dst, "images", "-q"); images.Stdout != "" {
		t.Fatalf("failed loads left images: %q", images.Stdout)
	}
	// The good archive still loads after all that.
	mustTug(t, u, dst, "load", "-q", "-i", file("good.tar"))
}

// save writes no archive to a terminal, as docker; it says what to do.
// Errors leave no file behind.
func TestSaveRefusals(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script (bsdutils) is not installed")
	}
	u := fixture.RootlessUser(t)
	src := archiveSource(t, u)
	cmdline := shQuote(append(append([]string{tugBin}, src...), "save", busybox)...)
	res := fixture.Run(t, u, "script", "-qec", cmdline, "/dev/null")
	if res.Code == 0 || !strings.Contains(res.Stdout, "cowardly refusing to save to a terminal. Use the -o flag or redirect") {
		t.Fatalf("save to a terminal: exit %d\n%q", res.Code, res.Stdout)
	}
	if len(res.Stdout) > 200 {
		t.Fatalf("save wrote %d bytes to the terminal", len(res.Stdout))
	}
	dir := fixture.TempDirFor(t, u)
	out := filepath.Join(dir, "out.tar")
	ok := fixture.MustRun(t, u, "script", "-qec", shQuote(append(append([]string{tugBin}, src...), "save", "-o", out, busybox)...), "/dev/null")
	if ok.Stdout != "" {
		t.Fatalf("save -o on a terminal printed %q", ok.Stdout)
	}

	missing := filepath.Join(dir, "missing.tar")
	if res := tug(t, u, src, "save", "-o", missing, busybox, "nosuchimage"); res.Code != 1 || !strings.Contains(res.Stderr, "nosuchimage") {
		t.Fatalf("save of a missing image: exit %d\n%s", res.Code, res.Stderr)
	}
	if res := tug(t, u, src, "save", "--format", "oci-dir", busybox); res.Code == 0 || !strings.Contains(res.Stderr, "-o DIR") {
		t.Fatalf("oci-dir to stdout: exit %d\n%s", res.Code, res.Stderr)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	hidden, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) != 1 || len(hidden) != 0 {
		t.Fatalf("failed saves left files: %v %v", left, hidden)
	}
}
