package initproc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A plain container (no tug as PID 1, no terminal, no chroot isolation)
// can be started without exec'ing tug's init: a locked thread of the
// caller makes the container's namespaces (see ThreadMountBase) and
// mounts, then forks a child into a new PID namespace which runs a short,
// fixed list of system calls (Fork) and execs the command. That saves
// the start of a Go program, about 3 ms of a run. What only a process
// inside the new PID namespace can do comes after the fork: /proc, then
// pivot_root, the masks, and the confinement, in the order Main uses.
//
// Between the fork and the exec the child may not allocate, grow its
// stack or call into the Go runtime (as in syscall.forkAndExecInChild1):
// everything it needs is prepared in a ForkPlan first, and the child
// only reads it and makes raw system calls.

// The child's steps, reported with the errno and an index on the error
// pipe where one fails (see ForkPlan.Failure).
const (
	stepRelease uint32 = iota + 1
	stepCgroupNamespace
	stepTerminal
	stepStdin
	stepErrorPipe
	stepCloseFDs
	stepDeathSignal
	stepProc
	stepProcNote // not a failure: /proc bound from tug's (see mountProc)
	stepChdirRoot
	stepPivotRoot
	stepSlaveOldRoot
	stepDetachOldRoot
	stepChdirNewRoot
	stepMask
	stepReadonly
	stepReadonlyRoot
	stepRlimit
	stepKeepCaps
	stepSetgroups
	stepSetgid
	stepSetuid
	stepChdir
	stepSeccomp
	stepCapget
	stepCapRaise
	stepCapBound
	stepAmbient
	stepCapset
	stepKeepCapsOff
	stepNoNewPrivs
	stepExec
)

// atFDCWD is AT_FDCWD (-100) as a system call's argument.
const atFDCWD = ^uintptr(99)

// childErrorFD is the error pipe's number in the child, which closes
// every descriptor above it.
const childErrorFD = 3

type rawMount struct {
	source, target, fstype, data *byte
	flags                        uintptr
}

type rawRlimit struct {
	resource uintptr
	limit    unix.Rlimit
}

// ForkPlan is what a forked container process needs, prepared by
// PrepareFork on the thread that forks.
type ForkPlan struct {
	spec    *Config
	errR    *os.File
	errW    int
	devNull int // dup'ed to 0 when stdin is not passed on; -1 keeps it
	// tty is the pseudo-terminal's slave that becomes the child's
	// controlling terminal and standard streams (Tty), or -1; Console
	// hands its master to the caller.
	tty    int
	master *os.File
	// release, where the caller moves the child into a cgroup after the
	// fork (Released), is what the child waits on before it goes on:
	// its cgroup namespace is made after the move. -1: no wait.
	release, releaseW int

	proc, procFS, hostProc, rootfs, dot, slash, empty, devNullPath *byte
	masks                                                          []rawMount
	maskPaths                                                      []string
	readonly                                                       []*byte
	readonlyRoot                                                   bool
	rlimits                                                        []rawRlimit
	setCreds                                                       bool
	groups                                                         []uint32
	uid, gid                                                       uintptr
	cwd                                                            *byte
	seccomp                                                        *unix.SockFprog
	seccompFirst, noNewPrivs                                       bool
	keep, capSet                                                   uint64
	argv, envv                                                     []*byte
	candidates                                                     []*byte
	candidateNames                                                 []string

	// Written by the child only (in this memory where it is a vfork:
	// the caller does not read them).
	statfs  unix.Statfs_t
	statx   unix.Statx_t
	capHdr  unix.CapUserHeader
	capData [2]unix.CapUserData
	report  [3]uint32
}

// ThreadMountBase starts the container's file system view on the calling
// thread, which the caller has locked and never unlocks (the thread ends
// with its goroutine): its own mount namespace, the root file system
// bound onto itself, /dev and /sys. /proc comes after the fork, from a
// process in the new PID namespace. It returns /proc's mount point.
func ThreadMountBase(spec *Config) (string, error) {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return "", &os.SyscallError{Syscall: "unshare(CLONE_NEWNS)", Err: err}
	}
	root := spec.Rootfs
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return "", mountErr("making / a slave mount", "/", err)
	}
	if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return "", mountErr("binding the root filesystem onto itself", root, err)
	}
	if err := mountDev(root, spec); err != nil {
		return "", err
	}
	if err := mountSys(root, spec); err != nil {
		return "", err
	}
	return mkdirIn(root, "/proc")
}

