//go:build e2e

package main_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tugcli/tug/fixture"
)

// hostServer serves "hello from the host" on the host's loopback only, and
// returns its port.
func hostServer(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello from the host\n")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// freePort is a TCP port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// httpGet fetches url, retrying while the server inside starts.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// webServer is a shell command that serves body on port 80 with busybox
// httpd in the foreground.
func webServer(body string) []string {
	return []string{"sh", "-c", "mkdir -p /www && echo " + body + " > /www/index.html && exec httpd -f -p 80 -h /www"}
}

// The default network: a server inside is reached from the host through
// -p (as root, rootless, and with a single-id mapping), `tug port` and ps
// show the mapping, and the forwarder is gone with the container.
func TestNetworkPublish(t *testing.T) {
	for mode, u := range users(t) {
		t.Run(mode, func(t *testing.T) {
			store := pulled(t, u)
			port := freePort(t)
			mustTug(t, u, store, append([]string{"run", "-d", "--name", "web", "-p", fmt.Sprintf("%d:80", port), busybox}, webServer("served-from-"+mode)...)...)
			defer tug(t, u, store, "rm", "-f", "web")
			for _, host := range []string{"127.0.0.1", "localhost"} {
				if got := httpGet(t, fmt.Sprintf("http://%s:%d/", host, port)); strings.TrimSpace(got) != "served-from-"+mode {
					t.Fatalf("GET through %s:%d = %q", host, port, got)
				}
			}
			if got := strings.TrimSpace(mustTug(t, u, store, "port", "web").Stdout); got != fmt.Sprintf("80/tcp -> 0.0.0.0:%d", port) {
				t.Fatalf("tug port web = %q", got)
			}
			if got := strings.TrimSpace(mustTug(t, u, store, "port", "web", "80/tcp").Stdout); got != fmt.Sprintf("0.0.0.0:%d", port) {
				t.Fatalf("tug port web 80/tcp = %q", got)
			}
			if got := mustTug(t, u, store, "ps", "--format", "{{.Names}} {{.Ports}}").Stdout; !strings.Contains(got, fmt.Sprintf("web 0.0.0.0:%d->80/tcp", port)) {
				t.Fatalf("ps does not show the port:\n%s", got)
			}
			// A second container cannot take the same port: one line, 125.
			res := tug(t, u, store, "run", "--rm", "-p", fmt.Sprintf("%d:80", port), busybox, "true")
			if res.Code != 125 || !strings.Contains(res.Stderr, "in use") {
				t.Fatalf("publishing a taken port: exit %d, stderr %q", res.Code, res.Stderr)
			}
			mustTug(t, u, store, "rm", "-f", "web")
			if portOpen(port) {
				t.Fatal("the published port still answers after the container was removed")
			}
		})
	}
}

// -P publishes the image's EXPOSEd ports on free host ports; -p with an
// address binds only there.
func TestNetworkPublishAllAndAddress(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := fixture.TempDirFor(t, u)
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM "+busybox+"\nEXPOSE 80\n"), 0o644)
	mustTug(t, u, store, "build", "-q", "-t", "exposed", ctx)
	mustTug(t, u, store, append([]string{"run", "-d", "--name", "all", "-P", "exposed"}, webServer("by-P")...)...)
	defer tug(t, u, store, "rm", "-f", "all")
	addr := strings.TrimSpace(mustTug(t, u, store, "port", "all", "80").Stdout)
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("tug port all 80 = %q", addr)
	}
	if got := httpGet(t, "http://127.0.0.1:"+p+"/"); strings.TrimSpace(got) != "by-P" {
		t.Fatalf("GET through -P port %s = %q", p, got)
	}
	port := freePort(t)
	mustTug(t, u, store, append([]string{"run", "-d", "--name", "lo", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), busybox}, webServer("loopback-only")...)...)
	defer tug(t, u, store, "rm", "-f", "lo")
	if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); strings.TrimSpace(got) != "loopback-only" {
		t.Fatalf("GET = %q", got)
	}
	if got := strings.TrimSpace(mustTug(t, u, store, "port", "lo").Stdout); got != fmt.Sprintf("80/tcp -> 127.0.0.1:%d", port) {
		t.Fatalf("tug port lo = %q", got)
	}
	for _, bad := range []string{"80/sctp", "x:80", "1.2.3:80:80", "70000:80"} {
		res := tug(t, u, store, "run", "--rm", "-p", bad, busybox, "true")
		if res.Code != 125 || !strings.Contains(res.Stderr, "invalid -p") {
			t.Fatalf("-p %s: exit %d, stderr %q", bad, res.Code, res.Stderr)
		}
	}
}

