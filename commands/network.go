package commands

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/tugcli/tug/image"
	rt "github.com/tugcli/tug/runtime"
)

// networkMode is --network with Docker's names for the default network
// (bridge, default) read as tug's: private.
func (c *RunCmd) networkMode() string {
	switch c.Network {
	case "", "bridge", "default", "slirp":
		if c.Network == "slirp" {
			return rt.NetSlirp
		}
		return rt.NetPrivate
	}
	return c.Network
}

// network fills in the spec's network from --network, -p, -P and returns
// what /etc/hosts and /etc/resolv.conf get.
func (c *RunCmd) network(spec *rt.Spec, img *image.Image) (rt.EtcOptions, error) {
	mode := c.networkMode()
	etc := rt.EtcOptions{Hostname: spec.Hostname, DNS: c.DNS, DNSSearch: c.DNSSearch, ExtraHosts: c.AddHost}
	for _, d := range c.DNS {
		if net.ParseIP(d) == nil {
			return etc, fmt.Errorf("invalid --dns %q: not an IP address", d)
		}
	}
	for _, h := range c.AddHost {
		if err := rt.ValidateExtraHost(h); err != nil {
			return etc, err
		}
	}
	var publish []rt.PortMapping
	for _, p := range c.Publish {
		ms, err := parsePublish(p)
		if err != nil {
			return etc, err
		}
		publish = append(publish, ms...)
	}
	if c.PublishAll {
		exposed := make([]string, 0, len(img.Config.Config.ExposedPorts))
		for p := range img.Config.Config.ExposedPorts {
			exposed = append(exposed, p)
		}
		sort.Strings(exposed)
		for _, p := range exposed {
			ms, err := parsePublish(p)
			if err != nil {
				return etc, fmt.Errorf("the image exposes %q: %w", p, err)
			}
			publish = append(publish, ms...)
		}
	}
	switch mode {
	case "host":
		spec.HostNetwork, etc.HostNetwork = true, true
		if len(publish) > 0 {
			return etc, fmt.Errorf("-p/-P have no effect with --network host: the container uses the host's ports directly; drop them")
		}
	case "none":
		if len(publish) > 0 {
			return etc, fmt.Errorf("-p/-P need a network: --network none has loopback only")
		}
	case rt.NetPrivate, rt.NetPasta, rt.NetSlirp:
		if err := pickHostPorts(publish); err != nil {
			return etc, err
		}
		spec.Network = &rt.Network{Mode: mode, Publish: publish}
		etc.Network = spec.Network
	default:
		return etc, fmt.Errorf("unknown network %q: use private (the default), host, none, pasta or slirp4netns", c.Network)
	}
	return etc, nil
}

// parsePublish reads one -p value: [IP:][HOST-PORT:]CONTAINER-PORT[/PROTO],
// ports or ranges of them (8000-8010:80-90).
func parsePublish(s string) ([]rt.PortMapping, error) {
	bad := func(why string) error {
		return fmt.Errorf("invalid -p %q: %s (use [IP:][HOST-PORT:]CONTAINER-PORT[/tcp|udp])", s, why)
	}
	rest, proto := s, "tcp"
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		rest, proto = rest[:i], strings.ToLower(rest[i+1:])
	}
	if proto != "tcp" && proto != "udp" {
		return nil, bad("the protocol must be tcp or udp")
	}
	var ip, host, ctr string
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 || len(rest) < end+2 || rest[end+1] != ':' {
			return nil, bad("unbalanced [ in the address")
		}
		ip, rest = rest[1:end], rest[end+2:]
		host, ctr, _ = strings.Cut(rest, ":")
		if ctr == "" {
			host, ctr = "", host
		}
	} else {
		parts := strings.Split(rest, ":")
		switch len(parts) {
		case 1:
			ctr = parts[0]
		case 2:
			host, ctr = parts[0], parts[1]
		case 3:
			ip, host, ctr = parts[0], parts[1], parts[2]
		default:
			return nil, bad("too many colons")
		}
	}
	if ip != "" && net.ParseIP(ip) == nil {
		return nil, bad(fmt.Sprintf("%q is not an IP address", ip))
	}
	cLo, cHi, err := portRange(ctr)
	if err != nil {
		return nil, bad(err.Error())
	}
	var hLo, hHi uint16
	if host != "" {
		if hLo, hHi, err = portRange(host); err != nil {
			return nil, bad(err.Error())
		}
		if hHi-hLo != cHi-cLo {
			return nil, bad("the host and container port ranges differ in size")
		}
	}
	var out []rt.PortMapping
	for i := uint16(0); i <= cHi-cLo; i++ {
		m := rt.PortMapping{HostIP: ip, ContainerPort: cLo + i, Protocol: proto}
		if host != "" {
			m.HostPort = hLo + i
		}
		out = append(out, m)
	}
	return out, nil
}

