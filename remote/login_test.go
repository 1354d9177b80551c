package remote

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
)

func TestRegistryKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1:5000", "127.0.0.1:5000"},
		{"https://registry.example.com/v2/", "registry.example.com"},
		{"http://localhost:5000", "localhost:5000"},
		{"docker.io", authn.DefaultAuthKey},
		{"index.docker.io", authn.DefaultAuthKey},
		{"https://index.docker.io/v1/", authn.DefaultAuthKey},
		{"registry-1.docker.io", authn.DefaultAuthKey},
	} {
		if got, err := RegistryKey(tc.in); err != nil || got != tc.want {
			t.Errorf("RegistryKey(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "a b", "host:port:x"} {
		if _, err := RegistryKey(bad); err == nil {
			t.Errorf("RegistryKey(%q) accepted", bad)
		}
	}
}

// basicRegistry answers GET /v2/ with 200 for user:password only.
func basicRegistry(t *testing.T, user, password string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); ok && u == user && p == password {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// tokenRegistry is a registry with a Bearer token service that hands out a
// token for user:password only.
func tokenRegistry(t *testing.T, user, password string) string {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			if u, p, ok := r.BasicAuth(); ok && u == user && p == password {
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"token":"good-token"}`))
				return
			}
			w.WriteHeader(http.StatusUnauthorized)
		case "/v2/":
			if r.Header.Get("Authorization") == "Bearer good-token" {
				w.WriteHeader(http.StatusOK)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="test"`)
			w.WriteHeader(http.StatusUnauthorized)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestLoginLogout(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(*testing.T, string, string) string
	}{
		{"basic", basicRegistry},
		{"bearer", tokenRegistry},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := isolateAuth(t)
			reg := tc.start(t, "alice", "s3cret")
			c := NewClient(Options{})
			ctx := context.Background()

			if _, err := c.Login(ctx, reg, "alice", "wrong"); !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("login with a wrong password: %v", err)
			}
			cfgPath := filepath.Join(dir, "docker", "config.json")
			if _, err := os.Stat(cfgPath); err == nil {
				t.Fatal("a failed login wrote the config")
			}
			// A config that exists with a loose mode is made private.
			writeAuth(t, cfgPath, map[string]string{"other.example": "bob:x"})
			os.Chmod(cfgPath, 0o644)
			path, err := c.Login(ctx, reg, "alice", "s3cret")
			if err != nil {
				t.Fatal(err)
			}
			if path != cfgPath {
				t.Fatalf("Login wrote %s, want %s", path, cfgPath)
			}
			if fi, _ := os.Stat(cfgPath); fi.Mode().Perm() != 0o600 {
				t.Fatalf("config mode %v, want 0600", fi.Mode().Perm())
			}
			if got := resolveUser(t, reg+"/app"); got != "alice" {
				t.Fatalf("after login the keychain gives %s", got)
			}
			if got := resolveUser(t, "other.example/app"); got != "bob" {
				t.Fatalf("login lost another registry's entry: %s", got)
			}

			res, err := Logout(reg)
			if err != nil || !res.Removed || res.Host != reg {
				t.Fatalf("Logout = %+v, %v", res, err)
			}
			if got := resolveUser(t, reg+"/app"); got != "anonymous" {
				t.Fatalf("after logout the keychain gives %s", got)
			}
			if res, err := Logout(reg); err != nil || res.Removed {
				t.Fatalf("second Logout = %+v, %v", res, err)
			}
		})
	}
}

func TestLogoutReportsOtherFiles(t *testing.T) {
	dir := isolateAuth(t)
	const reg = "registry.example:5000"
	podman := filepath.Join(dir, "run", "containers", "auth.json")
	writeAuth(t, podman, map[string]string{reg: "carol:x"})
	res, err := Logout(reg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed || len(res.Elsewhere) != 1 || res.Elsewhere[0] != podman {
		t.Fatalf("Logout = %+v, want Elsewhere = [%s]", res, podman)
	}
}
