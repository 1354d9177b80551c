//go:build e2e

package main_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tugcli/tug/fixture"
)

// A registry that requires a login: without credentials tug says how to
// give them; with them in Docker's ~/.docker/config.json, or in a
// Podman-style auth file named by REGISTRY_AUTH_FILE, the pull works.
func TestPullWithCredentials(t *testing.T) {
	u := fixture.RootlessUser(t)
	const user, password = "tug-e2e-pusher", "correct horse: battery staple"
	reg := fixture.NewRegistryWithAuth(t, user, password)

	img, err := fixture.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Ref("private/busybox:latest")
	if _, err := fixture.Push(img, ref); err == nil {
		t.Fatalf("pushing to %s without credentials succeeded: the registry does not require them", ref)
	}
	digest, err := fixture.PushWithAuth(img, ref, user, password)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	id := cfg.Hex

	// The user's own Docker config, if any, must not be in play; it is
	// put back when the test ends.
	dockerDir := filepath.Join(u.Home, ".docker")
	dockerConfig := filepath.Join(dockerDir, "config.json")
	moveAside(t, dockerConfig)

	pullSucceeds := func(t *testing.T, u fixture.User) {
		t.Helper()
		res := mustTug(t, u, isolated(t, u), "pull", ref)
		if got := lastLine(res.Stdout); got != id {
			t.Fatalf("last line of pull output = %q, want the image id %s\n--- stderr ---\n%s", got, id, res.Stderr)
		}
		if !strings.Contains(res.Stderr, "Digest: "+digest) {
			t.Errorf("pull output lacks the digest %s:\n%s", digest, res.Stderr)
		}
	}
	pullIsDenied := func(t *testing.T, u fixture.User) {
		t.Helper()
		res := tug(t, u, isolated(t, u), "pull", ref)
		if res.Code == 0 {
			t.Fatalf("pull of %s succeeded without valid credentials:\n%s", ref, res.Stdout)
		}
		for _, want := range []string{"run 'tug login " + reg.Addr + "'", "config.json"} {
			if !strings.Contains(res.Stderr, want) {
				t.Errorf("error lacks %q:\n%s", want, res.Stderr)
			}
		}
		if n := strings.Count(res.Stderr, "Error: "); n != 1 {
			t.Errorf("want one Error: line, got %d:\n%s", n, res.Stderr)
		}
		t.Logf("denied as expected:\n%s", res.Stderr)
	}

	t.Run("no credentials", func(t *testing.T) {
		pullIsDenied(t, u)
	})

	t.Run("docker config.json", func(t *testing.T) {
		mkdirFor(t, u, dockerDir)
		writeFileFor(t, u, dockerConfig, authFile(t, reg.Addr, user, password))
		pullSucceeds(t, u)
	})

	t.Run("wrong password in docker config.json", func(t *testing.T) {
		mkdirFor(t, u, dockerDir)
		writeFileFor(t, u, dockerConfig, authFile(t, reg.Addr, user, "not the password"))
		pullIsDenied(t, u)
	})

	t.Run("REGISTRY_AUTH_FILE", func(t *testing.T) {
		// go-containerregistry reads REGISTRY_AUTH_FILE only when there is
		// no ~/.docker/config.json.
		if _, err := os.Lstat(dockerConfig); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s is still there (%v)", dockerConfig, err)
		}
		authJSON := filepath.Join(fixture.TempDirFor(t, u), "auth.json")
		writeFileFor(t, u, authJSON, authFile(t, reg.Addr, user, password))
		withAuthFile := u
		withAuthFile.Env = append(slices.Clip(u.Env), "REGISTRY_AUTH_FILE="+authJSON)
		pullSucceeds(t, withAuthFile)
	})
}

