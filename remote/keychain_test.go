package remote

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// writeAuth writes an auth file giving user:password for each registry.
func writeAuth(t *testing.T, path string, entries map[string]string) {
	t.Helper()
	auths := map[string]any{}
	for reg, cred := range entries {
		auths[reg] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(cred))}
	}
	b, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// isolateAuth points every credentials location into a fresh directory.
func isolateAuth(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("HOME", filepath.Join(dir, "home"))
	t.Setenv("DOCKER_CONFIG", filepath.Join(dir, "docker"))
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(dir, "run"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("REGISTRY_AUTH_FILE", "")
	return dir
}

func resolveUser(t *testing.T, repo string) string {
	t.Helper()
	r, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Keychain.Resolve(r)
	if err != nil {
		t.Fatal(err)
	}
	if a == authn.Anonymous {
		return "anonymous"
	}
	cfg, err := a.Authorization()
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Username
}

func TestKeychainOrder(t *testing.T) {
	dir := isolateAuth(t)
	const reg = "registry.example:5000"
	if got := resolveUser(t, reg+"/app"); got != "anonymous" {
		t.Fatalf("no files: got %s", got)
	}
	podmanConfig := filepath.Join(dir, "config", "containers", "auth.json")
	writeAuth(t, podmanConfig, map[string]string{reg: "podman-config:x"})
	if got := resolveUser(t, reg+"/app"); got != "podman-config" {
		t.Fatalf("only ~/.config/containers/auth.json: got %s", got)
	}
	podmanRun := filepath.Join(dir, "run", "containers", "auth.json")
	writeAuth(t, podmanRun, map[string]string{reg: "podman-run:x"})
	if got := resolveUser(t, reg+"/app"); got != "podman-run" {
		t.Fatalf("with $XDG_RUNTIME_DIR/containers/auth.json: got %s", got)
	}
	writeAuth(t, filepath.Join(dir, "docker", "config.json"), map[string]string{reg: "docker:x", "other.example": "docker-other:x"})
	if got := resolveUser(t, reg+"/app"); got != "docker" {
		t.Fatalf("with Docker's config: got %s", got)
	}
	authFile := filepath.Join(dir, "auth.json")
	writeAuth(t, authFile, map[string]string{reg: "authfile:x", reg + "/special": "per-repo:x"})
	t.Setenv("REGISTRY_AUTH_FILE", authFile)
	for repo, want := range map[string]string{
		reg + "/app":         "authfile",
		reg + "/special":     "per-repo",
		"other.example/app":  "docker-other", // not in the first file: the next one
		"nowhere.example/ap": "anonymous",
	} {
		if got := resolveUser(t, repo); got != want {
			t.Errorf("%s: got %s, want %s", repo, got, want)
		}
	}
}

func TestKeychainDockerHub(t *testing.T) {
	dir := isolateAuth(t)
	writeAuth(t, filepath.Join(dir, "docker", "config.json"), map[string]string{authn.DefaultAuthKey: "hub:x"})
	if got := resolveUser(t, "index.docker.io/library/busybox"); got != "hub" {
		t.Fatalf("Docker Hub under Docker's key: got %s", got)
	}
	os.Remove(filepath.Join(dir, "docker", "config.json"))
	writeAuth(t, filepath.Join(dir, "run", "containers", "auth.json"), map[string]string{"docker.io": "podman-hub:x"})
	if got := resolveUser(t, "index.docker.io/library/busybox"); got != "podman-hub" {
		t.Fatalf("Docker Hub under Podman's key: got %s", got)
	}
}

func TestKeychainMalformedFile(t *testing.T) {
	dir := isolateAuth(t)
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REGISTRY_AUTH_FILE", bad)
	r, _ := name.NewRepository("registry.example/app")
	if _, err := Keychain.Resolve(r); err == nil {
		t.Fatal("a malformed auth file was ignored")
	} else if !strings.Contains(err.Error(), bad) {
		t.Fatalf("error does not name the file: %v", err)
	}
}
