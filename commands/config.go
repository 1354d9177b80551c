package commands

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	rt "github.com/tugcli/tug/runtime"
)

// Config is tug's own configuration file: defaults a user would otherwise
// repeat on every command. It is read from $TUG_CONFIG, else
// $XDG_CONFIG_HOME/tug/config.toml (~/.config/tug/config.toml). Flags
// given on the command line win over it; it wins over Podman's files
// (containers.conf for the network, storage.conf, registries.conf).
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
	// FromPodman lists what Podman's containers.conf set because tug's
	// file did not: "network.default = pasta (FILE [section] key)".
	FromPodman []string `toml:"-"`
	podmanRead bool
}

// containersConf is what tug takes from Podman's containers.conf.
type containersConf struct {
	Containers struct {
		Netns string `toml:"netns"`
	} `toml:"containers"`
	Network struct {
		RootlessCmd string `toml:"default_rootless_network_cmd"`
	} `toml:"network"`
}

// containersConfPaths are Podman's containers.conf files, later ones
// overriding earlier ones: $CONTAINERS_CONF alone, else the system's and
// the user's (drop-in .d directories are not read).
func containersConfPaths() []string {
	if p := os.Getenv("CONTAINERS_CONF"); p != "" {
		return []string{p}
	}
	paths := []string{"/usr/share/containers/containers.conf", "/etc/containers/containers.conf"}
	if os.Geteuid() != 0 || rt.InUserNamespace() {
		dir := os.Getenv("XDG_CONFIG_HOME")
		if dir == "" {
			if home, err := os.UserHomeDir(); err == nil {
				dir = filepath.Join(home, ".config")
			}
		}
		if dir != "" {
			paths = append(paths, filepath.Join(dir, "containers", "containers.conf"))
		}
	}
	return paths
}

// podmanNetwork is the default network a Podman user configured in
// containers.conf, as tug's mode, and where it came from: [containers]
// netns (host, none, pasta, slirp4netns), else, rootless, [network]
// default_rootless_network_cmd (pasta, slirp4netns). "" when neither is
// set to one of those.
func podmanNetwork() (mode, from string, err error) {
	var netns, netnsFrom, cmd, cmdFrom string
	for _, p := range containersConfPaths() {
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("reading Podman's configuration: %w", err)
		}
		var c containersConf
		if _, err := toml.Decode(string(b), &c); err != nil {
			return "", "", fmt.Errorf("Podman's configuration file %s: %w", p, err)
		}
		if c.Containers.Netns != "" {
			netns, netnsFrom = c.Containers.Netns, p+" [containers] netns"
		}
		if c.Network.RootlessCmd != "" {
			cmd, cmdFrom = c.Network.RootlessCmd, p+" [network] default_rootless_network_cmd"
		}
	}
	switch netns {
	case "host", "none", "pasta", "slirp4netns":
		return netns, netnsFrom, nil
	}
	if (os.Geteuid() != 0 || rt.InUserNamespace()) && (cmd == "pasta" || cmd == "slirp4netns") {
		return cmd, cmdFrom, nil
	}
	return "", "", nil
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

// fromPodman fills in, from Podman's containers.conf, what tug's own file
// left unset: a Podman user's network choice carries over. It reads the
// files once, and only for what needs them (not every store opening).
func (c *Config) fromPodman() error {
	if c.Network.Default != "" || c.podmanRead {
		return nil
	}
	c.podmanRead = true
	mode, from, err := podmanNetwork()
	if err != nil || mode == "" {
		return err
	}
	c.Network.Default = mode
	c.FromPodman = append(c.FromPodman, "network.default = "+mode+" ("+from+")")
	return nil
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

// networkMode is the network a run or build step gets for --network
// requested: under chroot isolation, which makes no network namespace,
// the host's (and nothing else); else requested, or when it is empty the
// configured default.
func (e *Env) networkMode(requested string) (string, error) {
	if e.ChosenIsolation() == rt.IsolationChroot {
		switch requested {
		case "", "host":
			return "host", nil
		default:
			return "", fmt.Errorf("--network %s needs a network namespace, which chroot isolation does not make: leave --network out (the host's network) or use another --isolation", requested)
		}
	}
	if requested != "" {
		return requested, nil
	}
	return e.defaultNetwork()
}

// defaultNetwork is the network mode when --network is not given: the
// configuration file's, else private.
func (e *Env) defaultNetwork() (string, error) {
	if err := e.loadConfig(); err != nil {
		return "", err
	}
	if err := e.Config.fromPodman(); err != nil {
		return "", err
	}
	if e.Config.Network.Default != "" {
		return e.Config.Network.Default, nil
	}
	return "private", nil
}
