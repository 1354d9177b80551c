package remote

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/credentials"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ErrUnauthorized is returned by Login when the registry refuses the
// credentials.
var ErrUnauthorized = errors.New("unauthorized: incorrect username or password")

// RegistryKey is the key under which Docker stores credentials for the
// registry named by s (a host[:port], with or without a scheme or path):
// https://index.docker.io/v1/ for Docker Hub, else host[:port].
func RegistryKey(s string) (string, error) {
	host := credentials.ConvertToHostname(strings.TrimSpace(s))
	switch host {
	case "docker.io", name.DefaultRegistry, "registry-1.docker.io":
		return authn.DefaultAuthKey, nil
	}
	if _, err := name.NewRegistry(host); err != nil || host == "" {
		return "", fmt.Errorf("invalid registry %q: want a host name with an optional port, e.g. registry.example.com:5000", s)
	}
	return host, nil
}

func registryOfKey(key string) string {
	if key == authn.DefaultAuthKey {
		return name.DefaultRegistry
	}
	return key
}

// Login checks user:password against the registry — a GET /v2/ with them,
// after the token exchange when the registry uses Bearer tokens — and only
// then stores them where `docker login` does: Docker's config.json, or the
// credential helper it names (credsStore, credHelpers). The file is kept
// at mode 0600. It returns the path of the config file.
func (c *Client) Login(ctx context.Context, registry, user, password string) (string, error) {
	key, err := RegistryKey(registry)
	if err != nil {
		return "", err
	}
	if user == "" || password == "" {
		return "", errors.New("a username and a password are needed")
	}
	if err := c.checkLogin(ctx, registryOfKey(key), &authn.Basic{Username: user, Password: password}); err != nil {
		return "", err
	}
	cf, err := loadDockerConfig()
	if err != nil {
		return "", err
	}
	// Store saves the file itself; Save keeps the mode of the file it
	// replaces, so make that 0600 first.
	if err := tightenMode(cf.Filename); err != nil {
		return "", err
	}
	if err := cf.GetCredentialsStore(key).Store(types.AuthConfig{ServerAddress: key, Username: user, Password: password}); err != nil {
		return "", fmt.Errorf("saving credentials for %s: %w", registryOfKey(key), err)
	}
	return cf.Filename, tightenMode(cf.Filename)
}

// checkLogin makes an authenticated GET /v2/ to the registry.
func (c *Client) checkLogin(ctx context.Context, host string, auth authn.Authenticator) error {
	var opts []name.Option
	if c.opts.Insecure {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return fmt.Errorf("invalid registry %q: %w", host, err)
	}
	tr, err := transport.NewWithContext(ctx, reg, auth, c.transport, nil)
	if err != nil {
		return c.explainLogin(host, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	if c.opts.UserAgent != "" {
		req.Header.Set("User-Agent", c.opts.UserAgent)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("logging in to %s: %w", host, err)
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return c.explainLogin(host, err)
	}
	return nil
}

func (c *Client) explainLogin(host string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("logging in to %s: %w", host, ErrUnauthorized)
	}
	return fmt.Errorf("logging in to %s: %w", host, err)
}

// LogoutResult says what Logout removed.
type LogoutResult struct {
	// Host is the registry as Docker names it in its message.
	Host string
	// Removed is true when Docker's config held credentials for it.
	Removed bool
	// Elsewhere lists other credential files (Podman's) that still hold
	// credentials for the registry; tug reads them too.
	Elsewhere []string
}

// Logout removes the registry's credentials from Docker's config (or its
// credential helper), under every key Docker may have stored them under.
func Logout(registry string) (*LogoutResult, error) {
	key, err := RegistryKey(registry)
	if err != nil {
		return nil, err
	}
	res := &LogoutResult{Host: key}
	keys := []string{key}
	if key != authn.DefaultAuthKey {
		keys = append(keys, "http://"+key, "https://"+key)
	}
	cf, err := loadDockerConfig()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, k := range keys {
		store := cf.GetCredentialsStore(k)
		if got, err := store.Get(k); err == nil && got.Username+got.Password+got.Auth+got.IdentityToken != "" {
			res.Removed = true
		}
		if err := store.Erase(k); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
	}
	if len(errs) == len(keys) {
		return res, fmt.Errorf("removing credentials for %s: %w", registryOfKey(key), errors.Join(errs...))
	}
	reg := registryOfKey(key)
	for _, src := range authSources() {
		if src.docker {
			continue
		}
		cf, err := src.load()
		if err != nil || cf == nil {
			continue
		}
		if cfg, err := lookupAuth(cf, mustRegistry(reg)); err == nil && cfg != nil {
			res.Elsewhere = append(res.Elsewhere, src.path)
		}
	}
	return res, nil
}

func mustRegistry(host string) name.Registry {
	r, err := name.NewRegistry(host, name.WeakValidation)
	if err != nil {
		return name.Registry{}
	}
	return r
}

func loadDockerConfig() (*configfile.ConfigFile, error) {
	path := DockerConfigPath()
	cf, err := config.Load(filepath.Dir(path))
	if err != nil {
		// Never overwrite a file we could not read.
		return nil, fmt.Errorf("reading %s: %w (fix or move it, then try again)", path, err)
	}
	return cf, nil
}

// tightenMode makes an existing credentials file readable by its owner only.
func tightenMode(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Perm() != 0o600 {
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("making %s private: %w", path, err)
		}
	}
	return nil
}
