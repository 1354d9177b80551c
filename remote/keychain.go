package remote

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Keychain finds credentials for a registry the way a Podman and Docker user
// expects, in this order, taking the first file that has an entry for the
// repository or its registry:
//
//  1. $REGISTRY_AUTH_FILE (Podman's override),
//  2. Docker's config.json ($DOCKER_CONFIG or ~/.docker), credsStore and
//     credHelpers included — where `tug login` writes,
//  3. Podman's ${XDG_RUNTIME_DIR}/containers/auth.json, then
//     ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json.
//
// Files are re-read on every resolve. go-containerregistry's DefaultKeychain
// reads only the first of these files that exists, and $REGISTRY_AUTH_FILE
// only when there is no Docker config at all.
var Keychain authn.Keychain = keychain{}

type keychain struct{}

func (k keychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), target)
}

func (keychain) ResolveContext(_ context.Context, target authn.Resource) (authn.Authenticator, error) {
	for _, src := range authSources() {
		cf, err := src.load()
		if err != nil {
			return nil, err
		}
		if cf == nil {
			continue
		}
		cfg, err := lookupAuth(cf, target)
		if err != nil {
			return nil, fmt.Errorf("reading credentials for %s from %s: %w", target.RegistryStr(), src.path, err)
		}
		if cfg != nil {
			return authn.FromConfig(*cfg), nil
		}
	}
	return authn.Anonymous, nil
}

// authSource is one credentials file; docker is true for Docker's own
// config, which is loaded with its credential helpers.
type authSource struct {
	path   string
	docker bool
}

func authSources() []authSource {
	var srcs []authSource
	if p := os.Getenv("REGISTRY_AUTH_FILE"); p != "" {
		srcs = append(srcs, authSource{path: filepath.Clean(p)})
	}
	srcs = append(srcs, authSource{path: DockerConfigPath(), docker: true})
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		srcs = append(srcs, authSource{path: filepath.Join(d, "containers", "auth.json")})
	}
	cfgHome := os.Getenv("XDG_CONFIG_HOME")
	if cfgHome == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cfgHome = filepath.Join(home, ".config")
		}
	}
	if cfgHome != "" {
		srcs = append(srcs, authSource{path: filepath.Join(cfgHome, "containers", "auth.json")})
	}
	return srcs
}

// DockerConfigPath is Docker's config.json: in $DOCKER_CONFIG, else ~/.docker.
func DockerConfigPath() string {
	dir := os.Getenv(config.EnvOverrideConfigDir)
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".docker")
	}
	return filepath.Join(dir, config.ConfigFileName)
}

// load reads the file; a missing file is (nil, nil).
func (s authSource) load() (*configfile.ConfigFile, error) {
	if s.docker {
		if _, err := os.Stat(s.path); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		cf, err := config.Load(filepath.Dir(s.path))
		if err != nil {
			return nil, fmt.Errorf("reading credentials: %w", err)
		}
		return cf, nil
	}
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading credentials: %w", err)
	}
	defer f.Close()
	cf, err := config.LoadFromReader(f)
	if err != nil {
		return nil, fmt.Errorf("reading credentials from %s: %w", s.path, err)
	}
	cf.Filename = s.path
	return cf, nil
}

// lookupAuth returns the entry for the repository (Podman allows entries
// per repository), else for its registry, or nil if there is none.
func lookupAuth(cf *configfile.ConfigFile, target authn.Resource) (*authn.AuthConfig, error) {
	keys := []string{target.String(), target.RegistryStr()}
	if target.RegistryStr() == name.DefaultRegistry {
		// Docker's key for Docker Hub, then Podman's.
		keys = []string{target.String(), authn.DefaultAuthKey, "docker.io"}
	}
	for _, key := range keys {
		cfg, err := cf.GetAuthConfig(key)
		if err != nil {
			return nil, err
		}
		if key == "docker.io" {
			// GetAuthConfig reads Docker's key for this name.
			cfg = cf.GetAuthConfigs()[key]
		}
		// GetAuthConfig fills ServerAddress in; only credentials count.
		cfg.ServerAddress = ""
		if cfg != (types.AuthConfig{}) {
			return &authn.AuthConfig{
				Username:      cfg.Username,
				Password:      cfg.Password,
				Auth:          cfg.Auth,
				IdentityToken: cfg.IdentityToken,
				RegistryToken: cfg.RegistryToken,
			}, nil
		}
	}
	return nil, nil
}
