//go:build e2e

package main_test

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/tugcli/tug/fixture"
)

// pushSource pushes img to the shared registry under repo with the
// fixture's own client, pulls it with tug into a fresh store of u, and
// returns the store and the reference.
func pushSource(t *testing.T, u fixture.User, img v1.Image, repo string) ([]string, string) {
	t.Helper()
	ref := registry.Ref(repo)
	if _, err := fixture.Push(img, ref); err != nil {
		t.Fatal(err)
	}
	store := isolated(t, u)
	mustTug(t, u, store, "pull", "-q", ref)
	return store, ref
}

// identity is what must survive a push and a pull: the image id (the
// config digest) and the layers' diff ids.
func identity(t *testing.T, u fixture.User, store []string, ref string) string {
	t.Helper()
	return strings.TrimSpace(mustTug(t, u, store, "inspect", "-f", "{{.Id}} {{json .RootFS.Layers}}", ref).Stdout)
}

// manifestOf fetches a manifest from the shared registry as it is stored.
func manifestOf(t *testing.T, ref string) (*remote.Descriptor, *v1.Manifest) {
	t.Helper()
	desc, err := remote.Get(mustRef(t, ref))
	if err != nil {
		t.Fatalf("fetching the manifest of %s: %v", ref, err)
	}
	m, err := v1.ParseManifest(strings.NewReader(string(desc.Manifest)))
	if err != nil {
		t.Fatal(err)
	}
	return desc, m
}

func mustRef(t *testing.T, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// logSince returns what the registry logged after mark (a length of Log()).
func logSince(r *fixture.Registry, mark int) string {
	return r.Log()[mark:]
}

// blobWrites returns the log lines that send blob bytes or start an
// upload without a mount.
func blobWrites(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "/blobs/uploads/") && (strings.Contains(l, `"PATCH `) || strings.Contains(l, `"PUT `) ||
			(strings.Contains(l, `"POST `) && !strings.Contains(l, "mount="))) {
			out = append(out, l)
		}
	}
	return out
}

// A pushed image pulled back by its digest into another store is the same
// image: same config digest, same diff ids; in every format and
// compression tug writes.
func TestPushRoundTrip(t *testing.T) {
	u := fixture.RootlessUser(t)
	img, err := fixture.ImageWithLayers(3, 1<<20, 21)
	if err != nil {
		t.Fatal(err)
	}
	store, src := pushSource(t, u, img, "push-src/app:v1")
	want := identity(t, u, store, src)
	cfg, _ := img.ConfigName()
	layers := layerCount(t, img)
	// Another registry: nothing can be mounted from where the image came.
	dst := fixture.NewRegistry(t)

	for _, tc := range []struct {
		name      string
		flags     []string
		manifest  types.MediaType
		layerType types.MediaType
	}{
		{"default keeps OCI", nil, types.OCIManifestSchema1, types.OCILayer},
		{"docker", []string{"--format", "docker"}, types.DockerManifestSchema2, types.DockerLayer},
		{"zstd", []string{"--compression", "zstd"}, types.OCIManifestSchema1, types.OCILayerZStd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := dst.Ref("push-roundtrip/" + strings.ToLower(strings.ReplaceAll(tc.name, " ", "-")) + ":v1")
			digestFile := filepath.Join(fixture.TempDirFor(t, u), "digest")
			args := append(append([]string{"push", "--digestfile", digestFile}, tc.flags...), src, dest)
			res := mustTug(t, u, store, args...)
			digest := lastLine(res.Stdout)
			if !strings.HasPrefix(digest, "sha256:") || len(digest) != 71 {
				t.Fatalf("last line of push output = %q, want a manifest digest\n%s", digest, res.Stderr)
			}
			if b, err := os.ReadFile(digestFile); err != nil || string(b) != digest {
				t.Fatalf("--digestfile holds %q (%v), want %s", b, err, digest)
			}
			// Pushed, or mounted from an earlier subtest's repository.
			if n := strings.Count(res.Stderr, ": Pushed") + strings.Count(res.Stderr, ": Mounted from push-roundtrip/"); n != layers {
				t.Errorf("push printed %d Pushed or Mounted lines, want one per layer (%d):\n%s", n, layers, res.Stderr)
			}
			if !strings.Contains(res.Stderr, "v1: digest: "+digest+" size: ") {
				t.Errorf("push output lacks Docker's digest line:\n%s", res.Stderr)
			}
			desc, m := manifestOf(t, dest)
			if desc.Digest.String() != digest || desc.MediaType != tc.manifest {
				t.Fatalf("registry has %s %s, want %s %s", desc.MediaType, desc.Digest, tc.manifest, digest)
			}
			if m.Config.Digest != cfg {
				t.Fatalf("pushed config %s, want the image's %s", m.Config.Digest, cfg)
			}
			for _, l := range m.Layers {
				if l.MediaType != tc.layerType {
					t.Fatalf("layer %s has media type %s, want %s", l.Digest, l.MediaType, tc.layerType)
				}
			}

			other := isolated(t, u)
			byDigest := strings.TrimSuffix(dest, ":v1") + "@" + digest
			mustTug(t, u, other, "pull", "-q", byDigest)
			if got := identity(t, u, other, byDigest); got != want {
				t.Fatalf("pulled back: %s\nwant:        %s", got, want)
			}
		})
	}
}

