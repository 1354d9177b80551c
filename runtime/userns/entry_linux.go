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
	//go:linkname entryStage main.entryStage
	entryStage int32
	//go:linkname entryStatusN main.entryStatusN
	entryStatusN int32
	//go:linkname entryCode main.entryCode
	entryCode uint32
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

	// What the entry point did of the parent's part from the id-map
	// cache (see cache_linux.go) before it started Go's runtime; at
	// StatusRead, how many bytes of the child's status it read (N) and
	// the status (Code); at HelpersFailed, the failed helper's wait
	// status (Code).
	Stage Stage
	N     int
	Code  uint32
}

// Stage is how far the entry point took the parent's part.
type Stage int32

const (
	// NotCached: nothing (no usable cache); Go's parent does it all.
	NotCached Stage = iota
	// HelpersFailed: it started the cached helpers and one failed (or
	// could not be started); the maps may be half written. Its ends of
	// the status pipe and the sync pipe's read end are closed.
	HelpersFailed
	// StatusRead: it wrote the maps, told the child ('C' and the cache
	// file on the sync pipe), closed its ends of both pipes but the
	// status pipe's read end, and read the child's status: short, or
	// RedoStatus (a whole status ends the parent there).
	StatusRead
)

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
		Stage: Stage(entryStage), N: int(entryStatusN), Code: entryCode,
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
// line needed the namespace at all. The entry point may have done part of
// it (e.Stage).
func (e Entry) parent() int {
	n, code := e.N, e.Code
	switch e.Stage {
	case HelpersFailed:
		_ = syscall.Kill(e.Child, syscall.SIGKILL)
		var ws syscall.WaitStatus
		_, _ = wait4(e.Child, &ws)
		if hs := syscall.WaitStatus(e.Code); hs.Signaled() {
			// Killed: by a Ctrl-C, which reaches the whole process
			// group (the child too); tug ends as the child would.
			return 128 + int(hs.Signal())
		}
		if n, code := readStatus(e.StatusR); n == 4 && code != RedoStatus {
			// The child ended before its maps (a line that does
			// not parse, said already); the helper failed on it.
			return int(code)
		}
		// The child cannot be given other maps: run the line again
		// without the entry point, which works the plan out anew.
		RemoveCache()
		return redo()
	case StatusRead:
		ForwardSignals(e.Child)
	default:
		_ = syscall.Close(e.SyncR)
		_ = syscall.Close(e.StatusW)
		ForwardSignals(e.Child)
		p := NewPlan(os.Getuid(), os.Getgid())
		msg := []byte{'1'}
		err := p.WriteMaps(e.Child)
		if err != nil {
			msg = append([]byte{'E'}, err.Error()...)
		} else if p.Warning != "" {
			msg = append([]byte{'W'}, p.Warning...)
		}
		// A child that has ended already (a usage error) reads nothing.
		_, _ = syscall.Write(e.SyncW, msg)
		_ = syscall.Close(e.SyncW)
		if err == nil {
			// For the entry point of the next run, while the child runs.
			SaveCache(p)
		}
		n, code = readStatus(e.StatusR)
	}
	if n == 4 && code != RedoStatus {
		// The child is exiting; whoever adopts it reaps it.
		return int(code)
	}
	var ws syscall.WaitStatus
	_, err := wait4(e.Child, &ws)
	if n == 4 {
		return redo()
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

// readStatus reads the child's status from the status pipe's read end
// fd: the bytes read (4 for a whole status) and the status.
func readStatus(fd int) (n int, code uint32) {
	var b [4]byte
	n, _ = io.ReadFull(os.NewFile(uintptr(fd), "exit-status"), b[:])
	return n, uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24 // as ReportExit writes it
}

// wait4 waits for process pid, again where a signal interrupts it.
func wait4(pid int, ws *syscall.WaitStatus) (int, error) {
	for {
		wpid, err := syscall.Wait4(pid, ws, 0, nil)
		if !errors.Is(err, syscall.EINTR) {
			return wpid, err
		}
	}
}

// redo runs this command line again without the entry point; it returns
// only where that fails.
func redo() int {
	err := syscall.Exec("/proc/self/exe", os.Args, append(os.Environ(), NoEntryEnv+"=1"))
	_, _ = os.Stderr.WriteString("Error: re-executing tug: " + err.Error() + "\n")
	return 125
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
