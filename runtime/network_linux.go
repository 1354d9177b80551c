package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	stdruntime "runtime"
	"strconv"
	"sync"
	"time"

	"github.com/containers/gvisor-tap-vsock/pkg/types"
	"github.com/containers/gvisor-tap-vsock/pkg/virtualnetwork"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Network modes a container's own network namespace can be wired with.
const (
	// NetPrivate is user-mode networking inside tug itself (gVisor's
	// netstack, as gvisor-tap-vsock and RootlessKit v3 embed it).
	NetPrivate = "private"
	// NetPasta and NetSlirp run the external helper of that name.
	NetPasta = "pasta"
	NetSlirp = "slirp4netns"
)

// The private network's addresses: slirp4netns's layout, so that users
// and scripts find the addresses they know.
const (
	privateSubnet  = "10.0.2.0/24"
	PrivateGateway = "10.0.2.2"   // the gateway, and the DNS forwarder
	PrivateIP      = "10.0.2.100" // the container
	// PrivateHostIP is where the container reaches the host's loopback
	// (host.containers.internal).
	PrivateHostIP = "10.0.2.254"
	privateMTU    = 65520
	tapName       = "tap0"
)

// Network is how a container's network namespace reaches the outside.
type Network struct {
	Mode    string
	Publish []PortMapping `json:",omitempty"`
}

// PortMapping is one published port: HostIP:HostPort on the host reaches
// ContainerPort in the container.
type PortMapping struct {
	HostIP        string `json:",omitempty"`
	HostPort      uint16
	ContainerPort uint16
	Protocol      string // "tcp" or "udp"
}

func (p PortMapping) String() string {
	ip := p.HostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	return fmt.Sprintf("%d/%s -> %s", p.ContainerPort, p.Protocol, net.JoinHostPort(ip, strconv.Itoa(int(p.HostPort))))
}

// HostAddress is the address at which the container reaches the host's
// loopback, for host.containers.internal; "" when it cannot.
func (n *Network) HostAddress() string {
	switch n.Mode {
	case NetPrivate:
		return PrivateHostIP
	case NetSlirp:
		return "10.0.2.2"
	case NetPasta:
		// pasta maps the default gateway's address to the host.
		return hostGateway()
	}
	return ""
}

// Nameserver is the DNS server for the container's resolv.conf; "" keeps
// the host's.
func (n *Network) Nameserver() string {
	switch n.Mode {
	case NetPrivate:
		return PrivateGateway
	case NetSlirp:
		return "10.0.2.3"
	case NetPasta:
		return hostGateway()
	}
	return ""
}

// ContainerIP is the container's address on its network; "" if unknown.
func (n *Network) ContainerIP() string {
	switch n.Mode {
	case NetPrivate, NetSlirp:
		return PrivateIP
	}
	return ""
}

// hostGateway is the IPv4 address of the host's default gateway, or "".
func hostGateway() string {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return ""
	}
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw != nil {
			return r.Gw.String()
		}
	}
	return ""
}

// network is a running network for one container; close stops it.
type network struct {
	close func()
}

func (n *network) stop() {
	if n != nil && n.close != nil {
		n.close()
	}
}

// startNetwork wires the network namespace of process pid as n says; a
// nil n leaves it with loopback only.
func startNetwork(n *Network, pid int) (*network, error) {
	if n == nil {
		return nil, nil
	}
	switch n.Mode {
	case NetPrivate:
		return startPrivate(n, pid)
	case NetSlirp:
		return startSlirp(n, pid)
	case NetPasta:
		return startPasta(n, pid)
	}
	return nil, fmt.Errorf("unknown network mode %q: use private, host, none, pasta or slirp4netns", n.Mode)
}

