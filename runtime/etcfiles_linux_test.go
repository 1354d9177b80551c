package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEtcFilesPrivateNetwork(t *testing.T) {
	dir := t.TempDir()
	n := &Network{Mode: NetPrivate}
	if _, err := EtcFiles(dir, EtcOptions{Hostname: "box", Network: n, ExtraHosts: []string{"db:host-gateway", "x=192.0.2.9"}}); err != nil {
		t.Fatal(err)
	}
	hosts, _ := os.ReadFile(filepath.Join(dir, "hosts"))
	for _, want := range []string{"10.0.2.100\tbox\n", "10.0.2.254\thost.containers.internal host.docker.internal\n", "10.0.2.254\tdb\n", "192.0.2.9\tx\n"} {
		if !strings.Contains(string(hosts), want) {
			t.Errorf("hosts lacks %q:\n%s", want, hosts)
		}
	}
	resolv, _ := os.ReadFile(filepath.Join(dir, "resolv.conf"))
	if !strings.Contains(string(resolv), "nameserver 10.0.2.2\n") || strings.Count(string(resolv), "nameserver") != 1 {
		t.Errorf("resolv.conf:\n%s", resolv)
	}
	if _, err := EtcFiles(dir, EtcOptions{Hostname: "box", ExtraHosts: []string{"db:host-gateway"}}); err == nil {
		t.Error("host-gateway without a network was accepted")
	}
	for _, bad := range []string{"nohost", ":1.2.3.4", "h:notanip"} {
		if ValidateExtraHost(bad) == nil {
			t.Errorf("--add-host %q was accepted", bad)
		}
	}
}