// PrepareFork makes spec's mounts, host name and loopback on the calling
// thread (after ThreadMountBase made procTarget), creates the working
// directory, and prepares what the forked child needs. stdinNull says the
// command's stdin is /dev/null rather than the caller's; waitRelease that
// the child waits for Released (after a move to its cgroup).
func PrepareFork(spec *Config, procTarget string, stdinNull, waitRelease bool) (_ *ForkPlan, err error) {
	if spec.Init || spec.Isolation == IsolationChroot || spec.NoMountNamespace {
		return nil, errors.New("internal error: a container that needs tug's init cannot be forked without it")
	}
	root := spec.Rootfs
	for _, m := range spec.Mounts {
		if err := mountOne(root, m); err != nil {
			return nil, err
		}
	}
	if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
		return nil, &os.SyscallError{Syscall: "sethostname", Err: err}
	}
	if !spec.HostNetwork {
		if err := loopbackUp(); err != nil {
			return nil, err
		}
	}
	cwd := spec.Cwd
	if cwd == "" {
		cwd = "/"
	}
	// Made now, after the mounts and before the root turns read-only, and
	// resolved inside the root file system; entered by the child after
	// pivot_root, with no host descriptor open (runc CVE-2024-21626).
	target, err := InRoot(root, cwd)
	if err == nil {
		err = os.MkdirAll(target, 0o755)
	}
	if err != nil {
		// Said with the container's paths, as Main says it.
		var pe *os.PathError
		if errors.As(err, &pe) {
			if rel, ok := strings.CutPrefix(pe.Path, root); ok {
				pe.Path = "/" + strings.TrimPrefix(rel, "/")
			}
		}
		return nil, fmt.Errorf("creating working directory %s: %w", cwd, err)
	}
	if len(spec.Args) == 0 {
		return nil, errors.New("no command to run")
	}

	p := &ForkPlan{spec: spec, devNull: -1, errW: -1, tty: -1, release: -1, releaseW: -1, uid: uintptr(spec.UID), gid: uintptr(spec.GID)}
	defer func() {
		if err != nil {
			p.Abort()
			p.Close()
		}
	}()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	p.errR = r
	if p.errW, err = movedAbove(w, "the error pipe"); err != nil {
		return nil, err
	}
	if waitRelease {
		var fds [2]int
		if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
			return nil, &os.SyscallError{Syscall: "pipe2", Err: err}
		}
		p.release, p.releaseW = fds[0], fds[1]
	}
	if spec.Tty {
		// In the container's own devpts, as setupConsole.
		pts, err := InRoot(root, "/dev/pts")
		if err != nil {
			return nil, err
		}
		master, slave, err := newPtyIn(pts, spec.UID)
		if err != nil {
			return nil, err
		}
		p.master = master
		if p.tty, err = movedAbove(slave, "the pseudo-terminal"); err != nil {
			return nil, err
		}
		stdinNull = false
	}
	if stdinNull {
		if p.devNull, err = unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			return nil, &os.PathError{Op: "open", Path: "/dev/null", Err: err}
		}
	}

	cstr := func(s string) *byte {
		b, e := unix.BytePtrFromString(s)
		if e != nil && err == nil {
			err = fmt.Errorf("%q: %w", s, e)
		}
		return b
	}
	p.proc, p.procFS, p.hostProc, p.rootfs = cstr(procTarget), cstr("proc"), cstr("/proc"), cstr(root)
	p.dot, p.slash, p.empty, p.devNullPath = cstr("."), cstr("/"), cstr(""), cstr("/dev/null")
	if !spec.Privileged {
		tmpfs, size := cstr("tmpfs"), cstr("size=0k")
		for _, m := range spec.MaskedPaths {
			// Whether a path is a directory decides its mask; /proc's
			// are the kernel's, the same in tug's /proc as in the
			// container's.
			at := m
			if !strings.HasPrefix(m, "/proc/") {
				if at, err = InRoot(root, m); err != nil {
					return nil, err
				}
			}
			fi, serr := os.Stat(at)
			if errors.Is(serr, os.ErrNotExist) {
				continue
			}
			if serr != nil {
				return nil, fmt.Errorf("masking %s: %w", m, serr)
			}
			if fi.IsDir() {
				p.masks = append(p.masks, rawMount{source: tmpfs, target: cstr(m), fstype: tmpfs, data: size, flags: unix.MS_RDONLY})
			} else {
				p.masks = append(p.masks, rawMount{source: p.devNullPath, target: cstr(m), flags: unix.MS_BIND})
			}
			p.maskPaths = append(p.maskPaths, m)
		}
		for _, ro := range spec.ReadonlyPaths {
			p.readonly = append(p.readonly, cstr(ro))
		}
	}
	p.readonlyRoot = spec.ReadOnlyRootfs
	rlimits := withNofile(spec.Rlimits)
	for _, rl := range rlimits {
		p.rlimits = append(p.rlimits, rawRlimit{resource: uintptr(rl.Type), limit: unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}})
	}

	// The credentials, as setCredentials switches them.
	if p.setCreds, err = credentialSwitch(spec); err != nil {
		return nil, err
	}
	p.groups = append([]uint32{}, spec.AdditionalGIDs...)
	if len(p.groups) == 0 {
		p.groups = []uint32{0} // a valid pointer; setgroups gets a length of 0
	}
	p.cwd = cstr(cwd)

	if spec.Seccomp != nil {
		if len(spec.Seccomp) > BPFMaxInsns {
			return nil, fmt.Errorf("loading seccomp filter: it has %d instructions (1 to %d are allowed)", len(spec.Seccomp), BPFMaxInsns)
		}
		p.seccomp = &unix.SockFprog{Len: uint16(len(spec.Seccomp)), Filter: &spec.Seccomp[0]}
	}
	p.noNewPrivs = spec.NoNewPrivileges
	p.seccompFirst = p.seccomp != nil && !p.noNewPrivs
	if p.keep, err = capabilityMask(spec.Capabilities, LastCapability()); err != nil {
		return nil, err
	}
	if spec.UID == 0 {
		p.capSet = p.keep
	}
	p.capHdr.Version = unix.LINUX_CAPABILITY_VERSION_3

	for _, a := range spec.Args {
		p.argv = append(p.argv, cstr(a))
	}
	p.argv = append(p.argv, nil)
	for _, e := range spec.Env {
		p.envv = append(p.envv, cstr(e))
	}
	p.envv = append(p.envv, nil)
	// The command is looked up as LookPath does, by trying each place.
	p.candidateNames = pathCandidates(spec.Args[0], spec.Env)
	for _, c := range p.candidateNames {
		p.candidates = append(p.candidates, cstr(c))
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// movedAbove closes f and returns a close-on-exec copy of it numbered 10
// or more: above the numbers the child dup's onto (0 to childErrorFD).
func movedAbove(f *os.File, what string) (int, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 10)
	f.Close()
	if err != nil {
		return -1, fmt.Errorf("moving %s: %w", what, err)
	}
	return fd, nil
}

