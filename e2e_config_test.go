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
