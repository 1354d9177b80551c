//go:build e2e

package main_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tugcli/tug/fixture"
)

// The configuration file gives defaults that flags override: the store's
// root, the network of build steps and containers; tug info names the
// file and what it sets; a broken file is one Error: line naming it.
func TestConfigFile(t *testing.T) {
	u := fixture.RootlessUser(t)
	dir := fixture.TempDirFor(t, u)
	root := filepath.Join(dir, "store")
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte("[storage]\nroot = \""+root+"\"\nrunroot = \""+filepath.Join(dir, "run")+"\"\n[network]\ndefault = \"none\"\n"), 0o644)
	u.Env = append(u.Env, "TUG_CONFIG="+cfg)
	mustTug(t, u, nil, "pull", "-q", busybox)
	if _, err := os.Stat(filepath.Join(root, "overlay-images")); err != nil {
		t.Fatalf("the pull did not use the configured root %s: %v", root, err)
	}
	info := mustTug(t, u, nil, "info").Stdout
	if !strings.Contains(info, "Config file:    "+cfg+" (sets network.default, storage.root, storage.runroot)") || !strings.Contains(info, root) {
		t.Fatalf("tug info does not show the configuration:\n%s", info)
	}
	port := hostServer(t)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + "\nRUN wget -qO- http://host.containers.internal:" + strconv.Itoa(port) + "/ > /got || echo none > /got\nCMD cat /got\n",
	})
	mustTug(t, u, nil, "build", "-q", "--no-cache", "-t", "cfgnet", ctx)
	if got := strings.TrimSpace(mustTug(t, u, nil, "run", "--rm", "--network", "none", "cfgnet").Stdout); got != "none" {
		t.Fatalf("with network.default = none a RUN step reached the host: %q", got)
	}
	mustTug(t, u, nil, "build", "-q", "--no-cache", "--network", "private", "-t", "cfgnet", ctx)
	if got := strings.TrimSpace(mustTug(t, u, nil, "run", "--rm", "--network", "none", "cfgnet").Stdout); got != "hello from the host" {
		t.Fatalf("--network private did not override the configuration: %q", got)
	}
	// Containers too: none by the file, private by the flag.
	if got := strings.TrimSpace(mustTug(t, u, nil, "run", "--rm", busybox, "ls", "/sys/class/net").Stdout); got != "lo" {
		t.Fatalf("with network.default = none a container has %q", got)
	}
	if got := strings.TrimSpace(mustTug(t, u, nil, "run", "--rm", "--network", "private", busybox, "ls", "/sys/class/net").Stdout); got != "lo\ntap0" {
		t.Fatalf("--network private over the file gives %q", got)
	}
	os.WriteFile(cfg, []byte("[storage]\ndrvier = \"vfs\"\n"), 0o644)
	res := tug(t, u, nil, "images")
	if res.Code == 0 || !strings.HasPrefix(lastLine(res.Stderr), "Error: configuration file "+cfg) || !strings.Contains(res.Stderr, "storage.drvier") {
		t.Fatalf("a misspelt key: exit %d, stderr %q", res.Code, res.Stderr)
	}
}

// A Podman user's containers.conf carries over where tug's own file is
// silent: [containers] netns, or rootless [network]
// default_rootless_network_cmd, gives the default network; tug info says
// so; tug's file and the flag win over it.
func TestConfigPodmanContainersConf(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	dir := fixture.TempDirFor(t, u)
	conf := filepath.Join(dir, "containers.conf")
	os.WriteFile(conf, []byte("[containers]\nnetns = \"none\"\n[network]\ndefault_rootless_network_cmd = \"slirp4netns\"\n"), 0o644)
	u.Env = append(u.Env, "CONTAINERS_CONF="+conf, "XDG_CONFIG_HOME="+dir)
	if got := strings.TrimSpace(mustTug(t, u, store, "run", "--rm", busybox, "ls", "/sys/class/net").Stdout); got != "lo" {
		t.Fatalf("with containers.conf netns = none a container has %q", got)
	}
	if info := mustTug(t, u, store, "info").Stdout; !strings.Contains(info, " Podman config:  network.default = none ("+conf+" [containers] netns)\n") {
		t.Fatalf("tug info does not say where the network came from:\n%s", info)
	}
	if got := strings.TrimSpace(mustTug(t, u, store, "run", "--rm", "--network", "private", busybox, "ls", "/sys/class/net").Stdout); got != "lo\ntap0" {
		t.Fatalf("--network private over containers.conf gives %q", got)
	}
	os.WriteFile(conf, []byte("[network]\ndefault_rootless_network_cmd = \"slirp4netns\"\n"), 0o644)
	if info := mustTug(t, u, store, "info").Stdout; !strings.Contains(info, "network.default = slirp4netns ("+conf+" [network] default_rootless_network_cmd)") {
		t.Fatalf("tug info with default_rootless_network_cmd:\n%s", info)
	}
	own := filepath.Join(dir, "config.toml")
	os.WriteFile(own, []byte("[network]\ndefault = \"private\"\n"), 0o644)
	u.Env = append(u.Env, "TUG_CONFIG="+own)
	if info := mustTug(t, u, store, "info").Stdout; strings.Contains(info, "Podman config:") {
		t.Fatalf("tug's own network.default does not win:\n%s", info)
	}
	if got := strings.TrimSpace(mustTug(t, u, store, "run", "--rm", busybox, "ls", "/sys/class/net").Stdout); got != "lo\ntap0" {
		t.Fatalf("tug's file's private over containers.conf gives %q", got)
	}
}
