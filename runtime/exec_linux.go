package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tugcli/tug/runtime/initproc"
)

// initExecFD is the init's listening socket for exec requests.
const initExecFD = 6

// ExecRequest is what `tug exec` asks the container's init to start.
type ExecRequest struct {
	Args []string
	// Env is added to (and overrides) the container's environment.
	Env  []string
	Cwd  string
	User string // as for --user; empty: the container's user
	// Tty runs the command on a new pseudo-terminal made in the
	// container; its master is sent back before the exit status.
	Tty bool
	// Self runs the init's own (sealed) binary with Args, for tug's own
	// roles inside the container (tug cp), instead of looking Args[0] up.
	Self bool `json:",omitempty"`
}

// execReply is the init's answer: the exit status, or why the command
// could not start (Code 126/127/125).
type execReply struct {
	Code int
	Msg  string
}

// execRequest is a request as the init holds it, with the caller's
// standard streams and the connection to answer on.
type execRequest struct {
	ExecRequest
	conn  *net.UnixConn
	files [3]*os.File
}

func (r *execRequest) reply(err error) {
	code := 125
	var xe *ExecError
	if errors.As(err, &xe) {
		code = xe.Code
	}
	r.send(execReply{Code: code, Msg: err.Error()})
}

func (r *execRequest) exited(code int) { r.send(execReply{Code: code}) }

func (r *execRequest) send(rep execReply) {
	_ = json.NewEncoder(r.conn).Encode(rep)
	r.conn.Close()
	for _, f := range r.files {
		if f != nil {
			f.Close()
		}
	}
}

// serveExec accepts exec requests on the init's socket and hands them to
// the init's locked thread, which alone may start processes (it holds the
// container's capabilities and filter).
func serveExec(requests chan<- *execRequest) {
	l, err := net.FileListener(os.NewFile(initExecFD, "exec-socket"))
	if err != nil {
		return
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			r, err := readExecRequest(c.(*net.UnixConn))
			if err != nil {
				c.Close()
				return
			}
			requests <- r
		}()
	}
}