func portRange(s string) (lo, hi uint16, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if lo, err = port(a); err != nil {
		return 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = port(b); err != nil {
			return 0, 0, err
		}
		if hi < lo {
			return 0, 0, fmt.Errorf("the range %s runs backwards", s)
		}
	}
	return lo, hi, nil
}

func port(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return uint16(n), nil
}

// pickHostPorts gives each mapping without a host port a free one, as
// Docker does for -P and -p CONTAINER-PORT.
func pickHostPorts(ms []rt.PortMapping) error {
	for i := range ms {
		if ms[i].HostPort != 0 {
			continue
		}
		ip := ms[i].HostIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		addr := net.JoinHostPort(ip, "0")
		var p int
		if ms[i].Protocol == "udp" {
			c, err := net.ListenPacket("udp", addr)
			if err != nil {
				return fmt.Errorf("finding a free host port for %d/udp: %w", ms[i].ContainerPort, err)
			}
			p = c.LocalAddr().(*net.UDPAddr).Port
			c.Close()
		} else {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("finding a free host port for %d/tcp: %w", ms[i].ContainerPort, err)
			}
			p = l.Addr().(*net.TCPAddr).Port
			l.Close()
		}
		ms[i].HostPort = uint16(p)
	}
	return nil
}

// portBindings are a network's published ports as the state records them.
func portBindings(n *rt.Network) []image.PortBinding {
	if n == nil {
		return nil
	}
	var out []image.PortBinding
	for _, p := range n.Publish {
		out = append(out, image.PortBinding{HostIP: p.HostIP, HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: p.Protocol})
	}
	return out
}

// formatPorts is Docker's PORTS column: 0.0.0.0:8080->80/tcp, ...
func formatPorts(ps []image.PortBinding) string {
	var out []string
	for _, p := range ps {
		ip := p.HostIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		out = append(out, fmt.Sprintf("%s->%d/%s", net.JoinHostPort(ip, strconv.Itoa(int(p.HostPort))), p.ContainerPort, p.Protocol))
	}
	return strings.Join(out, ", ")
}

// PortCmd is `tug port`.
type PortCmd struct {
	Container string `arg:"" name:"CONTAINER" help:"Container name or ID."`
	Port      string `arg:"" optional:"" name:"PRIVATE_PORT[/PROTO]" help:"Only this container port."`
}

// Run lists the container's published ports as Docker does:
// "80/tcp -> 0.0.0.0:8080", or just the host addresses of one port.
func (c *PortCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	st, err := store.LookupContainer(c.Container)
	if err != nil {
		return err
	}
	want, proto := c.Port, ""
	if want != "" {
		want, proto, _ = strings.Cut(want, "/")
		if proto == "" {
			proto = "tcp"
		}
	}
	found := false
	for _, p := range st.Ports {
		ip := p.HostIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		hostAddr := net.JoinHostPort(ip, strconv.Itoa(int(p.HostPort)))
		if want == "" {
			fmt.Fprintf(env.Stdout, "%d/%s -> %s\n", p.ContainerPort, p.Protocol, hostAddr)
			found = true
		} else if strconv.Itoa(int(p.ContainerPort)) == want && p.Protocol == proto {
			fmt.Fprintln(env.Stdout, hostAddr)
			found = true
		}
	}
	if want != "" && !found {
		return fmt.Errorf("no public port '%s/%s' published for %s", want, proto, c.Container)
	}
	return nil
}
