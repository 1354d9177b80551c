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