// Pushing again sends no blob: the registry is asked, each layer is
// reported as already there, and no layer is compressed again.
func TestPushAgainSkipsBlobs(t *testing.T) {
	u := fixture.RootlessUser(t)
	img, err := fixture.ImageWithLayers(2, 1<<20, 22)
	if err != nil {
		t.Fatal(err)
	}
	store, src := pushSource(t, u, img, "push-again-src/app:v1")
	dst := fixture.NewRegistry(t)
	dest := dst.Ref("push-again/app:v1")
	first := mustTug(t, u, store, "push", src, dest)

	cached := cacheInodes(t, store)
	if len(cached) != layerCount(t, img) {
		t.Fatalf("push cache holds %d blobs, want one per layer: %v", len(cached), cached)
	}
	mark := len(dst.Log())
	again := mustTug(t, u, store, "push", src, dest)
	if lastLine(again.Stdout) != lastLine(first.Stdout) {
		t.Fatalf("second push gave digest %s, first %s", lastLine(again.Stdout), lastLine(first.Stdout))
	}
	if n, want := strings.Count(again.Stderr, ": Layer already exists"), layerCount(t, img); n != want {
		t.Errorf("second push printed %d 'Layer already exists', want %d:\n%s", n, want, again.Stderr)
	}
	if strings.Contains(again.Stderr, ": Pushed") {
		t.Errorf("second push uploaded:\n%s", again.Stderr)
	}
	// A compression would have replaced the cached file.
	if after := cacheInodes(t, store); !maps.Equal(after, cached) {
		t.Errorf("second push compressed again: cache %v, was %v", after, cached)
	}
	if w := blobWrites(logSince(dst, mark)); len(w) != 0 {
		t.Fatalf("second push wrote blobs:\n%s", strings.Join(w, "\n"))
	}
	// -q prints the digest alone.
	q := mustTug(t, u, store, "push", "-q", src, dest)
	if strings.TrimSpace(q.Stdout) != lastLine(first.Stdout) || q.Stderr != "" {
		t.Fatalf("push -q printed stdout %q stderr %q", q.Stdout, q.Stderr)
	}
}

// A layer pushed to one repository is mounted, not uploaded, when the same
// image goes to another repository of the same registry.
func TestPushMountsAcrossRepositories(t *testing.T) {
	u := fixture.RootlessUser(t)
	img, err := fixture.ImageWithLayers(2, 1<<20, 23)
	if err != nil {
		t.Fatal(err)
	}
	store, src := pushSource(t, u, img, "push-mount-src/app:v1")
	dst := fixture.NewRegistry(t)
	a := dst.Ref("push-mount/a:v1")
	b := dst.Ref("push-mount/b:v1")
	mustTug(t, u, store, "tag", src, a)
	mustTug(t, u, store, "push", a) // DEST defaults to the name
	mustTug(t, u, store, "tag", a, b)

	mark := len(dst.Log())
	res := mustTug(t, u, store, "push", b)
	log := logSince(dst, mark)
	layers := layerCount(t, img)
	if n := strings.Count(res.Stderr, ": Mounted from push-mount/a"); n != layers {
		t.Errorf("push to b printed %d 'Mounted from push-mount/a', want %d:\n%s", n, layers, res.Stderr)
	}
	// Every layer and the config.
	mounts := regexp.MustCompile(`"POST /v2/push-mount/b/blobs/uploads/\?[^"]*mount=sha256[^"]*" 201`).FindAllString(log, -1)
	if len(mounts) != layers+1 {
		t.Errorf("registry log shows %d mounts into push-mount/b, want %d:\n%s", len(mounts), layers+1, log)
	}
	if w := blobWrites(log); len(w) != 0 {
		t.Fatalf("push to b uploaded blobs:\n%s", strings.Join(w, "\n"))
	}
	other := isolated(t, u)
	mustTug(t, u, other, "pull", "-q", b)
	if got, want := identity(t, u, other, b), identity(t, u, store, a); got != want {
		t.Fatalf("pulled from b: %s, want %s", got, want)
	}
}