// authFile returns a Docker config.json (also Podman's auth.json format)
// holding user:password for the registry at addr.
func authFile(t *testing.T, addr, user, password string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"auths": map[string]any{
			addr: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mkdirFor creates dir, owned by u with mode 0700, unless it exists, and
// removes it when the test ends if it created it.
func mkdirFor(t *testing.T, u fixture.User, dir string) {
	t.Helper()
	err := os.Mkdir(dir, 0o700)
	if errors.Is(err, fs.ErrExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})
	if err := os.Chown(dir, int(u.UID), int(u.GID)); err != nil {
		t.Fatal(err)
	}
}

// writeFileFor writes a new file owned by u with mode 0600 and removes it
// when the test ends.
func writeFileFor(t *testing.T, u fixture.User, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("removing %s: %v", path, err)
		}
	})
	_, err = f.Write(data)
	if err == nil {
		err = f.Chown(int(u.UID), int(u.GID))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
}

// moveAside renames path, if it exists, out of the way for the rest of the
// test and puts it back when the test ends.
func moveAside(t *testing.T, path string) {
	t.Helper()
	saved := path + ".saved-by-tug-e2e"
	if err := os.Rename(path, saved); errors.Is(err, fs.ErrNotExist) {
		return
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("moved %s aside to %s for the test", path, saved)
	t.Cleanup(func() {
		if err := os.Rename(saved, path); err != nil {
			t.Errorf("restoring %s: %v", path, err)
		}
	})
}

// Token (Bearer) auth: a registry that sends clients to a token server.
// Without a login tug says how to give one; after `tug login` (checked
// through the token flow) pull and push work; after logout they fail.
func TestTokenAuth(t *testing.T) {
	u := fixture.RootlessUser(t)
	const user, password = "tug-e2e-token", "bearer: pass"
	reg := fixture.NewRegistryWithTokenAuth(t, user, password)
	img, err := fixture.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Ref("private/busybox:latest")
	if _, err := fixture.Push(img, ref); err == nil {
		t.Fatal("pushing without a token succeeded: the registry does not require one")
	}
	if _, err := fixture.PushWithAuth(img, ref, user, password); err != nil {
		t.Fatal(err)
	}
	dockerDir := filepath.Join(u.Home, ".docker")
	dockerConfig := filepath.Join(dockerDir, "config.json")
	moveAside(t, dockerConfig)
	if _, err := os.Stat(dockerDir); err != nil {
		t.Cleanup(func() { os.RemoveAll(dockerDir) })
	}
	store := isolated(t, u)
	denied := tug(t, u, store, "pull", ref)
	if denied.Code == 0 || !strings.Contains(denied.Stderr, "tug login "+reg.Addr) {
		t.Fatalf("pull without credentials: exit %d\n%s", denied.Code, denied.Stderr)
	}
	login := u.Command(t.Context(), tugBin, "login", "-u", user, "--password-stdin", reg.Addr)
	login.Stdin = strings.NewReader(password + "\n")
	if out, err := login.CombinedOutput(); err != nil || !strings.Contains(string(out), "Login Succeeded") {
		t.Fatalf("login: %v\n%s", err, out)
	}
	mustTug(t, u, store, "pull", "-q", ref)
	mustTug(t, u, store, "push", "-q", ref, reg.Ref("private/copy:v1"))
	if got := runOut(t, u, store, "--network", "none", reg.Ref("private/busybox:latest"), "echo", "ok"); got != "ok" {
		t.Fatalf("the image pulled with a token printed %q", got)
	}
	scopes := strings.Join(reg.TokenScopes(), "\n")
	for _, want := range []string{"repository:private/busybox:pull", "repository:private/copy:push,pull"} {
		if !strings.Contains(scopes, want) {
			t.Errorf("the token server was never asked for %s; it was asked for:\n%s", want, scopes)
		}
	}
	mustTug(t, u, store, "logout", reg.Addr)
	if res := tug(t, u, isolated(t, u), "pull", ref); res.Code == 0 {
		t.Fatal("pull after logout succeeded")
	}
}
