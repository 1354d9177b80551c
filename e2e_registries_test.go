//go:build e2e

package main_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/tugcli/tug/fixture"
)

// withRegistriesConf returns u with CONTAINERS_REGISTRIES_CONF naming a
// file that holds conf.
func withRegistriesConf(t *testing.T, u fixture.User, conf string) fixture.User {
	t.Helper()
	p := filepath.Join(fixture.TempDirFor(t, u), "registries.conf")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	u.Env = append(slices.Clip(u.Env), "CONTAINERS_REGISTRIES_CONF="+p)
	return u
}

// down is a loopback address where nothing listens.
const down = "127.0.0.1:1"

// A mirror that has the image serves it while the registry itself is down,
// and the image is stored under the name that was pulled; a mirror that is
// down is passed over for the registry.
func TestRegistriesMirror(t *testing.T) {
	u := fixture.RootlessUser(t)
	mirror := fixture.NewRegistry(t)
	img, err := fixture.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	digest, err := fixture.Push(img, mirror.Ref("team/app:1"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("registry down, mirror up", func(t *testing.T) {
		u := withRegistriesConf(t, u, `
[[registry]]
location = "`+down+`"
[[registry.mirror]]
location = "`+mirror.Addr+`"
`)
		store := isolated(t, u)
		res := mustTug(t, u, store, "pull", down+"/team/app:1")
		if lastLine(res.Stdout) != bbID {
			t.Fatalf("pull through the mirror printed %q, want %s\n%s", res.Stdout, bbID, res.Stderr)
		}
		if !strings.Contains(res.Stderr, "Downloaded newer image for "+down+"/team/app:1") {
			t.Errorf("pull output:\n%s", res.Stderr)
		}
		names := mustTug(t, u, store, "images", "--format", "{{.Repository}}:{{.Tag}}")
		if got := strings.TrimSpace(names.Stdout); got != down+"/team/app:1" {
			t.Fatalf("stored as %q, want the name pulled, %s/team/app:1", got, down)
		}
		// By digest too, and the blobs came from the mirror.
		res = mustTug(t, u, isolated(t, u), "pull", "-q", down+"/team/app@"+digest)
		if strings.TrimSpace(res.Stdout) != bbID {
			t.Fatalf("pull by digest through the mirror printed %q", res.Stdout)
		}
		if !strings.Contains(mirror.Log(), "/v2/team/app/blobs/sha256:") {
			t.Fatalf("the mirror served no blob:\n%s", mirror.Log())
		}
	})

	t.Run("mirror down, registry up", func(t *testing.T) {
		u := withRegistriesConf(t, u, `
[[registry]]
prefix = "`+registry.Addr+`/busybox"
location = "`+registry.Addr+`/busybox"
[[registry.mirror]]
location = "`+down+`/busybox"
`)
		res := mustTug(t, u, isolated(t, u), "pull", "-q", busybox)
		if strings.TrimSpace(res.Stdout) != bbID {
			t.Fatalf("pull with a dead mirror printed %q, %s", res.Stdout, res.Stderr)
		}
	})

	t.Run("everything down", func(t *testing.T) {
		u := withRegistriesConf(t, u, `
[[registry]]
location = "`+down+`"
[[registry.mirror]]
location = "127.0.0.1:2"
`)
		res := tug(t, u, isolated(t, u), "pull", down+"/team/app:1")
		if res.Code == 0 {
			t.Fatal("pull succeeded with the mirror and the registry down")
		}
		for _, want := range []string{"mirror 127.0.0.1:2", down, "connection refused"} {
			if !strings.Contains(res.Stderr, want) {
				t.Errorf("error lacks %q:\n%s", want, res.Stderr)
			}
		}
	})
}

func TestRegistriesAliasAndBlocked(t *testing.T) {
	u := fixture.RootlessUser(t)
	conf := `
[aliases]
"tug-e2e-alias" = "` + registry.Addr + `/busybox"

[[registry]]
prefix = "` + registry.Addr + `/blocked"
blocked = true
`
	u = withRegistriesConf(t, u, conf)
	store := isolated(t, u)
	res := mustTug(t, u, store, "pull", "tug-e2e-alias")
	if lastLine(res.Stdout) != bbID {
		t.Fatalf("pull of the alias printed %q\n%s", res.Stdout, res.Stderr)
	}
	names := mustTug(t, u, store, "images", "--format", "{{.Repository}}:{{.Tag}}")
	if got := strings.TrimSpace(names.Stdout); got != busybox {
		t.Fatalf("alias stored as %q, want %s", got, busybox)
	}

	res = tug(t, u, store, "pull", registry.Addr+"/blocked/app:1")
	if res.Code == 0 {
		t.Fatal("pull from a blocked registry succeeded")
	}
	for _, want := range []string{"blocked in registries.conf", "registries.conf)"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("error lacks %q:\n%s", want, res.Stderr)
		}
	}
	if strings.Contains(registry.Log(), "/v2/blocked/") {
		t.Fatal("tug asked the registry about a blocked repository")
	}

	bad := withRegistriesConf(t, fixture.RootlessUser(t), "[[registry]\n")
	if res := tug(t, bad, isolated(t, bad), "pull", busybox); res.Code == 0 || !strings.Contains(res.Stderr, "registries.conf") {
		t.Fatalf("a broken registries.conf: exit %d\n%s", res.Code, res.Stderr)
	}
}

func TestPullAllTags(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := isolated(t, u)
	bb, err := fixture.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	other, err := fixture.ImageWithLayers(1, 4<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	otherCfg, _ := other.ConfigName()
	repo := registry.Ref("alltags")
	for ref, img := range map[string]v1.Image{repo + ":v1": bb, repo + ":v2": bb, repo + ":v3": other} {
		if _, err := fixture.Push(img, ref); err != nil {
			t.Fatal(err)
		}
	}
	res := mustTug(t, u, store, "pull", "--all-tags", "-q", repo)
	if got, want := strings.Fields(res.Stdout), []string{bbID, bbID, otherCfg.Hex}; !slices.Equal(got, want) {
		t.Fatalf("pull --all-tags printed %q, want %q", got, want)
	}
	names := mustTug(t, u, store, "images", "--format", "{{.Repository}}:{{.Tag}}")
	got := strings.Fields(names.Stdout)
	slices.Sort(got)
	if want := []string{repo + ":v1", repo + ":v2", repo + ":v3"}; !slices.Equal(got, want) {
		t.Fatalf("images after --all-tags: %q, want %q", got, want)
	}
	if res := tug(t, u, store, "pull", "--all-tags", repo+":v1"); res.Code == 0 || !strings.Contains(res.Stderr, "cannot be used with --all-tags") {
		t.Fatalf("--all-tags with a tag: exit %d\n%s", res.Code, res.Stderr)
	}
	if res := tug(t, u, store, "pull", "-a", registry.Ref("nosuchrepo")); res.Code == 0 || !strings.Contains(res.Stderr, "nosuchrepo") {
		t.Fatalf("--all-tags of a missing repository: exit %d\n%s", res.Code, res.Stderr)
	}
}

// --platform naming a platform the index lacks says which it has.
func TestPullPlatformMissing(t *testing.T) {
	u := fixture.RootlessUser(t)
	img, err := fixture.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	ref := registry.Addr + "/multi-missing:latest"
	if _, err := fixture.PushIndex(img, ref); err != nil {
		t.Fatal(err)
	}
	res := tug(t, u, isolated(t, u), "pull", "--platform", "linux/riscv64", ref)
	if res.Code == 0 || !strings.Contains(res.Stderr, "no image for platform linux/riscv64") || !strings.Contains(res.Stderr, "linux/") {
		t.Fatalf("pull of a missing platform: exit %d\n%s", res.Code, res.Stderr)
	}
}

// A mirror that serves the manifest but not a blob (a half-filled cache):
// tug goes on to the registry itself, and the pull succeeds.
func TestRegistriesMirrorBlobFallback(t *testing.T) {
	u := fixture.RootlessUser(t)
	origin := fixture.NewRegistry(t)
	behind := fixture.NewRegistry(t)
	img, err := fixture.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*fixture.Registry{origin, behind} {
		if _, err := fixture.Push(img, r.Ref("team/app:1")); err != nil {
			t.Fatal(err)
		}
	}
	mirror := fixture.NewProxy(t, behind.Addr, fixture.Rule{Method: "GET", Path: `/blobs/sha256:`, Fault: fixture.FaultStatus, Status: 404})
	u = withRegistriesConf(t, u, `
[[registry]]
location = "`+origin.Addr+`"
[[registry.mirror]]
location = "`+mirror.Addr+`"
`)
	store := isolated(t, u)
	res := mustTug(t, u, store, "pull", origin.Ref("team/app:1"))
	if lastLine(res.Stdout) != bbID {
		t.Fatalf("pull printed %q, want %s\n%s", res.Stdout, bbID, res.Stderr)
	}
	if mirror.Injected(0) == 0 {
		t.Fatal("the mirror was never asked for a blob: the test tests nothing")
	}
	if !strings.Contains(origin.Log(), "/v2/team/app/blobs/sha256:") {
		t.Fatalf("the registry itself served no blob after the mirror failed:\n%s", origin.Log())
	}
	if got := runOut(t, u, store, "--network", "none", origin.Ref("team/app:1"), "echo", "ok"); got != "ok" {
		t.Fatalf("the image runs: %q", got)
	}
}
