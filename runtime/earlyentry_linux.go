package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// EarlyRole is what tug's ELF entry point (main.entry, linked in with
// -ldflags=-E=main.entry) made of this process before Go's runtime
// started. An unprivileged `tug run` is cloned there, while the process
// still has one thread, into new user and mount namespaces: the child
// starts Go's runtime and parses its command line while the parent writes
// its id maps. That is Run's work without a second exec of tug, and the
// child's start overlaps the parent's (and newuidmap's) instead of
// following them.
type EarlyRole int32

const (
	// EarlyNone: nothing was made (another command, root, a child of
	// tug's, a build without the entry point, or no user namespace here).
	EarlyNone EarlyRole = iota
	// EarlyChild: the process that runs the command, in its new
	// namespaces, its ids unmapped until CompleteEarlyEntry.
	EarlyChild
	// EarlyParent: the process the user started; it writes the child's
	// id maps and exits with the child's status.
	EarlyParent
)

// EarlyEntry is what the entry point left: the role, both pids, the
// user's effective ids (the child cannot read them until it is mapped),
// and both ends of two close-on-exec pipes, one on which the parent says
// the maps are written (sync), and one on which the child says its exit
// status (status; see ReportExit).
type EarlyEntry struct {
	Role                           EarlyRole
	Child, Parent                  int
	UID, GID                       int
	SyncR, SyncW, StatusR, StatusW int
}

// early is this process's entry while it is an early child whose entry is
// not complete; nil otherwise.
var early *EarlyEntry

// envNoEarlyEntry, set, leaves the entry point alone (its prefix _TUG_
// does): the parent re-executes itself with it where the child finds it
// was made for nothing.
const envNoEarlyEntry = "_TUG_NO_EARLY_ENTRY"

// redoStatus, said on the status pipe, asks the parent to run the
// command again without the entry point.
const redoStatus = ^uint32(0)

// StartEarlyEntry takes up the role e. The parent's part runs here to the
// end: exit is true, and code is the status to exit with. A child is
// made ready for CompleteEarlyEntry.
func StartEarlyEntry(e EarlyEntry) (exit bool, code int) {
	_ = os.Unsetenv(envNoEarlyEntry)
	switch e.Role {
	case EarlyParent:
		return true, e.parent()
	case EarlyChild:
		_ = unix.Close(e.SyncW)
		_ = unix.Close(e.StatusR)
		statusFile = os.NewFile(uintptr(e.StatusW), "exit-status")
		early = &e
	}
	return false, 0
}

// parent writes the child's id maps, says so (or what failed) on the sync
// pipe, forwards signals to the child, and returns its exit status. The
// child prints what there is to print: it alone knows whether its command
// line needed the namespace at all.
func (e EarlyEntry) parent() int {
	_ = unix.Close(e.SyncR)
	_ = unix.Close(e.StatusW)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	go func() {
		for s := range sigs {
			_ = unix.Kill(e.Child, s.(syscall.Signal))
		}
	}()
	msg := []byte{'1'}
	ns, err := PlanUserNamespace()
	if err == nil {
		err = ns.writeMaps(e.Child)
	}
	switch {
	case err != nil:
		msg = append([]byte{'E'}, err.Error()...)
	case ns.Warning != "":
		msg = append([]byte{'W'}, ns.Warning...)
	}
	// A child that has ended already (a usage error) reads nothing.
	_, _ = unix.Write(e.SyncW, msg)
	_ = unix.Close(e.SyncW)

	status := os.NewFile(uintptr(e.StatusR), "exit-status")
	var b [4]byte
	n, _ := io.ReadFull(status, b[:])
	code := binary.LittleEndian.Uint32(b[:])
	if n == 4 && code != redoStatus {
		// As runChild: the child is exiting; whoever adopts it reaps it.
		return int(code)
	}
	var ws unix.WaitStatus
	_, err = unix.Wait4(e.Child, &ws, 0, nil)
	for errors.Is(err, unix.EINTR) {
		_, err = unix.Wait4(e.Child, &ws, 0, nil)
	}
	if n == 4 {
		err := unix.Exec("/proc/self/exe", os.Args, append(os.Environ(), envNoEarlyEntry+"=1"))
		fmt.Fprintf(os.Stderr, "Error: re-executing tug: %v\n", err)
		return 125
	}
	switch {
	case err != nil:
		fmt.Fprintf(os.Stderr, "Error: waiting for tug's namespace child: %v\n", err)
		return 125
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// EarlyEntryPending reports whether this process is an early child whose
// entry is not complete: its ids are unmapped, and it is to call
// CompleteEarlyEntry before it touches the store, or
// RedoWithoutEarlyEntry for a command that needs no user namespace.
func EarlyEntryPending() bool { return early != nil }

// CompleteEarlyEntry waits until the parent has written this child's id
// maps, and makes it what Run's child is once its maps are written: uid 0
// in tug's user namespace, its mounts private, the environment saying so
// and carrying the choice c. It returns the warning to print (maps of the
// user's own id alone), or what failed.
func CompleteEarlyEntry(c Choice) (warning string, err error) {
	e := early
	early = nil
	sync := os.NewFile(uintptr(e.SyncR), "userns-sync")
	msg, _ := io.ReadAll(sync)
	sync.Close()
	switch {
	case len(msg) == 0:
		return "", errors.New("tug's parent process ended before it wrote the user namespace's id maps")
	case msg[0] == 'E':
		return "", errors.New(string(msg[1:]))
	case msg[0] == 'W':
		warning = string(msg[1:])
	}
	// The entry point set the parent-death signal; the parent may have
	// died before that.
	if os.Getppid() != e.Parent {
		return "", errors.New("tug's parent process ended")
	}
	if err := makeMountsPrivate(); err != nil {
		return "", err
	}
	for _, kv := range append([]string{
		envConfigured + "=done",
		envRootlessUID + "=" + strconv.Itoa(e.UID),
		envRootlessGID + "=" + strconv.Itoa(e.GID),
	}, c.environ()...) {
		k, v, _ := strings.Cut(kv, "=")
		if err := os.Setenv(k, v); err != nil {
			return "", err
		}
	}
	return warning, nil
}

// RedoWithoutEarlyEntry ends an early child whose command needs no user
// namespace of tug's (`tug build -t run`): the parent runs the command
// line again, without the entry point. Call it before printing anything.
func RedoWithoutEarlyEntry() {
	ReportExit(int(redoStatus))
	os.Exit(0)
}

// effectiveUID is the caller's effective uid, which an early child cannot
// read until its maps are written.
func effectiveUID() int {
	if early != nil {
		return early.UID
	}
	return os.Geteuid()
}
