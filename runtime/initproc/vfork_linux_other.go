//go:build linux && !amd64

package initproc

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// rawVfork is a plain fork where tug has no assembly for a vfork (see
// vfork_linux_amd64.s): the child gets its own copy of this memory.
//
//go:nosplit
//go:norace
func rawVfork(flags uintptr) (pid uintptr, errno uintptr) {
	r1, _, e := syscall.RawSyscall6(syscall.SYS_CLONE, flags&^(unix.CLONE_VM|unix.CLONE_VFORK), 0, 0, 0, 0, 0)
	return r1, uintptr(e)
}