// A client inside reaches a server on the host's loopback through
// host.containers.internal (and --add-host NAME:host-gateway), in each
// user-mode network, rootless.
func TestNetworkReachesHost(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	port := hostServer(t)
	for _, mode := range []string{"private", "pasta", "slirp4netns"} {
		t.Run(mode, func(t *testing.T) {
			if _, err := exec.LookPath(mode); mode != "private" && err != nil {
				fixture.RequireRoot(t) // fails in CI, skips elsewhere
				t.Skipf("%s is not installed", mode)
			}
			script := fmt.Sprintf("wget -qO- http://host.containers.internal:%d/ && wget -qO- http://myhost:%d/", port, port)
			got := runOut(t, u, store, "--network", mode, "--add-host", "myhost:host-gateway", busybox, "sh", "-c", script)
			if got != "hello from the host\nhello from the host" {
				t.Fatalf("the container got %q from the host", got)
			}
		})
	}
}

// DNS goes through the network's forwarder, which knows the host's name;
// /etc/resolv.conf and /etc/hosts say so; --dns and --dns-search replace
// what resolv.conf names.
func TestNetworkDNSAndEtcFiles(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	got := runOut(t, u, store, "--hostname", "box", busybox, "sh", "-c", "cat /etc/resolv.conf /etc/hosts; nslookup host.containers.internal")
	for _, want := range []string{"nameserver 10.0.2.2", "10.0.2.100\tbox", "10.0.2.254\thost.containers.internal host.docker.internal", "Address: 10.0.2.254"} {
		if !strings.Contains(got, want) {
			t.Fatalf("missing %q in:\n%s", want, got)
		}
	}
	got = runOut(t, u, store, "--dns", "192.0.2.53", "--dns-search", "example.test", busybox, "cat", "/etc/resolv.conf")
	if !strings.Contains(got, "nameserver 192.0.2.53") || strings.Contains(got, "10.0.2.2") || !strings.Contains(got, "search example.test") {
		t.Fatalf("resolv.conf with --dns:\n%s", got)
	}
	res := tug(t, u, store, "run", "--rm", "--dns", "not-an-ip", busybox, "true")
	if res.Code != 125 || !strings.Contains(res.Stderr, "--dns") {
		t.Fatalf("--dns not-an-ip: exit %d, stderr %q", res.Code, res.Stderr)
	}
}

// --network none has only lo; --network host shares the host's.
func TestNetworkNoneAndHost(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	got := runOut(t, u, store, "--network", "none", busybox, "sh", "-c", "ls /sys/class/net")
	if got != "lo" {
		t.Fatalf("--network none has interfaces %q", got)
	}
	got = runOut(t, u, store, busybox, "sh", "-c", "ls /sys/class/net")
	if got != "lo\ntap0" {
		t.Fatalf("the default network has interfaces %q", got)
	}
	port := hostServer(t)
	got = runOut(t, u, store, "--network", "host", busybox, "wget", "-qO-", fmt.Sprintf("http://127.0.0.1:%d/", port))
	if got != "hello from the host" {
		t.Fatalf("--network host got %q", got)
	}
	res := tug(t, u, store, "run", "--rm", "--network", "bogus", busybox, "true")
	if res.Code != 125 || !strings.Contains(res.Stderr, `unknown network "bogus"`) {
		t.Fatalf("--network bogus: exit %d, stderr %q", res.Code, res.Stderr)
	}
}

// Build steps get the private network by default: RUN reaches the host.
func TestNetworkInBuild(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	port := hostServer(t)
	ctx := fixture.TempDirFor(t, u)
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(fmt.Sprintf("FROM %s\nRUN wget -qO /got http://host.containers.internal:%d/\nCMD cat /got\n", busybox, port)), 0o644)
	mustTug(t, u, store, "build", "-q", "-t", "netbuild", ctx)
	if got := runOut(t, u, store, "netbuild"); got != "hello from the host" {
		t.Fatalf("the image holds %q", got)
	}
	res := tug(t, u, store, "build", "-q", "--no-cache", "--network", "none", ctx)
	if res.Code == 0 {
		t.Fatal("RUN reached the host with --network none")
	}
}