// Close closes what the plan holds open; Fork's caller calls it once the
// child has its copies (and Failure has read the pipe).
func (p *ForkPlan) Close() {
	if p.errW >= 0 {
		unix.Close(p.errW)
		p.errW = -1
	}
	if p.release >= 0 {
		unix.Close(p.release)
		p.release = -1
	}
	if p.tty >= 0 {
		unix.Close(p.tty)
		p.tty = -1
	}
	if p.devNull >= 0 {
		unix.Close(p.devNull)
		p.devNull = -1
	}
}

// Console is the master side of the container's pseudo-terminal (Tty),
// now the caller's to close; nil without one.
func (p *ForkPlan) Console() *os.File {
	m := p.master
	p.master = nil
	return m
}

// Abort makes a child that waits for Released exit instead, and closes
// the pseudo-terminal's master if Console did not take it.
func (p *ForkPlan) Abort() {
	if p.master != nil {
		p.master.Close()
		p.master = nil
	}
	if p.releaseW >= 0 {
		unix.Close(p.releaseW)
		p.releaseW = -1
	}
}

// Released lets a child that waits (see PrepareFork) go on; abandon it
// with Close.
func (p *ForkPlan) Released() error {
	if p.releaseW < 0 {
		return nil
	}
	_, err := unix.Write(p.releaseW, []byte{1})
	unix.Close(p.releaseW)
	p.releaseW = -1
	if err != nil {
		return &os.SyscallError{Syscall: "releasing the container's process", Err: err}
	}
	return nil
}

// ErrorPipe is the read end of the child's error pipe: it closes at the
// exec with nothing written, or carries why the child failed.
func (p *ForkPlan) ErrorPipe() *os.File { return p.errR }

