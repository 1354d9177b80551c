package build

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	rt "github.com/tugcli/tug/runtime"
)

// SSHAgent is what RUN --mount=type=ssh (and ADD of a git@ repository)
// reaches through tug build --ssh: a running agent's socket, or keys
// read from files into an agent of tug's own. Steps get a socket of
// their own that passes requests on; they may list keys and sign, not
// add, remove or lock (BuildKit's read-only agent).
type SSHAgent struct {
	socket  string
	keyring agent.ExtendedAgent
}

// ParseSSH parses --ssh's value as Docker does: ID[=SOCKET|KEY[,KEY...]];
// ID alone (usually "default") means $SSH_AUTH_SOCK. Keys are read now,
// as BuildKit reads them when the build starts.
func ParseSSH(spec string) (string, *SSHAgent, error) {
	id, rest, _ := strings.Cut(spec, "=")
	if id == "" {
		return "", nil, fmt.Errorf("--ssh %q: want ID[=SOCKET|KEY[,KEY...]], e.g. default", spec)
	}
	var paths []string
	for _, p := range strings.Split(rest, ",") {
		if p != "" {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		sock := os.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return "", nil, fmt.Errorf("--ssh %s: SSH_AUTH_SOCK is not set: start an ssh-agent (eval $(ssh-agent); ssh-add), or give a socket or key file: --ssh %s=PATH", spec, id)
		}
		paths = []string{sock}
	}
	a := &SSHAgent{}
	keyring := agent.NewKeyring().(agent.ExtendedAgent)
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", nil, err
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return "", nil, fmt.Errorf("--ssh %s: %w", id, err)
		}
		if fi.Mode()&os.ModeSocket != 0 {
			if len(paths) > 1 {
				return "", nil, fmt.Errorf("--ssh %s: give one agent socket, or key files, not both", id)
			}
			a.socket = abs
			continue
		}
		raw, err := readKey(abs)
		if err != nil {
			return "", nil, fmt.Errorf("--ssh %s: reading %s: %w", id, abs, err)
		}
		key, err := ssh.ParseRawPrivateKey(raw)
		var pe *ssh.PassphraseMissingError
		if errors.As(err, &pe) {
			return "", nil, fmt.Errorf("--ssh %s: %s is protected by a passphrase: add it to an ssh-agent (ssh-add %s) and use --ssh %s", id, abs, abs, id)
		}
		if err != nil {
			return "", nil, fmt.Errorf("--ssh %s: %s is neither an agent socket nor a private key: %w", id, abs, err)
		}
		if err := keyring.Add(agent.AddedKey{PrivateKey: key}); err != nil {
			return "", nil, fmt.Errorf("--ssh %s: %s: %w", id, abs, err)
		}
	}
	if a.socket == "" {
		a.keyring = keyring
	}
	return id, a, nil
}

// readKey reads a key file (at most 100 KiB, as BuildKit).
func readKey(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 100<<10))
}

// readOnlyAgent refuses what a build step has no business doing to the
// user's agent, as BuildKit's does.
type readOnlyAgent struct{ agent.ExtendedAgent }

var errReadOnlyAgent = errors.New("not allowed in a build step: tug gives steps a read-only agent")

func (readOnlyAgent) Add(agent.AddedKey) error                 { return errReadOnlyAgent }
func (readOnlyAgent) Remove(ssh.PublicKey) error               { return errReadOnlyAgent }
func (readOnlyAgent) RemoveAll() error                         { return errReadOnlyAgent }
func (readOnlyAgent) Lock([]byte) error                        { return errReadOnlyAgent }
func (readOnlyAgent) Unlock([]byte) error                      { return errReadOnlyAgent }
func (readOnlyAgent) Extension(string, []byte) ([]byte, error) { return nil, errReadOnlyAgent }

// sshListener is a socket that serves an SSHAgent to whoever connects.
type sshListener struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
}

// listen makes the socket p (mode 0600, owned by uid:gid) and serves
// the agent on it until close.
func (a *SSHAgent) listen(p string, uid, gid int, mode os.FileMode) (*sshListener, error) {
	ln, err := net.Listen("unix", p)
	if err != nil {
		return nil, fmt.Errorf("making the ssh agent socket: %w", err)
	}
	err = os.Chmod(p, mode)
	if err == nil && (uid != 0 || gid != 0) {
		err = os.Chown(p, uid, gid)
	}
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("making the ssh agent socket: %w", err)
	}
	l := &sshListener{ln: ln, conns: map[net.Conn]bool{}}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.mu.Lock()
			l.conns[c] = true
			l.mu.Unlock()
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				a.serve(c)
				l.mu.Lock()
				delete(l.conns, c)
				l.mu.Unlock()
			}()
		}
	}()
	return l, nil
}

// serve answers one connection: from the keyring, or through a
// connection of its own to the user's agent.
func (a *SSHAgent) serve(c net.Conn) {
	defer c.Close()
	if a.keyring != nil {
		_ = agent.ServeAgent(readOnlyAgent{a.keyring}, c)
		return
	}
	up, err := net.Dial("unix", a.socket)
	if err != nil {
		return // the step sees the agent hang up
	}
	defer up.Close()
	_ = agent.ServeAgent(readOnlyAgent{agent.NewClient(up)}, c)
}

// close stops serving and ends the connections still open.
func (l *sshListener) close() {
	l.ln.Close()
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}

// sshMount gives a step the agent of an ssh mount: a socket in runDir
// bound at the target (default /run/buildkit/ssh_agent.N, N counting the
// step's ssh mounts), owned by uid:gid with mode (default 0:0, 0600).
// Without --ssh for its id the mount is left out, or with required=true
// the step fails.
func (b *builder) sshMount(r *runMounts, m *instructions.Mount, n int, file string) (string, error) {
	if m.Source != "" {
		return "", fmt.Errorf("%s: RUN --mount=type=ssh does not take source=", b.o.DockerfileName)
	}
	id := m.CacheID
	if id == "" {
		id = "default"
	}
	target := m.Target
	if target == "" {
		target = fmt.Sprintf("/run/buildkit/ssh_agent.%d", n)
	}
	target = path.Clean(target)
	a, ok := b.o.SSH[id]
	if !ok {
		if m.Required {
			return "", fmt.Errorf("%s: RUN --mount=type=ssh: ssh agent %q is required but was not given (tug build --ssh %s, which uses $SSH_AUTH_SOCK)", b.o.DockerfileName, id, id)
		}
		return target, nil
	}
	uid, gid, mode := 0, 0, os.FileMode(0o600)
	if m.UID != nil {
		uid = int(*m.UID)
	}
	if m.GID != nil {
		gid = int(*m.GID)
	}
	if m.Mode != nil {
		mode = os.FileMode(*m.Mode)
	}
	l, err := a.listen(file, uid, gid, mode)
	if err != nil {
		return "", err
	}
	r.undo = append(r.undo, l.close)
	r.mounts = append(r.mounts, rt.Mount{Type: "bind", Source: file, Destination: target})
	r.targets = append(r.targets, target)
	return target, nil
}