// A pulled image pushed to another repository of the registry it came
// from is not compressed again: its blobs are mounted as they are, and the
// manifest is the one it was pulled with.
func TestPushPulledImageMountsFromItsSource(t *testing.T) {
	u := fixture.RootlessUser(t)
	img, err := fixture.ImageWithLayers(2, 1<<20, 25)
	if err != nil {
		t.Fatal(err)
	}
	store, src := pushSource(t, u, img, "push-reuse-src/app:v1")
	srcDigest, _ := img.Digest()
	mark := len(registry.Log())
	res := mustTug(t, u, store, "push", src, registry.Ref("push-reuse/app:v1"))
	log := logSince(registry, mark)
	if got := lastLine(res.Stdout); got != srcDigest.String() {
		t.Fatalf("pushed digest %s, want the pulled manifest's %s", got, srcDigest)
	}
	if n, want := strings.Count(res.Stderr, ": Mounted from push-reuse-src/app"), layerCount(t, img); n != want {
		t.Errorf("%d layers mounted, want %d:\n%s", n, want, res.Stderr)
	}
	if w := blobWrites(log); len(w) != 0 {
		t.Fatalf("the push uploaded blobs:\n%s", strings.Join(w, "\n"))
	}
	if c := cacheInodes(t, store); len(c) != 0 {
		t.Fatalf("layers were compressed: %v", c)
	}
}

func TestPushBadInput(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := isolated(t, u)
	res := tug(t, u, store, "push", "nosuch/image:v9", registry.Ref("x/y:z"))
	if res.Code != 1 || !strings.Contains(res.Stderr, "nosuch/image:v9") || !strings.Contains(res.Stderr, "no such image") {
		t.Fatalf("push of a missing image: exit %d\n%s", res.Code, res.Stderr)
	}
	if n := strings.Count(res.Stderr, "Error: "); n != 1 {
		t.Errorf("want one Error: line, got %d:\n%s", n, res.Stderr)
	}
	mustTug(t, u, store, "pull", "-q", busybox)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"id without destination", []string{"push", bbID[:12]}, 1, "needs a destination"},
		{"digest destination", []string{"push", busybox, registry.Ref("x/y@sha256:" + strings.Repeat("a", 64))}, 1, "digest reference"},
		{"docker format with zstd", []string{"push", "--format", "docker", "--compression", "zstd", busybox}, 1, "zstd"},
		{"unknown format", []string{"push", "--format", "v2s1", busybox}, 125, "format"},
		{"registry down", []string{"push", busybox, "127.0.0.1:1/x:y"}, 1, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tug(t, u, store, tc.args...)
			if res.Code != tc.code || !strings.Contains(res.Stderr, tc.want) {
				t.Fatalf("exit %d (want %d), stderr lacks %q?\n%s", res.Code, tc.code, tc.want, res.Stderr)
			}
		})
	}
}

// A push killed with SIGKILL at any moment leaves no tag behind, and the
// next push completes without sending again the blobs that made it.
func TestPushSurvivesSIGKILL(t *testing.T) {
	u := fixture.RootlessUser(t)
	img, err := fixture.ImageWithLayers(6, 4<<20, 24)
	if err != nil {
		t.Fatal(err)
	}
	store, src := pushSource(t, u, img, "push-kill-src/app:v1")
	dst := fixture.NewRegistry(t)
	dest := dst.Ref("push-kill/app:v1")
	for i, delay := range []time.Duration{30, 60, 90, 150, 400} {
		cmd := u.Command(t.Context(), tugBin, append(append([]string{}, store...), "push", "-q", src, dest)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		n := len(committedBlobs(dst.Log()))
		t.Logf("kill %d after %v: %d of %d blobs committed so far", i, delay*time.Millisecond, n, layerCount(t, img)+1)
		if n < layerCount(t, img)+1 {
			if _, err := remote.Head(mustRef(t, dest)); err == nil {
				t.Fatalf("kill %d: the tag exists before all blobs were uploaded", i)
			}
		}
	}
	t.Logf("%d blobs were committed before the last push", len(committedBlobs(dst.Log())))
	res := mustTug(t, u, store, "push", src, dest)
	digest := lastLine(res.Stdout)
	log := dst.Log()
	// Each blob was committed (PUT ...?digest=X answered 201) at most once.
	for d, n := range committedBlobs(log) {
		if n > 1 {
			t.Errorf("blob %s was uploaded %d times", d, n)
		}
	}
	desc, _ := manifestOf(t, dest)
	if desc.Digest.String() != digest {
		t.Fatalf("registry has %s for the tag, push printed %s", desc.Digest, digest)
	}
	other := isolated(t, u)
	mustTug(t, u, other, "pull", "-q", dest)
	if got, want := identity(t, u, other, dest), identity(t, u, store, src); got != want {
		t.Fatalf("pulled back: %s, want %s", got, want)
	}
	if left, _ := filepath.Glob(filepath.Join(store[1], "tug-tmp", "*")); len(left) != 0 {
		t.Fatalf("scratch files left after a clean push: %v", left)
	}
}

// cacheInodes maps the push cache's blob files to their inode numbers.
func cacheInodes(t *testing.T, store []string) map[string]uint64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(store[1], "tug-push-cache", "*.blob"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = fi.Sys().(*syscall.Stat_t).Ino
	}
	return out
}

