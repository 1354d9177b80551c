package commands

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// Config is tug's own configuration file: defaults a user would otherwise
// repeat on every command. It is read from $TUG_CONFIG, else
// $XDG_CONFIG_HOME/tug/config.toml (~/.config/tug/config.toml). Flags
// given on the command line win over it.
//
//	[storage]
//	driver = "overlay"        # --storage-driver
//	root = "/data/tug"        # --root
//	runroot = "/run/user/1000/tug"   # --runroot
//	[network]
//	default = "pasta"         # run's and build's --network when not given
//	[registries]
//	config = "/etc/tug/registries.conf"   # instead of Podman's registries.conf
//	[isolation]
//	default = "chroot"        # run's and build's --isolation when not given
type Config struct {
	Storage struct {
		Driver  string `toml:"driver"`
		Root    string `toml:"root"`
		RunRoot string `toml:"runroot"`
	} `toml:"storage"`
	Network struct {
		Default string `toml:"default"`
	} `toml:"network"`
	Registries struct {
		Config string `toml:"config"`
	} `toml:"registries"`
	Isolation struct {
		Default string `toml:"default"`
	} `toml:"isolation"`

	// Path is the file read ("" when there is none); Set lists the keys it
	// set, as section.key.
	Path string   `toml:"-"`
	Set  []string `toml:"-"`
}

// configPath is where the configuration file is looked for.
func configPath() string {
	if p := os.Getenv("TUG_CONFIG"); p != "" {
		return p
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "tug", "config.toml")
}

// loadConfig reads the configuration file; a missing file is an empty
// configuration, a broken one an error naming the file and the problem.
func loadConfig() (*Config, error) {
	c := &Config{}
	p := configPath()
	if p == "" {
		return c, nil
	}
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) && os.Getenv("TUG_CONFIG") == "" {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the configuration file: %w", err)
	}
	md, err := toml.Decode(string(b), c)
	if err != nil {
		return nil, fmt.Errorf("configuration file %s: %w", p, err)
	}
	if undec := md.Undecoded(); len(undec) > 0 {
		var keys []string
		for _, k := range undec {
			keys = append(keys, k.String())
		}
		return nil, fmt.Errorf("configuration file %s: unknown key %s (tug knows storage.driver, storage.root, storage.runroot, network.default, registries.config, isolation.default)", p, strings.Join(keys, ", "))
	}
	for _, k := range md.Keys() {
		if len(k) == 2 {
			c.Set = append(c.Set, k.String())
		}
	}
	sort.Strings(c.Set)
	c.Path = p
	return c, nil
}

// apply fills in the global settings the command line left unset, and
// points registries.conf at the configured file.
func (c *Config) apply(g *Globals) {
	if g.Root == "" {
		g.Root = c.Storage.Root
	}
	if g.RunRoot == "" {
		g.RunRoot = c.Storage.RunRoot
	}
	if g.StorageDriver == "" && os.Getenv("STORAGE_DRIVER") == "" {
		g.StorageDriver = c.Storage.Driver
	}
	if c.Registries.Config != "" && os.Getenv("CONTAINERS_REGISTRIES_CONF") == "" {
		os.Setenv("CONTAINERS_REGISTRIES_CONF", c.Registries.Config)
	}
}

// defaultNetwork is the network mode when --network is not given: the
// configuration file's, else private.
func (e *Env) defaultNetwork() (string, error) {
	if err := e.loadConfig(); err != nil {
		return "", err
	}
	if e.Config.Network.Default != "" {
		return e.Config.Network.Default, nil
	}
	return "private", nil
}
