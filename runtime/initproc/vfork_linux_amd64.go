package initproc

// rawVfork clones with flags, CLONE_VM|CLONE_VFORK among them: the child
// runs on this stack while this thread waits (vfork_linux_amd64.s). It
// returns the pid in the caller, 0 in the child, or the errno.
func rawVfork(flags uintptr) (pid uintptr, errno uintptr)