// committedBlobs counts, per digest, the uploads the registry completed.
func committedBlobs(log string) map[string]int {
	re := regexp.MustCompile(`"PUT /v2/[^ ]*/blobs/uploads/[^ ]*digest=sha256%3A([0-9a-f]{64})[^"]*" 201`)
	out := map[string]int{}
	for _, m := range re.FindAllStringSubmatch(log, -1) {
		out[m[1]]++
	}
	return out
}

// tug login checks the password with the registry, writes it to Docker's
// config.json with mode 0600 and never prints it; push and pull then work
// with it, and tug logout takes it away.
func TestLoginPushPullLogout(t *testing.T) {
	u := fixture.RootlessUser(t)
	const user, password = "tug-e2e-login", "s3cret: with spaces"
	reg := fixture.NewRegistryWithAuth(t, user, password)
	dockerDir := filepath.Join(u.Home, ".docker")
	dockerConfig := filepath.Join(dockerDir, "config.json")
	moveAside(t, dockerConfig)
	if _, err := os.Stat(dockerDir); err != nil {
		t.Cleanup(func() { os.RemoveAll(dockerDir) }) // tug login makes it
	}

	store := isolated(t, u)
	mustTug(t, u, store, "pull", "-q", busybox)
	dest := reg.Ref("private/app:v1")
	denied := tug(t, u, store, "push", busybox, dest)
	if denied.Code != 1 || !strings.Contains(denied.Stderr, "tug login "+reg.Addr) {
		t.Fatalf("push without credentials: exit %d\n%s", denied.Code, denied.Stderr)
	}

	login := func(pass string, args ...string) fixture.Result {
		t.Helper()
		cmd := u.Command(t.Context(), tugBin, append([]string{"login"}, args...)...)
		cmd.Stdin = strings.NewReader(pass + "\n")
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); cmd.ProcessState == nil {
			t.Fatal(err)
		}
		res := fixture.Result{Stdout: out.String(), Stderr: errOut.String(), Code: cmd.ProcessState.ExitCode()}
		for _, s := range []string{res.Stdout, res.Stderr} {
			if strings.Contains(s, pass) || strings.Contains(s, base64.StdEncoding.EncodeToString([]byte(user+":"+pass))) {
				t.Fatalf("tug login printed the password:\n%s\n%s", res.Stdout, res.Stderr)
			}
		}
		return res
	}

	bad := login("not the password", "-u", user, "--password-stdin", reg.Addr)
	if bad.Code != 1 || !strings.Contains(bad.Stderr, "unauthorized") {
		t.Fatalf("login with a wrong password: exit %d\n%s", bad.Code, bad.Stderr)
	}
	if _, err := os.Stat(dockerConfig); err == nil {
		t.Fatalf("a failed login wrote %s", dockerConfig)
	}

	ok := login(password, "-u", user, "--password-stdin", reg.Addr)
	if ok.Code != 0 || strings.TrimSpace(ok.Stdout) != "Login Succeeded" {
		t.Fatalf("login: exit %d\n%s\n%s", ok.Code, ok.Stdout, ok.Stderr)
	}
	fi, err := os.Stat(dockerConfig)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o600 || st.Uid != u.UID {
		t.Fatalf("%s has mode %v owner %d, want 0600 owned by %d", dockerConfig, fi.Mode().Perm(), st.Uid, u.UID)
	}
	var cf struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	b, _ := os.ReadFile(dockerConfig)
	if err := json.Unmarshal(b, &cf); err != nil {
		t.Fatal(err)
	}
	if got, _ := base64.StdEncoding.DecodeString(cf.Auths[reg.Addr].Auth); string(got) != user+":"+password {
		t.Fatalf("config.json holds %q for %s", got, reg.Addr)
	}

	pushed := mustTug(t, u, store, "push", busybox, dest)
	digest := lastLine(pushed.Stdout)
	other := isolated(t, u)
	pulled := mustTug(t, u, other, "pull", "-q", strings.TrimSuffix(dest, ":v1")+"@"+digest)
	if strings.TrimSpace(pulled.Stdout) != bbID {
		t.Fatalf("pulled %q, want %s", pulled.Stdout, bbID)
	}

	// -p works too, with Docker's warning.
	withP := login(password, "-u", user, "-p", password, reg.Addr)
	if withP.Code != 0 || !strings.Contains(withP.Stderr, "--password-stdin") {
		t.Fatalf("login -p: exit %d\n%s", withP.Code, withP.Stderr)
	}
	if fi, err := os.Stat(dockerConfig); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("after a second login %s is %v (%v)", dockerConfig, fi.Mode(), err)
	}

	out := mustTug(t, u, nil, "logout", reg.Addr)
	if strings.TrimSpace(out.Stdout) != "Removing login credentials for "+reg.Addr {
		t.Fatalf("logout printed %q", out.Stdout)
	}
	b, _ = os.ReadFile(dockerConfig)
	if strings.Contains(string(b), reg.Addr) {
		t.Fatalf("config.json still names %s after logout:\n%s", reg.Addr, b)
	}
	if res := tug(t, u, isolated(t, u), "pull", dest); res.Code == 0 || !strings.Contains(res.Stderr, "tug login "+reg.Addr) {
		t.Fatalf("pull after logout: exit %d\n%s", res.Code, res.Stderr)
	}
}

