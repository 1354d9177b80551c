package initproc

import (
	"fmt"
	stdruntime "runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BPFMaxInsns is the kernel's limit on a seccomp program's length.
const BPFMaxInsns = 4096

// LoadSeccomp installs filter on the calling thread only (no TSYNC): the
// caller has locked the goroutine to its OS thread and execs from it, so
// that the filter passes to the container's process.
//
// It does not set no_new_privs: Docker does not by default, so that setuid
// and file-capability binaries keep working in the container. Without
// no_new_privs the kernel requires CAP_SYS_ADMIN (in the thread's user
// namespace) to load a filter, so either the caller sets PR_SET_NO_NEW_PRIVS
// first (--security-opt no-new-privileges), or it loads the filter before
// ApplyCapabilities drops CAP_SYS_ADMIN, as runc does.
func LoadSeccomp(filter []unix.SockFilter) error {
	if len(filter) == 0 || len(filter) > BPFMaxInsns {
		return fmt.Errorf("loading seccomp filter: it has %d instructions (1 to %d are allowed)", len(filter), BPFMaxInsns)
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	_, _, errno := unix.Syscall(unix.SYS_PRCTL, unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)))
	stdruntime.KeepAlive(filter)
	switch {
	case errno == 0:
		return nil
	case errno == unix.EACCES:
		return fmt.Errorf("loading seccomp filter: %w (set no_new_privs first, or load it while the thread still has CAP_SYS_ADMIN)", errno)
	case errno == unix.EINVAL:
		return fmt.Errorf("loading seccomp filter: %w (the kernel rejected the program, or has no CONFIG_SECCOMP_FILTER)", errno)
	}
	return fmt.Errorf("loading seccomp filter: %w", errno)
}
