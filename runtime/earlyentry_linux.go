package runtime

import (
	"errors"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/tugcli/tug/runtime/userns"
)

// An unprivileged `tug run` built with -ldflags=-E=main.entry is cloned
// into new user and mount namespaces by tug's ELF entry point, before Go's
// runtime starts (see package userns): the child starts Go's runtime and
// parses its command line while the parent, in package userns's init,
// writes its id maps. The child then goes on as Run's child would, with
// no second exec of tug, and its start overlaps the parent's (and
// newuidmap's) instead of following them.

// early is this process's entry while it is an early child whose entry is
// not complete; nil otherwise.
var early *userns.Entry

// earlyPlan is the plan this early child works out meanwhile, to check
// the maps the entry point wrote from its cache against (see package
// userns's cache_linux.go); mapsCached says the maps came from there.
var (
	earlyPlan  chan *userns.Plan
	mapsCached bool
)

// StartEarlyEntry makes an early child ready for CompleteEarlyEntry, and
// takes the switch the parent re-executes itself with out of the
// environment (not for anything this tug starts).
func StartEarlyEntry() {
	_ = os.Unsetenv(userns.NoEntryEnv)
	if e := userns.EntryPoint(); e.Role == userns.Child {
		_ = unix.Close(e.SyncW)
		_ = unix.Close(e.StatusR)
		statusFile = os.NewFile(uintptr(e.StatusW), "exit-status")
		early = &e
		earlyPlan = make(chan *userns.Plan, 1)
		go func() { earlyPlan <- userns.HelpersPlan(e.UID, e.GID) }()
	}
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
	case msg[0] == 'C':
		// Maps the entry point wrote from its cache: those of the plan
		// tug works out now, or the line runs again (no entry point)
		// and the next run's cache is this plan's.
		if p := <-earlyPlan; !userns.CacheCurrent(msg[1:], p) {
			userns.SaveCache(p)
			RedoWithoutEarlyEntry()
		}
		mapsCached = true
	}
	// The entry point set the parent-death signal; the parent may have
	// died before that.
	if os.Getppid() != e.Parent {
		return "", errors.New("tug's parent process ended")
	}
	if err := makeMountsPrivate(); err != nil {
		return "", err
	}
	for _, kv := range namespaceEnv(e.UID, e.GID, c) {
		k, v, _ := strings.Cut(kv, "=")
		if err := os.Setenv(k, v); err != nil {
			return "", err
		}
	}
	return warning, nil
}

// EarlyMapsCached reports whether this process's id maps were written by
// tug's entry point, from the cache at userns.MapCachePath.
func EarlyMapsCached() bool { return mapsCached }

// RedoWithoutEarlyEntry ends an early child whose command needs no user
// namespace of tug's (`tug build -t run .`): the parent runs the command
// line again without the entry point. Call it before printing anything.
func RedoWithoutEarlyEntry() {
	ReportExit(int(userns.RedoStatus))
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
