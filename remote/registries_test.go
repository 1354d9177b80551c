package remote

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const testConf = `
unqualified-search-registries = ["quay.io"]

[[registry]]
location = "a.example"

[[registry]]
prefix = "a.example/team"
location = "127.0.0.1:5000/mirrored-team"
insecure = true
[[registry.mirror]]
location = "127.0.0.1:6000/m1"
[[registry.mirror]]
location = "127.0.0.1:7000"
insecure = true

[[registry]]
prefix = "blocked.example"
blocked = true

[[registry]]
prefix = "*.wild.example"
insecure = true

[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "127.0.0.1:8000"

[aliases]
"myapp" = "127.0.0.1:5000/team/myapp"
"tagged" = "127.0.0.1:5000/t:v9"
`

func mustParseConf(t *testing.T, conf string) *Registries {
	t.Helper()
	r, err := ParseRegistries([]byte(conf), "test.conf")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegistriesFind(t *testing.T) {
	t.Parallel()
	r := mustParseConf(t, testConf)
	for _, tc := range []struct{ repo, want string }{
		{"a.example/x", "a.example"},
		{"a.example/team", "a.example/team"},
		{"a.example/team/app", "a.example/team"}, // longest prefix wins
		{"a.example/teammate", "a.example"},      // whole components only
		{"a.example:5000/x", ""},                 // another host
		{"b.example/x", ""},
		{"reg.wild.example/x", "*.wild.example"},
		{"wild.example/x", ""},
		{"docker.io/library/busybox", "docker.io"},
	} {
		got := ""
		if reg := r.Find(tc.repo); reg != nil {
			got = reg.Prefix
		}
		if got != tc.want {
			t.Errorf("Find(%q) = %q, want %q", tc.repo, got, tc.want)
		}
	}
}

func TestRegistriesEndpoints(t *testing.T) {
	t.Parallel()
	r := mustParseConf(t, testConf)
	got := r.Find("a.example/team/app").Endpoints("a.example/team/app:1")
	want := []Endpoint{
		{Ref: "127.0.0.1:6000/m1/app:1", Mirror: true},
		{Ref: "127.0.0.1:7000/app:1", Mirror: true},
		{Ref: "127.0.0.1:5000/mirrored-team/app:1"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Endpoints = %v, want %v", got, want)
	}
	if got := r.Find("x.wild.example/a").Endpoints("x.wild.example/a:1"); !slices.Equal(got, []Endpoint{{Ref: "x.wild.example/a:1"}}) {
		t.Errorf("wildcard Endpoints = %v", got)
	}
	if got := r.Find("nowhere.example/a").Endpoints("nowhere.example/a@sha256:00"); !slices.Equal(got, []Endpoint{{Ref: "nowhere.example/a@sha256:00"}}) {
		t.Errorf("Endpoints without an entry = %v", got)
	}
}

func TestRegistriesAliasAndInsecure(t *testing.T) {
	t.Parallel()
	r := mustParseConf(t, testConf)
	for _, tc := range []struct{ in, want string }{
		{"myapp", "127.0.0.1:5000/team/myapp"},
		{"myapp:1", "127.0.0.1:5000/team/myapp:1"},
		{"myapp@sha256:ab", "127.0.0.1:5000/team/myapp@sha256:ab"},
		{"tagged", "127.0.0.1:5000/t:v9"},
		{"tagged:v1", "127.0.0.1:5000/t:v1"},
		{"other", "other"},
		{"a.example/myapp", "a.example/myapp"},
	} {
		if got, _ := r.Alias(tc.in); got != tc.want {
			t.Errorf("Alias(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.0.0.1:7000": true, "127.0.0.1:6000": false,
		"a.example": false, "r.wild.example": true, "docker.io": false,
	} {
		if got := r.InsecureHost(host); got != want {
			t.Errorf("InsecureHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestRegistriesBadConfig(t *testing.T) {
	t.Parallel()
	for _, conf := range []string{
		"[[registry]]\ninsecure = true\n",
		"[[registry]]\nprefix = \"*.x.io/repo\"\n",
		"[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\ninsecure = true\n",
		"[aliases]\n\"a.io/x\" = \"b.io/x\"\n",
		"[aliases]\n\"x\" = \"x\"\n",
		"[[registry]\n",
	} {
		if _, err := ParseRegistries([]byte(conf), "bad.conf"); err == nil || !strings.Contains(err.Error(), "bad.conf") {
			t.Errorf("ParseRegistries(%q) = %v, want an error naming the file", conf, err)
		}
	}
}

func TestClientAppliesRegistries(t *testing.T) {
	t.Parallel()
	c := NewClient(Options{Registries: mustParseConf(t, testConf)})
	ref, err := c.Reference("myapp:2")
	if err != nil || Canonical(ref) != "127.0.0.1:5000/team/myapp:2" {
		t.Fatalf("Reference(myapp:2) = %v, %v", ref, err)
	}
	if _, err := c.Reference("blocked.example/x/y:1"); !errors.Is(err, ErrBlocked) || !strings.Contains(err.Error(), "test.conf") {
		t.Fatalf("Reference of a blocked registry = %v", err)
	}
	if ref, err := c.Reference("busybox"); err != nil || Canonical(ref) != "docker.io/library/busybox:latest" {
		t.Fatalf("Reference(busybox) = %v, %v: docker.io stays the default", ref, err)
	}
}

// The files Podman reads, in its order; later files override.
func TestLoadRegistries(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	dir := filepath.Join(home, ".config", "containers")
	if err := os.MkdirAll(filepath.Join(dir, "registries.conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "registries.conf"), "[[registry]]\nlocation = \"a.io\"\nblocked = true\n[aliases]\n\"x\" = \"a.io/x\"\n")
	write(filepath.Join(dir, "registries.conf.d", "10-b.conf"), "[[registry]]\nlocation = \"a.io\"\n[aliases]\n\"y\" = \"b.io/y\"\n")
	write(filepath.Join(dir, "registries.conf.d", "20-c.conf"), "[aliases]\n\"x\" = \"c.io/x\"\n")
	t.Setenv("CONTAINERS_REGISTRIES_CONF", "")
	r, err := LoadRegistries()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Files()) != 3 {
		t.Fatalf("read %v, want 3 files", r.Files())
	}
	if reg := r.Find("a.io/x"); reg == nil || reg.Blocked {
		t.Fatalf("the drop-in's a.io entry should replace the blocked one: %+v", reg)
	}
	if x, _ := r.Alias("x"); x != "c.io/x" {
		t.Fatalf("alias x = %q, want the last drop-in's", x)
	}
	if y, _ := r.Alias("y"); y != "b.io/y" {
		t.Fatalf("alias y = %q", y)
	}
	// $CONTAINERS_REGISTRIES_CONF replaces the main file only.
	other := filepath.Join(t.TempDir(), "other.conf")
	write(other, "[[registry]]\nprefix = \"d.io\"\nblocked = true\n")
	t.Setenv("CONTAINERS_REGISTRIES_CONF", other)
	if r, err = LoadRegistries(); err != nil {
		t.Fatal(err)
	}
	if reg := r.Find("d.io/x"); reg == nil || !reg.Blocked || r.Find("a.io/x") == nil {
		t.Fatalf("with CONTAINERS_REGISTRIES_CONF: %v", r.Files())
	}
}