// inNetns runs f on a thread that has joined pid's network namespace;
// the thread is never reused afterwards.
func inNetns(pid int, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		stdruntime.LockOSThread()
		// No UnlockOSThread: the thread ends with this goroutine.
		ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("joining the container's network namespace: %w", err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// openTap creates tap0 in pid's network namespace, gives it the private
// network's address and default route, and returns its file.
func openTap(pid int) (*os.File, error) {
	var tap *os.File
	err := inNetns(pid, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return tunError(err)
		}
		ifr, err := unix.NewIfreq(tapName)
		if err != nil {
			unix.Close(fd)
			return err
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("creating %s in the container: %w", tapName, err)
		}
		tap = os.NewFile(uintptr(fd), "/dev/net/tun")
		if err := configureLink(); err != nil {
			tap.Close()
			return err
		}
		return nil
	})
	return tap, err
}

// tunError explains a failure to open /dev/net/tun.
func tunError(err error) error {
	msg := fmt.Sprintf("opening /dev/net/tun for the container's private network: %v", err)
	if fi, serr := os.Stat("/dev/net/tun"); serr == nil && errors.Is(err, unix.EACCES) {
		msg += fmt.Sprintf(" (the device is mode %04o; most distributions ship it 0666: 'sudo chmod 0666 /dev/net/tun'), or use --network none or host", fi.Mode().Perm())
	} else if errors.Is(err, unix.ENOENT) {
		msg += " (load the tun module: 'sudo modprobe tun'; in a container, give it the host's: tug run -v /dev/net/tun:/dev/net/tun), or use --network none or host"
	}
	return errors.New(msg)
}

// configureLink gives tap0 (in the calling thread's network namespace)
// its address, MTU and default route.
func configureLink() error {
	h, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("configuring the container's network: %w", err)
	}
	defer h.Close()
	link, err := h.LinkByName(tapName)
	if err != nil {
		return fmt.Errorf("configuring the container's network: %w", err)
	}
	addr, err := netlink.ParseAddr(PrivateIP + "/24")
	if err != nil {
		return err
	}
	steps := []struct {
		what string
		do   func() error
	}{
		{"setting its MTU", func() error { return h.LinkSetMTU(link, privateMTU) }},
		{"adding its address", func() error { return h.AddrAdd(link, addr) }},
		{"bringing it up", func() error { return h.LinkSetUp(link) }},
		{"adding the default route", func() error {
			return h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.ParseIP(PrivateGateway)})
		}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("configuring the container's %s: %s: %w", tapName, s.what, err)
		}
	}
	return nil
}

// startPrivate connects pid's network namespace to a user-mode network
// served by this process.
func startPrivate(n *Network, pid int) (*network, error) {
	vn, err := privateNetwork(n.Publish)
	if err != nil {
		return nil, err
	}
	tap, err := openTap(pid)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	conn := &tapConn{f: tap, cancel: cancel}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = vn.AcceptBess(ctx, conn)
	}()
	return &network{close: func() {
		_ = conn.Close()
		select {
		case <-done:
		case <-time.After(time.Second):
		}
		unexpose(vn, n.Publish)
	}}, nil
}

// unexpose closes the host's listeners of published ports, through the
// network's own services API (it has no other way to stop them).
func unexpose(vn *virtualnetwork.VirtualNetwork, publish []PortMapping) {
	if len(publish) == 0 {
		return
	}
	mux := vn.ServicesMux()
	for local, proto := range forwardAddrs(publish) {
		body, _ := json.Marshal(types.UnexposeRequest{Local: local, Protocol: proto})
		req := httptest.NewRequest(http.MethodPost, "/services/forwarder/unexpose", bytes.NewReader(body))
		mux.ServeHTTP(httptest.NewRecorder(), req)
	}
}

// forwardAddrs are the host addresses of published ports.
func forwardAddrs(publish []PortMapping) map[string]types.TransportProtocol {
	out := map[string]types.TransportProtocol{}
	for _, p := range publish {
		ip := p.HostIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		out[net.JoinHostPort(ip, strconv.Itoa(int(p.HostPort)))] = types.TransportProtocol(p.Protocol)
	}
	return out
}

var (
	sharedNet     *virtualnetwork.VirtualNetwork
	sharedNetErr  error
	sharedNetOnce sync.Once
)

