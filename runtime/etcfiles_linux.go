package runtime

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// EtcOptions say what a container's /etc/hosts and /etc/resolv.conf hold.
type EtcOptions struct {
	Hostname    string
	HostNetwork bool
	// Network is the container's network; nil for loopback only.
	Network *Network
	// DNS replaces the name servers (docker run --dns); DNSSearch the
	// search domains.
	DNS       []string
	DNSSearch []string
	// ExtraHosts are NAME:IP lines for /etc/hosts (--add-host); the IP
	// host-gateway stands for the host's address as the container sees it.
	ExtraHosts []string
}

// HostGatewayName is --add-host's stand-in for the host's address.
const HostGatewayName = "host-gateway"

// ValidateExtraHost checks one --add-host value (NAME:IP or NAME=IP).
func ValidateExtraHost(s string) error {
	name, ip, ok := splitExtraHost(s)
	if !ok || name == "" {
		return fmt.Errorf("invalid --add-host %q: use NAME:IP (the IP may be %s)", s, HostGatewayName)
	}
	if ip != HostGatewayName && net.ParseIP(ip) == nil {
		return fmt.Errorf("invalid --add-host %q: %q is not an IP address", s, ip)
	}
	return nil
}

func splitExtraHost(s string) (name, ip string, ok bool) {
	if i := strings.IndexAny(s, "=:"); i > 0 {
		return s[:i], strings.Trim(s[i+1:], "[]"), true
	}
	return "", "", false
}

// EtcFiles writes /etc/hostname, /etc/hosts and /etc/resolv.conf as
// Docker does, into the container's run directory, to be bound in.
func EtcFiles(runDir string, o EtcOptions) ([]Mount, error) {
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	hostAddr := ""
	switch {
	case o.HostNetwork:
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts = string(b)
		}
		hostAddr = "127.0.0.1"
	case o.Network != nil:
		if ip := o.Network.ContainerIP(); ip != "" {
			hosts += ip + "\t" + o.Hostname + "\n"
		} else {
			hosts += "127.0.1.1\t" + o.Hostname + "\n"
		}
		if hostAddr = o.Network.HostAddress(); hostAddr != "" {
			hosts += hostAddr + "\thost.containers.internal host.docker.internal\n"
		}
	default:
		hosts += "127.0.1.1\t" + o.Hostname + "\n"
	}
	for _, h := range o.ExtraHosts {
		name, ip, ok := splitExtraHost(h)
		if !ok {
			return nil, ValidateExtraHost(h)
		}
		if ip == HostGatewayName {
			if hostAddr == "" {
				return nil, fmt.Errorf("--add-host %s: the container has no route to the host with this network; use --network private, pasta or slirp4netns", h)
			}
			ip = hostAddr
		}
		hosts += ip + "\t" + name + "\n"
	}
	files := []struct{ name, body string }{
		{"hostname", o.Hostname + "\n"},
		{"hosts", hosts},
		{"resolv.conf", resolvConf(o)},
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

// resolvConf is the host's resolv.conf, with the name servers the
// container can reach: the network's DNS forwarder, --dns, or the host's
// own less loopback ones (unreachable from the container's namespace).
func resolvConf(o EtcOptions) string {
	b, _ := os.ReadFile("/etc/resolv.conf")
	if o.HostNetwork && len(o.DNS) == 0 && len(o.DNSSearch) == 0 {
		return string(b)
	}
	servers := o.DNS
	if len(servers) == 0 && o.Network != nil {
		if ns := o.Network.Nameserver(); ns != "" {
			servers = []string{ns}
		}
	}
	var out []string
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch {
		case f[0] == "nameserver" && len(f) >= 2:
			if servers != nil || (!o.HostNetwork && (strings.HasPrefix(f[1], "127.") || f[1] == "::1")) {
				continue
			}
		case (f[0] == "search" || f[0] == "domain") && len(o.DNSSearch) > 0:
			continue
		}
		out = append(out, line)
	}
	if len(o.DNSSearch) > 0 {
		out = append(out, "search "+strings.Join(o.DNSSearch, " "))
	}
	for _, s := range servers {
		out = append(out, "nameserver "+s)
	}
	return strings.Join(out, "\n") + "\n"
}
