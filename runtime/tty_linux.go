package runtime

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// initConsoleFD is the init's end of the socket on which it sends the
// master side of the container's pseudo-terminal (ExtraFiles[2]).
const initConsoleFD = 5

// newPty makes a pseudo-terminal in the container's own devpts (the init
// runs after pivot_root), its slave owned by uid as in Docker.
func newPty(uid uint32) (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening /dev/ptmx in the container: %w", err)
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlocking the pseudo-terminal: %w", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("reading the pseudo-terminal number: %w", err)
	}
	slavePath := fmt.Sprintf("/dev/pts/%d", n)
	slave, err = os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("opening %s: %w", slavePath, err)
	}
	_ = unix.Fchown(int(slave.Fd()), int(uid), -1)
	return master, slave, nil
}

// setupConsole, in the init after pivot_root, makes a pseudo-terminal,
// sends its master to tug, and makes the slave the init's controlling
// terminal and standard streams.
func setupConsole(uid uint32) error {
	master, slave, err := newPty(uid)
	if err != nil {
		return err
	}
	defer master.Close()
	defer slave.Close()
	sock := os.NewFile(initConsoleFD, "console-socket")
	defer sock.Close()
	if err := unix.Sendmsg(initConsoleFD, []byte{0}, unix.UnixRights(int(master.Fd())), nil, 0); err != nil {
		return fmt.Errorf("sending the pseudo-terminal to tug: %w", err)
	}
	if _, err := unix.Setsid(); err != nil {
		return &os.SyscallError{Syscall: "setsid", Err: err}
	}
	if err := unix.IoctlSetInt(int(slave.Fd()), unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("making %s the controlling terminal: %w", slave.Name(), err)
	}
	for fd := 0; fd <= 2; fd++ {
		if err := unix.Dup3(int(slave.Fd()), fd, 0); err != nil {
			return &os.SyscallError{Syscall: "dup3", Err: err}
		}
	}
	return nil
}

// receiveConsole reads the master fd the init sends.
func receiveConsole(sock *os.File) (*os.File, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("receiving the container's pseudo-terminal: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receiving the container's pseudo-terminal: no descriptor came")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("receiving the container's pseudo-terminal: %v", err)
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// console connects the caller's terminal to the container's: raw mode
// while it runs, the window size now and on every SIGWINCH, input and
// output copied. The returned function restores the terminal.
type console struct {
	master  *os.File
	inFd    int
	state   *term.State
	sigs    chan os.Signal
	outDone chan struct{}
}

func startConsole(master *os.File, stdin io.Reader, stdout io.Writer) *console {
	c := &console{master: master, inFd: -1, sigs: make(chan os.Signal, 4), outDone: make(chan struct{})}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		c.inFd = int(f.Fd())
		if st, err := term.MakeRaw(c.inFd); err == nil {
			c.state = st
		}
	}
	c.resize()
	signal.Notify(c.sigs, syscall.SIGWINCH)
	go func() {
		for range c.sigs {
			c.resize()
		}
	}()
	if stdin != nil {
		go func() { _, _ = io.Copy(master, stdin) }()
	}
	go func() {
		// EIO when the last slave closes: the container is gone.
		_, _ = io.Copy(stdout, master)
		close(c.outDone)
	}()
	return c
}

// resize copies the caller's window size to the container's terminal.
func (c *console) resize() {
	fd := c.inFd
	if fd < 0 {
		fd = int(os.Stdout.Fd())
	}
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil {
		return
	}
	_ = unix.IoctlSetWinsize(int(c.master.Fd()), unix.TIOCSWINSZ, ws)
}

// stop waits for the container's output to drain and restores the terminal.
func (c *console) stop() {
	<-c.outDone
	signal.Stop(c.sigs)
	close(c.sigs)
	if c.state != nil {
		_ = term.Restore(c.inFd, c.state)
	}
	c.master.Close()
}