//go:linkname runtimeBeforeFork syscall.runtime_BeforeFork
func runtimeBeforeFork()

//go:linkname runtimeAfterFork syscall.runtime_AfterFork
func runtimeAfterFork()

//go:linkname runtimeAfterForkInChild syscall.runtime_AfterForkInChild
func runtimeAfterForkInChild()

// Fork starts the container's process from the calling thread (the one
// that ran ThreadMountBase and PrepareFork), in new PID and cgroup
// namespaces, and returns its pid. The child dies with that thread
// (PR_SET_PDEATHSIG).
func (p *ForkPlan) Fork() (int, error) {
	flags := uintptr(unix.CLONE_NEWPID | unix.CLONE_NEWCGROUP)
	if p.release >= 0 {
		flags = unix.CLONE_NEWPID // the child makes it once in its cgroup
	}
	syscall.ForkLock.Lock()
	pid, errno := forkChild(p, flags)
	syscall.ForkLock.Unlock()
	if errno != 0 {
		return 0, &os.SyscallError{Syscall: "clone", Err: errno}
	}
	return pid, nil
}

// forkChild forks; the child runs p's steps and execs the command, or
// reports the step that failed and exits. Nothing here between the fork
// and the exec may allocate or call anything but raw system calls. Where
// the child waits for nothing of the caller's (no release), it is a vfork
// (rawVfork): it shares this memory and this thread's stack, the thread
// stopped until the exec, as syscall's forkExec does; no page of tug's is
// copied or made copy-on-write (0.4 ms a run here). The child then writes
// only its own locals and the fields of p that are its (statfs, statx,
// capHdr, capData, report), which the caller does not read.
//
//go:noinline
//go:norace
//go:nocheckptr
func forkChild(p *ForkPlan, flags uintptr) (int, syscall.Errno) {
	var (
		r1          uintptr
		e1          syscall.Errno
		step, index uint32
		code        uintptr = 125
		i, c        int
		denied      = -1
		chdirLater  bool
		deniedDir   bool
		// errFD is the error pipe: p.errW until it is moved to
		// childErrorFD.
		errFD = uintptr(p.errW)
	)
	runtimeBeforeFork()
	if p.release < 0 {
		var e uintptr
		r1, e = rawVfork(flags | unix.CLONE_VM | unix.CLONE_VFORK | uintptr(syscall.SIGCHLD))
		e1 = syscall.Errno(e)
	} else {
		r1, _, e1 = syscall.RawSyscall6(syscall.SYS_CLONE, flags|uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	}
	if e1 != 0 || r1 != 0 {
		runtimeAfterFork()
		return int(r1), e1
	}

	// The child. Signals stay blocked until just before the exec.
	if _, _, e1 = syscall.RawSyscall(syscall.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); e1 != 0 {
		step = stepDeathSignal
		goto fail
	}
	if p.release >= 0 {
		// This copy of the write end goes first: the caller's own then
		// says go (one byte) or stop (closed, see Abort).
		syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(p.releaseW), 0, 0)
		if r1, _, e1 = syscall.RawSyscall(syscall.SYS_READ, uintptr(p.release), uintptr(unsafe.Pointer(&p.report[0])), 1); e1 != 0 || r1 != 1 {
			step = stepRelease
			goto fail
		}
		if _, _, e1 = syscall.RawSyscall(syscall.SYS_UNSHARE, unix.CLONE_NEWCGROUP, 0, 0); e1 != 0 {
			step = stepCgroupNamespace
			goto fail
		}
	}
	if p.tty >= 0 {
		// As setupConsole: a session of its own, the terminal its
		// controlling one, and its standard streams.
		if _, _, e1 = syscall.RawSyscall(syscall.SYS_SETSID, 0, 0, 0); e1 != 0 {
			step = stepTerminal
			goto fail
		}
		if _, _, e1 = syscall.RawSyscall(syscall.SYS_IOCTL, uintptr(p.tty), syscall.TIOCSCTTY, 0); e1 != 0 {
			step = stepTerminal
			goto fail
		}
		for i = 0; i <= 2; i++ {
			if _, _, e1 = syscall.RawSyscall(syscall.SYS_DUP3, uintptr(p.tty), uintptr(i), 0); e1 != 0 {
				step = stepTerminal
				goto fail
			}
		}
	}
	if p.devNull >= 0 {
		if _, _, e1 = syscall.RawSyscall(syscall.SYS_DUP3, uintptr(p.devNull), 0, 0); e1 != 0 {
			step = stepStdin
			goto fail
		}
	}
	if _, _, e1 = syscall.RawSyscall(syscall.SYS_DUP3, uintptr(p.errW), childErrorFD, syscall.O_CLOEXEC); e1 != 0 {
		step = stepErrorPipe
		goto fail
	}
	errFD = childErrorFD
	// No descriptor of tug's but the error pipe reaches the container
	// (runc CVE-2024-21626), even until the exec.
	if _, _, e1 = syscall.RawSyscall(unix.SYS_CLOSE_RANGE, childErrorFD+1, ^uintptr(0)>>32, 0); e1 != 0 {
		if e1 != syscall.ENOSYS {
			step = stepCloseFDs
			goto fail
		}
		for i = childErrorFD + 1; i < 4096; i++ {
			syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(i), 0, 0)
		}
	}

	// /proc, from inside the new PID namespace, while tug's /proc is
	// still visible (the kernel allows a fresh one in a user namespace
	// only then).
	if _, _, e1 = syscall.RawSyscall6(syscall.SYS_MOUNT, uintptr(unsafe.Pointer(p.procFS)), uintptr(unsafe.Pointer(p.proc)), uintptr(unsafe.Pointer(p.procFS)), unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, 0, 0); e1 != 0 {
		if e1 != syscall.EPERM {
			step = stepProc
			goto fail
		}
		// As mountProc: tug's own /proc, masks included.
		if _, _, e2 := syscall.RawSyscall6(syscall.SYS_MOUNT, uintptr(unsafe.Pointer(p.hostProc)), uintptr(unsafe.Pointer(p.proc)), 0, unix.MS_BIND|unix.MS_REC, 0, 0); e2 != 0 {
			step = stepProc
			goto fail
		}
		p.report[0], p.report[1], p.report[2] = stepProcNote, uint32(e1), 0
		syscall.RawSyscall(syscall.SYS_WRITE, errFD, uintptr(unsafe.Pointer(&p.report[0])), unsafe.Sizeof(p.report))
	}

	// pivot_root, as pivotRoot.
	if _, _, e1 = syscall.RawSyscall(syscall.SYS_CHDIR, uintptr(unsafe.Pointer(p.rootfs)), 0, 0); e1 != 0 {
		step = stepChdirRoot
		goto fail
	}
	if _, _, e1 = syscall.RawSyscall(syscall.SYS_PIVOT_ROOT, uintptr(unsafe.Pointer(p.dot)), uintptr(unsafe.Pointer(p.dot)), 0); e1 != 0 {
		step = stepPivotRoot
		goto fail
	}
	if _, _, e1 = syscall.RawSyscall6(syscall.SYS_MOUNT, uintptr(unsafe.Pointer(p.empty)), uintptr(unsafe.Pointer(p.dot)), uintptr(unsafe.Pointer(p.empty)), unix.MS_SLAVE|unix.MS_REC, 0, 0); e1 != 0 {
		step = stepSlaveOldRoot
		goto fail
	}
	if _, _, e1 = syscall.RawSyscall(syscall.SYS_UMOUNT2, uintptr(unsafe.Pointer(p.dot)), unix.MNT_DETACH, 0); e1 != 0 {
		step = stepDetachOldRoot
		goto fail
	}
	if _, _, e1 = syscall.RawSyscall(syscall.SYS_CHDIR, uintptr(unsafe.Pointer(p.slash)), 0, 0); e1 != 0 {
		step = stepChdirNewRoot
		goto fail
	}

	// Masks and read-only paths, as maskPath and readonlyPath.
	for i = 0; i < len(p.masks); i++ {
		m := &p.masks[i]
		if _, _, e1 = syscall.RawSyscall6(syscall.SYS_MOUNT, uintptr(unsafe.Pointer(m.source)), uintptr(unsafe.Pointer(m.target)), uintptr(unsafe.Pointer(m.fstype)), m.flags, uintptr(unsafe.Pointer(m.data)), 0); e1 != 0 && e1 != syscall.ENOENT {
			step, index = stepMask, uint32(i)
			goto fail
		}
	}
	for i = 0; i < len(p.readonly); i++ {
		if _, _, e1 = syscall.RawSyscall6(syscall.SYS_MOUNT, uintptr(unsafe.Pointer(p.readonly[i])), uintptr(unsafe.Pointer(p.readonly[i])), 0, unix.MS_BIND|unix.MS_REC, 0, 0); e1 == syscall.ENOENT {
			continue
		}
		if e1 == 0 {
			e1 = remountReadOnlyRaw(p.readonly[i], p.empty, &p.statfs)
		}
		if e1 != 0 {
			step, index = stepReadonly, uint32(i)
			goto fail
		}
	}
	if p.readonlyRoot {
		if e1 = remountReadOnlyRaw(p.slash, p.empty, &p.statfs); e1 != 0 {
			step = stepReadonlyRoot
			goto fail
		}
	}

	for i = 0; i < len(p.rlimits); i++ {
		if _, _, e1 = syscall.RawSyscall6(syscall.SYS_PRLIMIT64, 0, p.rlimits[i].resource, uintptr(unsafe.Pointer(&p.rlimits[i].limit)), 0, 0, 0); e1 != 0 {
			step, index = stepRlimit, uint32(i)
			goto fail
		}
	}
	// Keep capabilities across the switch to the container's user, so
	// that the bounding set can still be dropped (see ApplyCapabilities).
	if _, _, e1 = syscall.RawSyscall(syscall.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 1, 0); e1 != 0 {
		step = stepKeepCaps
		goto fail
	}
	// The working directory before the credentials, as runc (and Main);
	// where root may not enter it, after them.
	if _, _, e1 = syscall.RawSyscall(syscall.SYS_CHDIR, uintptr(unsafe.Pointer(p.cwd)), 0, 0); e1 != 0 {
		if e1 != syscall.EACCES && e1 != syscall.EPERM {
			step = stepChdir
			goto fail
		}
		chdirLater = true
	}
	if p.setCreds {
		if _, _, e1 = syscall.RawSyscall(syscall.SYS_SETGROUPS, uintptr(len(p.spec.AdditionalGIDs)), uintptr(unsafe.Pointer(&p.groups[0])), 0); e1 != 0 {
			step = stepSetgroups
			goto fail
		}
		if _, _, e1 = syscall.RawSyscall(syscall.SYS_SETRESGID, p.gid, p.gid, p.gid); e1 != 0 {
			step = stepSetgid
			goto fail
		}
		if _, _, e1 = syscall.RawSyscall(syscall.SYS_SETRESUID, p.uid, p.uid, p.uid); e1 != 0 {
			step = stepSetuid
			goto fail
		}
	}
	if chdirLater {
		if _, _, e1 = syscall.RawSyscall(syscall.SYS_CHDIR, uintptr(unsafe.Pointer(p.cwd)), 0, 0); e1 != 0 {
			step = stepChdir
			goto fail
		}
	}
	if p.seccompFirst {
		if _, _, e1 = syscall.RawSyscall(syscall.SYS_PRCTL, unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(p.seccomp))); e1 != 0 {
			step = stepSeccomp
			goto fail
		}
	}

	// Capabilities, as ApplyCapabilities.
	if _, _, e1 = syscall.RawSyscall(syscall.SYS_CAPGET, uintptr(unsafe.Pointer(&p.capHdr)), uintptr(unsafe.Pointer(&p.capData[0])), 0); e1 != 0 {
		step = stepCapget
		goto fail
	}
	p.capData[0].Effective, p.capData[1].Effective = p.capData[0].Permitted, p.capData[1].Permitted
	p.capData[0].Inheritable, p.capData[1].Inheritable = 0, 0
	if _, _, e1 = syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&p.capHdr)), uintptr(unsafe.Pointer(&p.capData[0])), 0); e1 != 0 {
		step = stepCapRaise
		goto fail
	}
	for c = 0; c < 64; c++ {
		if p.keep&(1<<c) != 0 {
			continue
		}
		r1, _, e1 = syscall.RawSyscall(syscall.SYS_PRCTL, unix.PR_CAPBSET_READ, uintptr(c), 0)
		if e1 == syscall.EINVAL {
			continue
		}
		if e1 == 0 && r1 != 0 {
			_, _, e1 = syscall.RawSyscall(syscall.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0)
		}
		if e1 != 0 {
			step, index = stepCapBound, uint32(c)
			goto fail
		}
	}
	if _, _, e1 = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0); e1 != 0 && e1 != syscall.EINVAL {
		step = stepAmbient
		goto fail
	}
	p.capData[0].Effective, p.capData[0].Permitted = uint32(p.capSet), uint32(p.capSet)
	p.capData[1].Effective, p.capData[1].Permitted = uint32(p.capSet>>32), uint32(p.capSet>>32)
	if _, _, e1 = syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&p.capHdr)), uintptr(unsafe.Pointer(&p.capData[0])), 0); e1 != 0 {
		step = stepCapset
		goto fail
	}
	if _, _, e1 = syscall.RawSyscall(syscall.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 0, 0); e1 != 0 {
		step = stepKeepCapsOff
		goto fail
	}
	if p.noNewPrivs {
		if _, _, e1 = syscall.RawSyscall(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); e1 != 0 {
			step = stepNoNewPrivs
			goto fail
		}
		if p.seccomp != nil {
			if _, _, e1 = syscall.RawSyscall(syscall.SYS_PRCTL, unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(p.seccomp))); e1 != 0 {
				step = stepSeccomp
				goto fail
			}
		}
	}

	// The command: each place in PATH in turn, as LookPath. The signal
	// mask goes back to the thread's for the command.
	runtimeAfterForkInChild()
	step, code = stepExec, 127
	for i = 0; i < len(p.candidates); i++ {
		_, _, e1 = syscall.RawSyscall(syscall.SYS_EXECVE, uintptr(unsafe.Pointer(p.candidates[i])), uintptr(unsafe.Pointer(&p.argv[0])), uintptr(unsafe.Pointer(&p.envv[0])))
		switch e1 {
		case syscall.ENOENT, syscall.ENOTDIR:
			continue
		case syscall.EACCES:
			if denied < 0 {
				denied = i
				// A directory is said to be one, as LookPath says.
				if _, _, e2 := syscall.RawSyscall6(unix.SYS_STATX, atFDCWD, uintptr(unsafe.Pointer(p.candidates[i])), 0, unix.STATX_TYPE, uintptr(unsafe.Pointer(&p.statx)), 0); e2 == 0 && p.statx.Mode&unix.S_IFMT == unix.S_IFDIR {
					deniedDir = true
				}
			}
			continue
		}
		index, code = uint32(i), 126
		goto fail
	}
	if denied >= 0 {
		index, code, e1 = uint32(denied), 126, syscall.EACCES
		if deniedDir {
			e1 = syscall.EISDIR
		}
	} else {
		index, e1 = 0, syscall.ENOENT
	}
	goto fail