// Nothing that serves a container's network outlives it: not when the
// container exits, not when tug is killed.
func TestNetworkHelpersDieWithTug(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	port := freePort(t)
	for i, mode := range []string{"private", "pasta", "slirp4netns"} {
		t.Run(mode, func(t *testing.T) {
			if _, err := exec.LookPath(mode); mode != "private" && err != nil {
				fixture.RequireRoot(t)
				t.Skipf("%s is not installed", mode)
			}
			secs := fmt.Sprint(4105 + i)
			cmd := u.Command(t.Context(), tugBin, append(append([]string{}, store...), "run", "--rm", "--network", mode, "-p", fmt.Sprintf("%d:80", port), busybox, "sleep", secs)...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for !processRunning("sleep\x00"+secs+"\x00") && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if !processRunning("sleep\x00" + secs + "\x00") {
				t.Fatal("the container never started")
			}
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err != nil {
				t.Fatalf("the published port is not open while the container runs: %v", err)
			} else {
				c.Close()
			}
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			deadline = time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				if !processRunning("sleep\x00"+secs+"\x00") && len(helpersOf(u.UID)) == 0 && !portOpen(port) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if processRunning("sleep\x00" + secs + "\x00") {
				t.Fatal("the container outlived tug")
			}
			if left := helpersOf(u.UID); len(left) > 0 {
				t.Fatalf("network helpers outlived tug: %v", left)
			}
			if portOpen(port) {
				t.Fatal("the published port still answers after tug was killed")
			}
		})
	}
}

// portOpen reports whether something listens on the loopback's port.
func portOpen(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// helpersOf lists the pasta and slirp4netns processes uid runs.
func helpersOf(uid uint32) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name(), &st) != nil || st.Uid != uid {
			continue
		}
		comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
		if c := strings.TrimSpace(string(comm)); strings.HasPrefix(c, "pasta") || c == "slirp4netns" {
			out = append(out, e.Name()+":"+c)
		}
	}
	return out
}

// Where /dev/net/tun cannot be opened (mode 0600, as on this machine
// before the tests widen it), the default network fails with one line
// that names the device, its mode and the fix; --network none still runs.
// The narrow device is bound over the real one in a mount namespace of
// the test's own.
func TestNetworkTunNotAccessible(t *testing.T) {
	fixture.RequireRoot(t)
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	dir := t.TempDir()
	node := filepath.Join(dir, "tun")
	if err := syscall.Mknod(node, syscall.S_IFCHR|0o600, int(10<<8|200)); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) fixture.Result {
		script := fmt.Sprintf("mount --bind %s /dev/net/tun && exec setpriv --reuid=%d --regid=%d --clear-groups \"$@\"", node, u.UID, u.GID)
		full := append([]string{"-m", "--propagation", "private", "sh", "-c", script, "sh", tugBin}, append(append([]string{}, store...), args...)...)
		return fixture.Run(t, fixture.User{Name: "root", Home: u.Home, Env: []string{"HOME=" + u.Home, "USER=" + u.Name}}, "unshare", full...)
	}
	res := run("run", "--rm", busybox, "true")
	lines := strings.Split(strings.TrimSpace(res.Stderr), "\n")
	if res.Code != 125 || len(lines) != 1 || !strings.HasPrefix(lines[0], "Error: ") ||
		!strings.Contains(lines[0], "/dev/net/tun") || !strings.Contains(lines[0], "0600") || !strings.Contains(lines[0], "--network none") {
		t.Fatalf("exit %d, stderr:\n%s", res.Code, res.Stderr)
	}
	if res := run("run", "--rm", "--network", "none", busybox, "echo", "ok"); res.Code != 0 || strings.TrimSpace(res.Stdout) != "ok" {
		t.Fatalf("--network none: exit %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
}

// A helper that is not installed is named with its package, in one line.
func TestNetworkHelperMissing(t *testing.T) {
	u := fixture.NoSubIDUser(t)
	u.Env = append(u.Env, "PATH=/nonexistent")
	store := pulled(t, u)
	for mode, pkg := range map[string]string{"pasta": "passt", "slirp4netns": "slirp4netns"} {
		res := tug(t, u, store, "run", "--rm", "--network", mode, busybox, "true")
		if res.Code != 125 || !strings.Contains(res.Stderr, "install the "+pkg+" package") {
			t.Fatalf("--network %s without it: exit %d, stderr %q", mode, res.Code, res.Stderr)
		}
	}
}

// A detached container's ports work through pasta and slirp4netns too, and
// `run -d` returns (the helper must not hold the monitor's report pipe).
func TestNetworkDetachedWithHelpers(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	for _, mode := range []string{"pasta", "slirp4netns"} {
		t.Run(mode, func(t *testing.T) {
			if _, err := exec.LookPath(mode); err != nil {
				fixture.RequireRoot(t)
				t.Skipf("%s is not installed", mode)
			}
			port := freePort(t)
			mustTug(t, u, store, append([]string{"run", "-d", "--name", "w-" + mode, "--network", mode, "-p", fmt.Sprintf("%d:80", port), busybox}, webServer("via-"+mode)...)...)
			defer tug(t, u, store, "rm", "-f", "w-"+mode)
			if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); strings.TrimSpace(got) != "via-"+mode {
				t.Fatalf("GET = %q", got)
			}
			mustTug(t, u, store, "rm", "-f", "w-"+mode)
			deadline := time.Now().Add(5 * time.Second)
			for len(helpersOf(u.UID)) > 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if left := helpersOf(u.UID); len(left) > 0 {
				t.Fatalf("helpers left after rm -f: %v", left)
			}
		})
	}
}