// privateNetwork returns a user-mode network: one shared by every
// container of this process that publishes nothing (build steps), or a
// new one that forwards the published ports.
func privateNetwork(publish []PortMapping) (*virtualnetwork.VirtualNetwork, error) {
	if len(publish) == 0 {
		sharedNetOnce.Do(func() { sharedNet, sharedNetErr = newPrivateNetwork(nil) })
		return sharedNet, sharedNetErr
	}
	return newPrivateNetwork(publish)
}

func newPrivateNetwork(publish []PortMapping) (*virtualnetwork.VirtualNetwork, error) {
	cfg := &types.Configuration{
		MTU:               privateMTU,
		Subnet:            privateSubnet,
		GatewayIP:         PrivateGateway,
		GatewayMacAddress: "5a:94:ef:e4:0c:dd",
		GatewayVirtualIPs: []string{PrivateHostIP},
		NAT:               map[string]string{PrivateHostIP: "127.0.0.1"},
		DNS: []types.Zone{{
			Name: "containers.internal.",
			Records: []types.Record{
				{Name: "host", IP: net.ParseIP(PrivateHostIP)},
				{Name: "gateway", IP: net.ParseIP(PrivateGateway)},
			},
		}, {
			Name:    "docker.internal.",
			Records: []types.Record{{Name: "host", IP: net.ParseIP(PrivateHostIP)}},
		}},
		Forwards: map[string]string{},
	}
	for _, p := range publish {
		ip := p.HostIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		local := net.JoinHostPort(ip, strconv.Itoa(int(p.HostPort)))
		if p.Protocol == "udp" {
			local = "udp:" + local
		}
		cfg.Forwards[local] = net.JoinHostPort(PrivateIP, strconv.Itoa(int(p.ContainerPort)))
	}
	vn, err := virtualnetwork.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting the container's network: %w%s", err, portHint(err))
	}
	return vn, nil
}

// portHint suggests a remedy for a port that cannot be bound.
func portHint(err error) string {
	switch {
	case errors.Is(err, unix.EADDRINUSE):
		return " (the port is in use on the host: publish another one)"
	case errors.Is(err, unix.EACCES):
		return " (ports below 1024 need root, or 'sudo sysctl net.ipv4.ip_unprivileged_port_start=0')"
	}
	return ""
}

// tapConn is a tap device as the switch's packet connection: one
// Ethernet frame per read or write.
type tapConn struct {
	f      *os.File
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
}

// quietFrame is handed to the switch after close instead of an error
// (which it would log): a frame from and to addresses nobody has, which
// it drops, after which it sees its context is done and returns.
var quietFrame = []byte{0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0, 0}

func (c *tapConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *tapConn) Read(b []byte) (int, error) {
	n, err := c.f.Read(b)
	if err != nil && c.isClosed() {
		return copy(b, quietFrame), nil
	}
	return n, err
}

func (c *tapConn) Write(b []byte) (int, error) {
	n, err := c.f.Write(b)
	if err != nil && (c.isClosed() || errors.Is(err, unix.EIO)) {
		// The container is gone: drop the frame.
		return len(b), nil
	}
	return n, err
}

func (c *tapConn) Close() error {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if already {
		return nil
	}
	c.cancel()
	return c.f.Close()
}

type tapAddr struct{}

func (tapAddr) Network() string { return "tap" }
func (tapAddr) String() string  { return tapName }

func (c *tapConn) LocalAddr() net.Addr                { return tapAddr{} }
func (c *tapConn) RemoteAddr() net.Addr               { return tapAddr{} }
func (c *tapConn) SetDeadline(t time.Time) error      { return c.f.SetDeadline(t) }
func (c *tapConn) SetReadDeadline(t time.Time) error  { return c.f.SetReadDeadline(t) }
func (c *tapConn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }

// helperPath finds an external network helper, or says which package
// has it.
func helperPath(name, pkg string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("--network %s needs %s, which is not installed: install the %s package (e.g. 'sudo apt-get install %s'), or use the default --network private", name, name, pkg, pkg)
	}
	return p, nil
}