fail:
	p.report[0], p.report[1], p.report[2] = step, uint32(e1), index
	syscall.RawSyscall(syscall.SYS_WRITE, errFD, uintptr(unsafe.Pointer(&p.report[0])), unsafe.Sizeof(p.report))
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, code, 0, 0)
	}
}

// Failure reads the child's error pipe to its end (the exec closes it)
// and returns why the child failed, as Main would have reported it, or
// nil; notes go to note. Its error carries the exit code Main would have
// used (see Report): code is 125, 126 or 127.
func (p *ForkPlan) Failure(raw []byte, note func(format string, args ...any)) (code int, err error) {
	for len(raw) >= 12 {
		step := nativeUint32(raw[0:4])
		errno := syscall.Errno(nativeUint32(raw[4:8]))
		index := int(nativeUint32(raw[8:12]))
		raw = raw[12:]
		if step == stepProcNote {
			note("/proc: a fresh proc mount was refused (%v), as where tug's own /proc has masked paths (a container's): bound tug's /proc instead, which shows tug's processes", errno)
			continue
		}
		return p.describe(step, errno, index)
	}
	if len(raw) > 0 {
		return 125, fmt.Errorf("container process failed: short report %x", raw)
	}
	return 0, nil
}

func nativeUint32(b []byte) uint32 { return binary.NativeEndian.Uint32(b) }

