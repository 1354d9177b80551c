package userns

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "unsafe" // go:linkname
)

// What tug's ELF entry point (main.entry, entry_linux_amd64.s, linked in
// with -ldflags=-E=main.entry) made of this process before Go's runtime
// started; zero without it. Defined here under main's names, which the
// entry point writes: they exist wherever this package is linked, test
// binaries too. Never written after.
var (
	//go:linkname entryRole main.entryRole
	entryRole int32
	//go:linkname entryChild main.entryChild
	entryChild int32
	//go:linkname entryParent main.entryParent
	entryParent int32
	//go:linkname entryUID main.entryUID
	entryUID int32
	//go:linkname entryGID main.entryGID
	entryGID int32
	//go:linkname entrySync main.entrySync
	entrySync [2]int32
	//go:linkname entryStatus main.entryStatus
	entryStatus [2]int32
)

// Role is what the entry point made of this process. Where the user is
// not root, the environment is not a tug child's, and the arguments hold
// the word "run", it clones a child in new user and mount namespaces
// while the process still has one thread (the one moment a Go program may
// make a user namespace); both then start Go's runtime.
type Role int32

const (
	// None: nothing was made (another command, root, a child of tug's, a
	// build without the entry point, or no user namespace here).
	None Role = iota
	// Child: the process that runs the command, in its new namespaces,
	// its ids unmapped until the parent writes its maps.
	Child
	// Parent: the process the user started; it writes the child's id
	// maps and exits with the child's status, all in this package's init.
	Parent
)

// Entry is what the entry point left: the role, both pids, the user's
// effective ids (the child cannot read them until it is mapped), and both
// ends of two close-on-exec pipes, one on which the parent says the maps
// are written (sync: '1', 'W' and a warning, or 'E' and an error), and
// one on which the child says its exit status (status: four bytes, little
// endian; RedoStatus asks the parent to run the line again without the
// entry point).
type Entry struct {
	Role                           Role
	Child, Parent                  int
	UID, GID                       int
	SyncR, SyncW, StatusR, StatusW int
}

// RedoStatus is the status a child says for a line that needs no user
// namespace of tug's: the parent execs itself with NoEntryEnv set.
const RedoStatus = ^uint32(0)

// NoEntryEnv, set, leaves the entry point alone (its prefix _TUG_ does).
const NoEntryEnv = "_TUG_NO_EARLY_ENTRY"

// EntryPoint returns what the entry point made of this process.
func EntryPoint() Entry {
	return Entry{
		Role:  Role(entryRole),
		Child: int(entryChild), Parent: int(entryParent),
		UID: int(entryUID), GID: int(entryGID),
		SyncR: int(entrySync[0]), SyncW: int(entrySync[1]),
		StatusR: int(entryStatus[0]), StatusW: int(entryStatus[1]),
	}
}

// The parent's whole part runs here, before the packages it does not need
// are initialized (about 3 ms of a start here, see the package comment):
// the child waits for its maps.
func init() {
	if e := EntryPoint(); e.Role == Parent {
		os.Exit(e.parent())
	}
}

// parent writes the child's id maps, says so (or what failed) on the sync
// pipe, forwards signals to the child, and returns its exit status. The
// child prints what there is to print: it alone knows whether its command
// line needed the namespace at all.
func (e Entry) parent() int {
	_ = syscall.Close(e.SyncR)
	_ = syscall.Close(e.StatusW)
	ForwardSignals(e.Child)
	p := NewPlan(os.Getuid(), os.Getgid())
	msg := []byte{'1'}
	if err := p.WriteMaps(e.Child); err != nil {
		msg = append([]byte{'E'}, err.Error()...)
	} else if p.Warning != "" {
		msg = append([]byte{'W'}, p.Warning...)
	}
	// A child that has ended already (a usage error) reads nothing.
	_, _ = syscall.Write(e.SyncW, msg)
	_ = syscall.Close(e.SyncW)

	status := os.NewFile(uintptr(e.StatusR), "exit-status")
	var b [4]byte
	n, _ := io.ReadFull(status, b[:])
	code := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24 // as ReportExit writes it
	if n == 4 && code != RedoStatus {
		// The child is exiting; whoever adopts it reaps it.
		return int(code)
	}
	var ws syscall.WaitStatus
	_, err := syscall.Wait4(e.Child, &ws, 0, nil)
	for errors.Is(err, syscall.EINTR) {
		_, err = syscall.Wait4(e.Child, &ws, 0, nil)
	}
	if n == 4 {
		err := syscall.Exec("/proc/self/exe", os.Args, append(os.Environ(), NoEntryEnv+"=1"))
		_, _ = os.Stderr.WriteString("Error: re-executing tug: " + err.Error() + "\n")
		return 125
	}
	switch {
	case err != nil:
		_, _ = os.Stderr.WriteString("Error: waiting for tug's namespace child: " + err.Error() + "\n")
		return 125
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// ForwardSignals passes the signals a terminal or a script sends tug
// (SIGINT, SIGTERM, SIGHUP, SIGQUIT) on to process pid, a child of this
// one, until stop is called (which waits for Go's signal thread, about
// 0.1 ms).
func ForwardSignals(pid int) (stop func()) {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	go func() {
		for s := range sigs {
			_ = syscall.Kill(pid, s.(syscall.Signal))
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(sigs)
	}
}
