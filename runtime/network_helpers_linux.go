package runtime

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// startSlirp wires pid's network namespace with slirp4netns, run as a
// child of this process that exits when the exit pipe closes: when the
// container ends or when this process dies.
func startSlirp(n *Network, pid int) (*network, error) {
	path, err := helperPath("slirp4netns", "slirp4netns")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tug-slirp4netns-")
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "api.sock")
	readyR, readyW, err := os.Pipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer readyR.Close()
	exitR, exitW, err := os.Pipe()
	if err != nil {
		readyW.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	var stderr bytes.Buffer
	cmd := exec.Command(path, "--configure", "--mtu=65520", "--ready-fd=3", "--exit-fd=4",
		"--api-socket", sock, strconv.Itoa(pid), tapName)
	cmd.ExtraFiles = []*os.File{readyW, exitR}
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	readyW.Close()
	exitR.Close()
	if err != nil {
		exitW.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting slirp4netns: %w", err)
	}
	stop := func() {
		exitW.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		os.RemoveAll(dir)
	}
	// slirp4netns writes "1" on the ready pipe once tap0 is configured,
	// or exits.
	b := make([]byte, 1)
	if _, err := readyR.Read(b); err != nil || b[0] != '1' {
		stop()
		return nil, fmt.Errorf("slirp4netns failed to set up the container's network: %s", helperStderr(&stderr))
	}
	for _, p := range n.Publish {
		if err := slirpForward(sock, p); err != nil {
			stop()
			return nil, err
		}
	}
	return &network{close: stop}, nil
}

// slirpForward asks slirp4netns (through its API socket) to forward one
// published port.
func slirpForward(sock string, p PortMapping) error {
	ip := p.HostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	req := map[string]any{
		"execute": "add_hostfwd",
		"arguments": map[string]any{
			"proto": p.Protocol, "host_addr": ip, "host_port": p.HostPort, "guest_port": p.ContainerPort,
		},
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return fmt.Errorf("publishing port %s: reaching slirp4netns: %w", p, err)
	}
	defer conn.Close()
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return fmt.Errorf("publishing port %s: %w", p, err)
	}
	_ = conn.(*net.UnixConn).CloseWrite()
	var resp struct {
		Error *struct {
			Desc string `json:"desc"`
		} `json:"error"`
	}
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&resp); err != nil {
		return fmt.Errorf("publishing port %s: reading slirp4netns's answer: %w", p, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("publishing port %s: slirp4netns: %s", p, resp.Error.Desc)
	}
	return nil
}

// startPasta wires pid's network namespace with pasta, which copies the
// host's addresses and routes into it. pasta runs in the foreground as a
// child of this process and dies with it; it needs the namespace as a
// file outside /proc, so it is bound onto one in a directory of our own.
func startPasta(n *Network, pid int) (*network, error) {
	path, err := helperPath("pasta", "passt")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tug-pasta-")
	if err != nil {
		return nil, err
	}
	nsFile := filepath.Join(dir, "netns")
	if err := os.WriteFile(nsFile, nil, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := unix.Mount(fmt.Sprintf("/proc/%d/ns/net", pid), nsFile, "", unix.MS_BIND, ""); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("binding the container's network namespace for pasta: %w", err)
	}
	cleanup := func() {
		_ = unix.Unmount(nsFile, unix.MNT_DETACH)
		os.RemoveAll(dir)
	}
	args := []string{"--config-net", "--foreground", "--quiet", "--runas", "0:0", "--netns", nsFile,
		"-T", "none", "-U", "none"}
	var tcp, udp []string
	for _, p := range n.Publish {
		spec := fmt.Sprintf("%d:%d", p.HostPort, p.ContainerPort)
		if p.HostIP != "" {
			spec = p.HostIP + "/" + spec
		}
		if p.Protocol == "udp" {
			udp = append(udp, "-u", spec)
		} else {
			tcp = append(tcp, "-t", spec)
		}
	}
	if len(tcp) == 0 {
		tcp = []string{"-t", "none"}
	}
	if len(udp) == 0 {
		udp = []string{"-u", "none"}
	}
	args = append(append(args, tcp...), udp...)
	var out bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	// The caller's thread is locked for the container's own Pdeathsig.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		cleanup()
		return nil, fmt.Errorf("starting pasta: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
		cleanup()
	}
	// pasta has configured the namespace once it has a default route.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ok, _ := hasDefaultRoute(pid); ok {
			return &network{close: stop}, nil
		}
		select {
		case <-exited:
			cleanup()
			return nil, fmt.Errorf("pasta failed to set up the container's network: %s", helperStderr(&out))
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("pasta did not set up the container's network within 10s: %s", helperStderr(&out))
		}
	}
}

// hasDefaultRoute reports whether pid's network namespace has an IPv4
// default route.
func hasDefaultRoute(pid int) (bool, error) {
	found := false
	err := inNetns(pid, func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		routes, err := h.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if r.Dst == nil || r.Dst.IP.IsUnspecified() {
				found = true
			}
		}
		return nil
	})
	return found, err
}

// helperStderr is the gist of what a network helper printed.
func helperStderr(b *bytes.Buffer) string {
	s := strings.TrimSpace(b.String())
	if s == "" {
		return "it exited without saying why"
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, "; ")
}
