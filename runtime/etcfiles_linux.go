package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EtcFiles writes /etc/hostname, /etc/hosts and /etc/resolv.conf as
// Docker does, into the container's run directory, to be bound in.
func EtcFiles(runDir, hostname string, hostNet bool) ([]Mount, error) {
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	if hostNet {
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts = string(b)
		}
	} else {
		hosts += "127.0.1.1\t" + hostname + "\n"
	}
	resolv, err := resolvConf(hostNet)
	if err != nil {
		return nil, err
	}
	files := []struct{ name, body string }{
		{"hostname", hostname + "\n"},
		{"hosts", hosts},
		{"resolv.conf", resolv},
	}
	var mounts []Mount
	for _, f := range files {
		p := filepath.Join(runDir, f.name)
		if err := os.WriteFile(p, []byte(f.body), 0o644); err != nil {
			return nil, fmt.Errorf("writing the container's /etc/%s: %w", f.name, err)
		}
		mounts = append(mounts, Mount{Type: "bind", Source: p, Destination: "/etc/" + f.name})
	}
	return mounts, nil
}

// resolvConf is the host's resolv.conf; without the host's network,
// loopback name servers (unreachable from the container) are left out.
func resolvConf(hostNet bool) (string, error) {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return "", nil
	}
	if hostNet {
		return string(b), nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" && (strings.HasPrefix(f[1], "127.") || f[1] == "::1") {
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n"), nil
}