// Credentials come first from $REGISTRY_AUTH_FILE, then Docker's config,
// then Podman's auth.json, as Podman reads them; a file without an entry
// for the registry does not hide the next one.
func TestLoginCredentialsOrder(t *testing.T) {
	u := fixture.RootlessUser(t)
	const user, password = "tug-e2e-order", "right"
	reg := fixture.NewRegistryWithAuth(t, user, password)
	img, err := fixture.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Ref("order/busybox:latest")
	if _, err := fixture.PushWithAuth(img, ref, user, password); err != nil {
		t.Fatal(err)
	}
	dockerDir := filepath.Join(u.Home, ".docker")
	dockerConfig := filepath.Join(dockerDir, "config.json")
	moveAside(t, dockerConfig)
	mkdirFor(t, u, dockerDir)
	dir := fixture.TempDirFor(t, u)
	authFileWith := func(name string, entries map[string]string) string {
		auths := map[string]any{}
		for addr, pass := range entries {
			auths[addr] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}
		}
		b, _ := json.Marshal(map[string]any{"auths": auths})
		p := filepath.Join(dir, name)
		writeFileFor(t, u, p, b)
		return p
	}
	runtimeDir := filepath.Join(dir, "xdg-runtime")
	mkdirFor(t, u, runtimeDir)
	mkdirFor(t, u, filepath.Join(runtimeDir, "containers"))

	writeFileFor(t, u, dockerConfig, authFile(t, reg.Addr, user, "wrong"))
	podman := filepath.Join(runtimeDir, "containers", "auth.json")
	writeFileFor(t, u, podman, authFile(t, reg.Addr, user, password))
	for _, tc := range []struct {
		name   string
		env    []string
		wantOK bool
	}{
		{"REGISTRY_AUTH_FILE wins over Docker's config", []string{"REGISTRY_AUTH_FILE=" + authFileWith("good.json", map[string]string{reg.Addr: password})}, true},
		{"a REGISTRY_AUTH_FILE without the registry falls through to Docker's", []string{"REGISTRY_AUTH_FILE=" + authFileWith("other.json", map[string]string{"127.0.0.1:1": "x"})}, false},
		{"Docker's config wins over Podman's auth.json", []string{"XDG_RUNTIME_DIR=" + runtimeDir}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uu := u
			uu.Env = append(slices.Clip(u.Env), tc.env...)
			res := tug(t, uu, isolated(t, uu), "pull", "-q", ref)
			if (res.Code == 0) != tc.wantOK {
				t.Fatalf("pull: exit %d, want success %v\n%s", res.Code, tc.wantOK, res.Stderr)
			}
		})
	}
	// With Docker's config gone, Podman's auth.json is read.
	os.Remove(dockerConfig)
	uu := u
	uu.Env = append(slices.Clip(u.Env), "XDG_RUNTIME_DIR="+runtimeDir)
	mustTug(t, uu, isolated(t, uu), "pull", "-q", ref)
}

func layerCount(t *testing.T, img v1.Image) int {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return len(ls)
}
