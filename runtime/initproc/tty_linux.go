package initproc

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ConsoleFD is the init's end of the socket on which it sends the
// master side of the container's pseudo-terminal (ExtraFiles[2]).
const ConsoleFD = 5

// NewPty makes a pseudo-terminal in the container's own devpts (the init
// runs after pivot_root), its slave owned by uid as in Docker.
func NewPty(uid uint32) (master, slave *os.File, err error) {
	return newPtyIn("/dev/pts", uid)
}

// newPtyIn makes a pseudo-terminal in the devpts mounted at pts.
func newPtyIn(pts string, uid uint32) (master, slave *os.File, err error) {
	master, err = os.OpenFile(pts+"/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
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
	slave, err = os.OpenFile(fmt.Sprintf("%s/%d", pts, n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("opening /dev/pts/%d: %w", n, err)
	}
	_ = unix.Fchown(int(slave.Fd()), int(uid), -1)
	return master, slave, nil
}

// setupConsole, in the init after pivot_root, makes a pseudo-terminal,
// sends its master to tug, and makes the slave the init's controlling
// terminal and standard streams.
func setupConsole(uid uint32) error {
	master, slave, err := NewPty(uid)
	if err != nil {
		return err
	}
	defer master.Close()
	defer slave.Close()
	sock := os.NewFile(ConsoleFD, "console-socket")
	defer sock.Close()
	if err := unix.Sendmsg(ConsoleFD, []byte{0}, unix.UnixRights(int(master.Fd())), nil, 0); err != nil {
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