// remountReadOnlyRaw makes the mount at target read-only, keeping the
// flags the kernel locks in a user namespace, as remountReadOnly does; for
// the forked child (no stack growth: nosplit, raw system calls only).
//
//go:nosplit
//go:norace
//go:nocheckptr
func remountReadOnlyRaw(target, empty *byte, st *unix.Statfs_t) syscall.Errno {
	if _, _, e := syscall.RawSyscall(syscall.SYS_STATFS, uintptr(unsafe.Pointer(target)), uintptr(unsafe.Pointer(st)), 0); e != 0 {
		return e
	}
	var locked uintptr
	for i := 0; i < len(lockedFlags); i++ {
		if st.Flags&lockedFlags[i].st != 0 {
			locked |= lockedFlags[i].ms
		}
	}
	_, _, e := syscall.RawSyscall6(syscall.SYS_MOUNT, uintptr(unsafe.Pointer(empty)), uintptr(unsafe.Pointer(target)), uintptr(unsafe.Pointer(empty)), unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|locked, 0, 0)
	return e
}

// stepWhat names the steps whose failure needs no more than the errno,
// in Main's words (an array: nothing to build as tug starts).
var stepWhat = [...]string{
	stepRelease: "waiting to be moved into the container's cgroup", stepTerminal: "making the pseudo-terminal the command's", stepCgroupNamespace: "unshare(CLONE_NEWCGROUP)",
	stepStdin: "preparing the container's descriptors", stepErrorPipe: "preparing the container's descriptors",
	stepCloseFDs: "preparing the container's descriptors", stepDeathSignal: "prctl(PR_SET_PDEATHSIG)",
	stepChdirRoot: "entering the root filesystem", stepChdirNewRoot: "entering the new root",
	stepKeepCaps: "prctl(PR_SET_KEEPCAPS)", stepSetgroups: "setgroups", stepSeccomp: "loading seccomp filter",
	stepCapget: "reading the thread's capabilities", stepCapRaise: "raising the effective capabilities",
	stepAmbient: "clearing the ambient capability set", stepCapset: "setting the permitted and effective capabilities",
	stepKeepCapsOff: "clearing PR_SET_KEEPCAPS", stepNoNewPrivs: "prctl(PR_SET_NO_NEW_PRIVS)",
}