func readExecRequest(c *net.UnixConn) (*execRequest, error) {
	buf := make([]byte, 1<<16)
	oob := make([]byte, unix.CmsgSpace(3*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	r := &execRequest{conn: c}
	if err := json.Unmarshal(buf[:n], &r.ExecRequest); err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, errors.New("exec request without its standard streams")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 3 {
		return nil, errors.New("exec request without its standard streams")
	}
	for i, fd := range fds {
		unix.CloseOnExec(fd)
		r.files[i] = os.NewFile(uintptr(fd), "exec-stdio")
	}
	return r, nil
}

// startExec starts an exec request's command, on the init's thread.
func startExec(spec *initproc.Config, r *execRequest) (int, error) {
	uid, gid, groups := spec.UID, spec.GID, spec.AdditionalGIDs
	if r.User != "" {
		u, err := ResolveUser("/", r.User)
		if err != nil {
			return 0, err
		}
		uid, gid, groups = u.UID, u.GID, u.AdditionalGIDs
	}
	env := append(append([]string{}, spec.Env...), r.Env...)
	path, err := initproc.LookPath(r.Args[0], env)
	if r.Self {
		path, err = "/proc/self/exe", nil
	}
	if err != nil {
		code := 127
		if errors.Is(err, os.ErrPermission) {
			code = 126
		}
		return 0, &ExecError{Code: code, Msg: err.Error()}
	}
	cwd := r.Cwd
	if cwd == "" {
		cwd = spec.Cwd
	}
	attr := &syscall.ProcAttr{
		Dir:   cwd,
		Env:   env,
		Files: []uintptr{r.files[0].Fd(), r.files[1].Fd(), r.files[2].Fd()},
		Sys:   &syscall.SysProcAttr{Credential: credential(uid, gid, groups), Setsid: true},
	}
	if r.Tty {
		master, slave, err := initproc.NewPty(uid)
		if err != nil {
			return 0, err
		}
		defer slave.Close()
		_, _, err = r.conn.WriteMsgUnix([]byte{0}, unix.UnixRights(int(master.Fd())), nil)
		master.Close()
		if err != nil {
			return 0, fmt.Errorf("sending the pseudo-terminal: %w", err)
		}
		if !hasEnv(env, "TERM") {
			attr.Env = append(env, "TERM=xterm")
		}
		attr.Files = []uintptr{slave.Fd(), slave.Fd(), slave.Fd()}
		attr.Sys.Setctty, attr.Sys.Ctty = true, 0
	}
	pid, err := syscall.ForkExec(path, r.Args, attr)
	if err != nil {
		code := 126
		if errors.Is(err, unix.ENOENT) {
			code = 127
		}
		return 0, &ExecError{Code: code, Msg: fmt.Sprintf("exec %s: %v", r.Args[0], err)}
	}
	return pid, nil
}

// ListenExec makes the exec socket at path (a unix socket, mode 0600) and
// returns it as a file for Spec.ExecListener. A long path is reached
// through its directory's descriptor (socket paths have 108 bytes).
func ListenExec(path string) (*os.File, error) {
	short, done, err := shortPath(path)
	if err != nil {
		return nil, err
	}
	defer done()
	_ = os.Remove(path)
	l, err := net.Listen("unix", short)
	if err != nil {
		return nil, fmt.Errorf("listening for exec requests at %s: %w", path, err)
	}
	defer l.Close()
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, err
	}
	return l.(*net.UnixListener).File()
}

// Exec asks the init of a running container, through its exec socket, to
// run req with the given standard streams, and returns the exit status.
func Exec(socket string, req ExecRequest, stdin, stdout, stderr *os.File) (int, error) {
	short, done, err := shortPath(socket)
	if err != nil {
		return 0, err
	}
	defer done()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: short, Net: "unix"})
	if err != nil {
		return 0, fmt.Errorf("reaching the container's init at %s: %w (is the container running, and was it started with -d?)", socket, err)
	}
	defer c.Close()
	data, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	rights := unix.UnixRights(int(stdin.Fd()), int(stdout.Fd()), int(stderr.Fd()))
	if _, _, err := c.WriteMsgUnix(data, rights, nil); err != nil {
		return 0, fmt.Errorf("sending the exec request: %w", err)
	}
	var reply io.Reader = c
	var cons *console
	if req.Tty {
		// First the terminal's master (or, if the command could not
		// start, already the reply).
		buf := make([]byte, 1<<12)
		oob := make([]byte, unix.CmsgSpace(4))
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			return 0, fmt.Errorf("receiving the pseudo-terminal: %w", err)
		}
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil || len(msgs) != 1 {
				return 0, errors.New("receiving the pseudo-terminal: no descriptor came")
			}
			fds, err := unix.ParseUnixRights(&msgs[0])
			if err != nil || len(fds) != 1 {
				return 0, errors.New("receiving the pseudo-terminal: no descriptor came")
			}
			cons = startConsole(os.NewFile(uintptr(fds[0]), "pty-master"), stdin, stdout)
		} else {
			reply = io.MultiReader(bytes.NewReader(buf[:n]), c)
		}
	}
	var rep execReply
	err = json.NewDecoder(reply).Decode(&rep)
	if cons != nil {
		cons.stop()
	}
	if err != nil {
		return 0, fmt.Errorf("the container ended before the command did: %w", err)
	}
	if rep.Msg != "" {
		if rep.Code == 126 || rep.Code == 127 {
			return 0, &ExecError{Code: rep.Code, Msg: rep.Msg}
		}
		return 0, errors.New(rep.Msg)
	}
	return rep.Code, nil
}

// shortPath turns a long socket path into /proc/self/fd/N/NAME, N an
// O_PATH descriptor of its directory; done closes it.
func shortPath(p string) (string, func(), error) {
	if len(p) < 100 {
		return p, func() {}, nil
	}
	fd, err := unix.Open(filepath.Dir(p), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("opening %s: %w", filepath.Dir(p), err)
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", fd, filepath.Base(p)), func() { unix.Close(fd) }, nil
}

func hasEnv(env []string, k string) bool {
	for _, kv := range env {
		if len(kv) > len(k) && kv[:len(k)+1] == k+"=" {
			return true
		}
	}
	return false
}