// describe says what failed in Main's words, with the exit code Main
// would have used.
func (p *ForkPlan) describe(step uint32, errno syscall.Errno, index int) (int, error) {
	spec := p.spec
	pick := func(list []string) string {
		if index >= 0 && index < len(list) {
			return list[index]
		}
		return "?"
	}
	if int(step) < len(stepWhat) && stepWhat[step] != "" {
		return 125, fmt.Errorf("%s: %w", stepWhat[step], errno)
	}
	switch step {
	case stepProc:
		return 125, mountErr("mounting /proc", filepath.Join(spec.Rootfs, "proc"), errno)
	case stepPivotRoot:
		return 125, mountErr("pivot_root", spec.Rootfs, errno)
	case stepSlaveOldRoot:
		return 125, mountErr("making the old root a slave", "/", errno)
	case stepDetachOldRoot:
		return 125, mountErr("detaching the old root", "/", errno)
	case stepMask:
		return 125, mountErr("masking", pick(p.maskPaths), errno)
	case stepReadonly:
		return 125, mountErr("binding read-only", pick(spec.ReadonlyPaths), errno)
	case stepReadonlyRoot:
		return 125, mountErr("remounting read-only", "/", errno)
	case stepRlimit:
		if rlimits := withNofile(spec.Rlimits); index < len(rlimits) {
			rl := rlimits[index]
			return 125, fmt.Errorf("setting rlimit %d to %d:%d: %w", rl.Type, rl.Soft, rl.Hard, errno)
		}
	case stepSetgid:
		return 125, fmt.Errorf("switching to group %d: %w (is it mapped in the user namespace?)", spec.GID, errno)
	case stepSetuid:
		return 125, fmt.Errorf("switching to user %d: %w (is it mapped in the user namespace?)", spec.UID, errno)
	case stepChdir:
		cwd := spec.Cwd
		if cwd == "" {
			cwd = "/"
		}
		return 125, fmt.Errorf("entering working directory %s: %w", cwd, errno)
	case stepCapBound:
		return 125, fmt.Errorf("dropping %s from the bounding set: %w", capabilityName(index), errno)
	case stepExec:
		file := spec.Args[0]
		switch {
		case errno == syscall.ENOENT && !strings.Contains(file, "/"):
			return 127, fmt.Errorf("%q: executable file not found in $PATH", file)
		case errno == syscall.ENOENT:
			return 127, fmt.Errorf("%q: %w", file, &os.PathError{Op: "stat", Path: file, Err: errno})
		case errno == syscall.EACCES:
			return 126, fmt.Errorf("%q: %w", pick(p.candidateNames), os.ErrPermission)
		case errno == syscall.EISDIR:
			return 126, fmt.Errorf("%q: is a directory: %w", pick(p.candidateNames), os.ErrPermission)
		}
		return 126, fmt.Errorf("exec %s: %w", file, errno)
	}
	return 125, fmt.Errorf("container process failed at step %d: %w", step, errno)
}
