package runtime

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	stdruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tugcli/tug/runtime/initproc"
	"github.com/tugcli/tug/runtime/userns"
)

// The environment of the re-exec'd child. The three _CONTAINERS_ names are
// the ones Podman's own re-exec sets: go.podman.io/storage reads them to
// decide that the process is rootless and whose per-user storage to open.
const (
	envStage = "_TUG_USERNS_STAGE"
	// envPrivateMounts marks root's re-exec into a mount namespace of its own.
	envPrivateMounts = "_TUG_PRIVATE_MOUNTS"
	// envParent is the pid of the tug that started the namespace child.
	envParent = "_TUG_PARENT_PID"
	// envStatusFD is the descriptor the child reports its exit status on.
	envStatusFD    = "_TUG_STATUS_FD"
	envConfigured  = "_CONTAINERS_USERNS_CONFIGURED"
	envRootlessUID = "_CONTAINERS_ROOTLESS_UID"
	envRootlessGID = "_CONTAINERS_ROOTLESS_GID"
)

// syncFD is the child's end of the pipe on which the parent says the id maps
// are written (ExtraFiles[0] becomes fd 3).
const syncFD = 3

// envAmbient is set in the environment of a child cloned with an ambient
// capability set (see Run); TUG_USERNS_STAGE1=exec clones it without, as
// tug falls back to where the kernel refuses one, so tests can cover that way.
const envAmbient = "_TUG_USERNS_AMBIENT"

// NameProcess names this process "tug" where the kernel named it after
// the path it was exec'd by: "exe" for /proc/self/exe, "4" for
// /proc/self/fd/4.
func NameProcess() {
	b, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		return
	}
	c := strings.TrimSpace(string(b))
	if c == "exe" || c != "" && strings.Trim(c, "0123456789") == "" {
		_ = os.WriteFile("/proc/self/comm", []byte("tug"), 0)
	}
}

// IDMap is one line of a uid_map or gid_map: Size ids starting at ContainerID
// inside the namespace are HostID... outside it.
type IDMap = userns.IDMap

// UserNamespace is what tug will set up: the plan of its id maps, and the
// isolation it is entered for.
type UserNamespace struct {
	userns.Plan
	// Choice is the isolation the namespace is entered for, passed on to
	// the tug re-executed inside it.
	Choice Choice

	// direct: tug writes the maps itself, with CAP_SETUID and CAP_SETGID
	// in its own namespace (PlanNestedUserNamespace).
	direct bool
}

// InUserNamespace reports whether this process is tug's re-exec'd child:
// uid 0 inside the user namespace that tug made for an unprivileged user
// (or for root that may not mount, see PlanNestedUserNamespace).
func InUserNamespace() bool {
	return os.Getenv(envConfigured) != "" && os.Geteuid() == 0
}

// NeedsUserNamespace reports whether a command that touches the store must
// first re-exec itself into a user namespace.
func NeedsUserNamespace() bool {
	return os.Geteuid() != 0 && !InUserNamespace()
}

// RunInMountNamespace re-executes this binary with the same arguments in a
// new mount namespace (root only; rootless tug has one with its user
// namespace) and returns its exit status. The child keeps the isolation c.
func RunInMountNamespace(ctx context.Context, args []string, c Choice) (int, error) {
	cmd := exec.Command("/proc/self/exe", args[1:]...)
	cmd.Args[0] = args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(append(os.Environ(), envPrivateMounts+"=1", envStage+"=2", envParent+"="+strconv.Itoa(os.Getpid())), c.environ()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	return runChild(cmd, func(int) error { return nil })
}

// SingleIDMapping reports whether the current user namespace maps only one
// id (tug's fallback when there is no subordinate range or no newuidmap).
// Outside a user namespace it is false.
func SingleIDMapping() bool {
	if !InUserNamespace() {
		return false
	}
	m, err := ReadIDMap("/proc/self/uid_map")
	return err == nil && len(m) == 1 && m[0].Size == 1
}

// ReadIDMap parses a /proc/PID/uid_map or gid_map file.
func ReadIDMap(path string) ([]IDMap, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []IDMap
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		var m IDMap
		var e1, e2, e3 error
		m.ContainerID, e1 = strconv.Atoi(f[0])
		m.HostID, e2 = strconv.Atoi(f[1])
		m.Size, e3 = strconv.Atoi(f[2])
		if err := errors.Join(e1, e2, e3); err != nil {
			return nil, fmt.Errorf("parsing %s: %w", path, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// PlanUserNamespace works out the id maps for the calling user (see
// userns.NewPlan).
func PlanUserNamespace() (*UserNamespace, error) {
	return &UserNamespace{Plan: *userns.NewPlan(os.Getuid(), os.Getgid())}, nil
}

// PlanNestedUserNamespace is PlanUserNamespace for uid 0 that may not
// mount: root in a container without CAP_SYS_ADMIN, itself in a user
// namespace or not. The new namespace maps every id this one has onto
// itself, and tug writes the maps directly: CAP_SETUID and CAP_SETGID in
// this namespace allow it, no newuidmap needed. Without those two only
// id 0 is mapped, and Warning says so.
func PlanNestedUserNamespace() (*UserNamespace, error) {
	uids, gids, err := HostIDMaps()
	if err != nil {
		return nil, fmt.Errorf("reading this process's id maps: %w", err)
	}
	ns := &UserNamespace{Plan: userns.Plan{User: "root"}, direct: true}
	if !hasEffectiveCap(unix.CAP_SETUID) || !hasEffectiveCap(unix.CAP_SETGID) {
		ns.UIDMap = []IDMap{{ContainerID: 0, HostID: 0, Size: 1}}
		ns.GIDMap = []IDMap{{ContainerID: 0, HostID: 0, Size: 1}}
		ns.Warning = "no CAP_SETUID or CAP_SETGID to map more ids into tug's user namespace: using single-id mapping (every file in an image is owned by root, chown is ignored)"
		return ns, nil
	}
	for _, m := range uids {
		ns.UIDMap = append(ns.UIDMap, IDMap{ContainerID: m.ContainerID, HostID: m.ContainerID, Size: m.Size})
	}
	for _, m := range gids {
		ns.GIDMap = append(ns.GIDMap, IDMap{ContainerID: m.ContainerID, HostID: m.ContainerID, Size: m.Size})
	}
	return ns, nil
}

// Run re-executes this binary with the same arguments in a new user and
// mount namespace, writes the id maps, lets the child go on, and returns its
// exit status. The child's CLI runs as uid 0 inside; see EnterUserNamespaceRole.
func (ns *UserNamespace) Run(ctx context.Context, args []string) (int, error) {
	if ns.direct || len(ns.UIDMap) == 1 {
		// One id (the user's own) needs no helper: the maps are written
		// before the child execs tug, which so starts as uid 0 with its
		// capabilities, no_new_privs or not.
		return ns.runDirect(args)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("creating user namespace sync pipe: %w", err)
	}
	defer r.Close()
	defer w.Close()

	// The child is tug itself, cloned with every capability in its
	// ambient set: those survive its exec while its ids are still
	// unmapped, so it need not exec again once the maps exist, and its Go
	// start overlaps newuidmap and newgidmap. Where the kernel refuses
	// the ambient set, the child waits with none and execs itself again
	// after the maps (stage 1), gaining its capabilities as uid 0.
	ambient := os.Getenv("TUG_USERNS_STAGE1") != "exec"
	code, err := ns.runStaged(args, r, w, ambient, nil, nil)
	var se *startError
	if ambient && errors.As(err, &se) && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL)) {
		code, err = ns.runStaged(args, r, w, false, nil, nil)
	}
	return code, err
}

// runStaged is Run's child, cloned with the ambient capability set or not.
// hold, if not nil, is called once the child's maps are written, before it
// is let go: it returns the environment entries the child is to take on
// (those set or changed here since the clone), or an error to end it.
// forked, if not nil, is closed once the child is cloned.
func (ns *UserNamespace) runStaged(args []string, r, w *os.File, ambient bool, forked chan struct{}, hold func() ([]string, error)) (int, error) {
	cmd := exec.Command("/proc/self/exe", args[1:]...)
	cmd.Args[0] = args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{r}
	cmd.Env = append(append(os.Environ(), envStage+"=1", envParent+"="+strconv.Itoa(os.Getpid())),
		namespaceEnv(ns.UID, ns.GID, ns.Choice)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		// The child dies with us.
		Pdeathsig: syscall.SIGKILL,
	}
	if ambient {
		cmd.Env = append(cmd.Env, envAmbient+"=1")
		// Read once: each reads /proc.
		last := initproc.LastCapability()
		for c := 0; c <= last; c++ {
			cmd.SysProcAttr.AmbientCaps = append(cmd.SysProcAttr.AmbientCaps, uintptr(c))
		}
	}
	return runChild(cmd, func(pid int) error {
		if forked != nil {
			close(forked)
		}
		if err := ns.WriteMaps(pid); err != nil {
			return err
		}
		// "1", then NUL-terminated environment entries; the child
		// reads to the end.
		msg := []byte{'1'}
		if hold != nil {
			late, err := hold()
			if err != nil {
				return err
			}
			for _, kv := range late {
				msg = append(append(msg, kv...), 0)
			}
		}
		_, err := w.Write(msg)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("releasing user namespace child: %w", err)
		}
		return nil
	})
}

// EarlyUserNamespace is Run's child started before the command line is
// parsed: its start (a Go runtime and tug's package init, about 3 ms) and
// the id-map helpers overlap the parse. It waits, its maps written, until
// Use lets it go or Discard ends it.
type EarlyUserNamespace struct {
	args []string
	// environ is this process's environment when the child was cloned
	// with it.
	environ []string
	release chan earlyRelease
	done    chan struct{}
	code    int
	err     error
	settled bool
}

type earlyRelease struct {
	env     []string
	discard bool
}

var errEarlyDiscarded = errors.New("the early user namespace child was not needed")

// StartEarlyUserNamespace starts Run's child for args now, where Run would
// clone one with subordinate ids: for an unprivileged user, outside tug's
// namespaces, with a range and the helpers. It returns nil where it does
// not apply. Whatever goes wrong is left for Run to meet and report.
func StartEarlyUserNamespace(args []string) *EarlyUserNamespace {
	if early != nil || !NeedsUserNamespace() || os.Getenv("TUG_USERNS_STAGE1") == "exec" {
		return nil
	}
	ns, err := PlanUserNamespace()
	if err != nil || ns.Warning != "" || len(ns.UIDMap) == 1 {
		return nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil
	}
	e := &EarlyUserNamespace{args: slices.Clone(args), environ: os.Environ(), release: make(chan earlyRelease, 1), done: make(chan struct{})}
	forked := make(chan struct{})
	go func() {
		defer close(e.done)
		defer r.Close()
		defer w.Close()
		e.code, e.err = ns.runStaged(e.args, r, w, true, forked, func() ([]string, error) {
			rel := <-e.release
			if rel.discard {
				return nil, errEarlyDiscarded
			}
			return rel.env, nil
		})
	}()
	// Cloned beside the parse, the child took three times as long to
	// exec (2 ms, 0.7 ms alone): the caller goes on once it has, while
	// the child starts and the helpers write its maps.
	select {
	case <-forked:
	case <-e.done:
	}
	return e
}

// Use lets the early child run the command where the choice c would have
// Run start one like it (c.PlanUserNamespace, then Run with args), and
// returns what Run would. ok is false where it does not (another entry,
// other arguments, or a child that could not be cloned): the child is
// ended, and the caller plans and runs its own.
func (e *EarlyUserNamespace) Use(c Choice, args []string) (code int, ok bool, err error) {
	if e == nil || e.settled {
		return 0, false, nil
	}
	if c.Entry != EntryUserNamespace || !slices.Equal(args, e.args) {
		e.Discard()
		return 0, false, nil
	}
	e.settled = true
	now := append(os.Environ(), c.environ()...)
	e.release <- earlyRelease{env: slices.DeleteFunc(now, func(kv string) bool { return slices.Contains(e.environ, kv) })}
	<-e.done
	var se *startError
	if errors.As(e.err, &se) {
		return 0, false, nil
	}
	return e.code, true, e.err
}

// Discard ends an early child that Use did not take, and waits until it
// has; it does nothing on nil or once Use or Discard ran.
func (e *EarlyUserNamespace) Discard() {
	if e == nil || e.settled {
		return
	}
	e.settled = true
	e.release <- earlyRelease{discard: true}
	<-e.done
}

// runDirect is Run for maps tug writes itself. Go writes them between
// the clone and the exec, so the child execs as uid 0 with its full
// capability set: an exec after the maps, as Run's stage 1 does, would
// gain nothing under no_new_privs, which a container usually has.
func (ns *UserNamespace) runDirect(args []string) (int, error) {
	cmd := exec.Command("/proc/self/exe", args[1:]...)
	cmd.Args[0] = args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(append(os.Environ(), envStage+"=2", envParent+"="+strconv.Itoa(os.Getpid())),
		namespaceEnv(ns.UID, ns.GID, ns.Choice)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL,
		// With CAP_SETGID here, the namespace may keep setgroups.
		GidMappingsEnableSetgroups: ns.Warning == "",
	}
	for _, m := range ns.UIDMap {
		cmd.SysProcAttr.UidMappings = append(cmd.SysProcAttr.UidMappings, syscall.SysProcIDMap{ContainerID: m.ContainerID, HostID: m.HostID, Size: m.Size})
	}
	for _, m := range ns.GIDMap {
		cmd.SysProcAttr.GidMappings = append(cmd.SysProcAttr.GidMappings, syscall.SysProcIDMap{ContainerID: m.ContainerID, HostID: m.HostID, Size: m.Size})
	}
	return runChild(cmd, func(int) error { return nil })
}

// startError is runChild's failure to start the child at all.
type startError struct{ err error }

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

// runChild starts cmd, lets started prepare it, forwards signals to it and
// returns its exit status (128+N when killed by signal N).
func runChild(cmd *exec.Cmd, started func(pid int) error) (int, error) {
	// The child says its exit status on this pipe as it exits (see
	// ReportExit): waiting for the exit itself also waits for the kernel
	// to take down the child's address space and namespaces, about a
	// millisecond that nothing after needs.
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("creating tug's exit status pipe: %w", err)
	}
	defer statusR.Close()
	defer statusW.Close()
	cmd.ExtraFiles = append(cmd.ExtraFiles, statusW)
	cmd.Env = append(cmd.Env, envStatusFD+"="+strconv.Itoa(2+len(cmd.ExtraFiles)))
	// Pdeathsig follows the thread that forked: it stays locked until the
	// child is reaped.
	stdruntime.LockOSThread()
	defer stdruntime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		// The clone failed, or setting the child up before its exec:
		// "fork/exec /proc/self/exe" would point at the wrong thing.
		var pe *os.PathError
		if errors.As(err, &pe) && pe.Op == "fork/exec" {
			err = pe.Err
		}
		return 0, &startError{fmt.Errorf("creating a namespace for tug: %w%s", err, userNamespaceHint(cmd.SysProcAttr.Cloneflags, err))}
	}
	statusW.Close()
	if err := started(cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, err
	}
	stop := userns.ForwardSignals(cmd.Process.Pid)
	// Not waited for: this tug exits once the child has.
	defer func() { go stop() }()
	var line [8]byte
	if n, _ := io.ReadFull(statusR, line[:4]); n == 4 {
		// The child has done all it does and is exiting; its parent exits
		// too, and whoever adopts it reaps it.
		return int(binary.LittleEndian.Uint32(line[:4])), nil
	}
	// Killed, or exited some other way: its wait status says.
	return exitStatus(cmd.Wait(), "waiting for tug's namespace child")
}

// namespaceEnv is the environment that says a tug is in its user
// namespace, made for the user with ids uid and gid and the choice c:
// storage reads the first three (see envConfigured).
func namespaceEnv(uid, gid int, c Choice) []string {
	return append([]string{
		envConfigured + "=done",
		envRootlessUID + "=" + strconv.Itoa(uid),
		envRootlessGID + "=" + strconv.Itoa(gid),
	}, c.environ()...)
}

// statusFile is where this tug, re-executed in its namespaces, reports its
// exit status to the tug that started it (see runChild); nil elsewhere.
var statusFile *os.File

// ReportExit tells the tug that started this one (in its namespaces)
// the status this process is about to exit with. Call it last: that tug
// may exit at once.
func ReportExit(code int) {
	if statusFile == nil {
		return
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(code))
	_, _ = statusFile.Write(b[:])
	statusFile.Close()
	statusFile = nil
}

// EnterUserNamespaceRole runs the child's side of Run before the CLI parses.
// In stage 1 (just cloned, ids not yet mapped) it waits for the parent;
// then, with the capabilities its ambient set carried, it goes on as stage
// 2, and without, it execs itself again so that it starts over as uid 0
// with a full capability set in the namespace. In stage 2 it makes every mount a
// slave of the host's, so nothing tug mounts propagates out, and returns.
// Outside tug's re-exec it does nothing. exit is true when this process must
// exit with code; err, if any, says why.
func EnterUserNamespaceRole() (exit bool, code int, err error) {
	stage := os.Getenv(envStage)
	if stage == "1" {
		sync := os.NewFile(syncFD, "userns-sync")
		msg, _ := io.ReadAll(sync)
		sync.Close()
		if len(msg) == 0 || msg[0] != '1' {
			// The parent could not write the maps; it reports why.
			return true, 125, nil
		}
		// What the parent set since it cloned this process (see
		// EarlyUserNamespace).
		for _, kv := range strings.Split(string(msg[1:]), "\x00") {
			if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
				os.Setenv(k, v)
			}
		}
		if os.Getenv(envAmbient) == "" {
			os.Setenv(envStage, "2")
			err := unix.Exec("/proc/self/exe", os.Args, os.Environ())
			return true, 125, fmt.Errorf("re-executing tug inside its user namespace: %w", err)
		}
		// Now uid 0, with the capabilities the ambient set carried
		// through the exec: they stay permitted and effective, and leave
		// the ambient and inheritable sets, as after an exec as root.
		os.Unsetenv(envAmbient)
		if err := emptyInheritedCapabilities(); err != nil {
			return true, 125, err
		}
		stage = "2"
	}
	if stage == "2" {
		os.Unsetenv(envStage)
		if fd, err := strconv.Atoi(os.Getenv(envStatusFD)); err == nil && fd > 2 {
			os.Unsetenv(envStatusFD)
			// Not for anything this tug starts.
			unix.CloseOnExec(fd)
			statusFile = os.NewFile(uintptr(fd), "exit-status")
		}
		// Gaining capabilities on exec cleared the parent-death signal:
		// set it again, then make sure the parent did not die meanwhile.
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
			return true, 125, &os.SyscallError{Syscall: "prctl(PR_SET_PDEATHSIG)", Err: err}
		}
		if strconv.Itoa(os.Getppid()) != os.Getenv(envParent) {
			return true, 125, nil
		}
		os.Unsetenv(envParent)
		if err := makeMountsPrivate(); err != nil {
			return true, 125, err
		}
	}
	return false, 0, nil
}

// makeMountsPrivate makes the mounts of tug's new mount namespace slaves:
// nothing tug mounts reaches the host's.
func makeMountsPrivate() error {
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		hint := ""
		if b, rerr := os.ReadFile("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"); rerr == nil && strings.TrimSpace(string(b)) == "1" {
			hint = ": AppArmor takes the capabilities of unprivileged user namespaces on this host (kernel.apparmor_restrict_unprivileged_userns=1); give tug a profile with 'userns,' (as Ubuntu ships for podman) or run 'sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0'"
		}
		return fmt.Errorf("making mounts private to tug's mount namespace: %w%s", err, hint)
	}
	return nil
}

// emptyInheritedCapabilities clears the ambient and inheritable sets of
// every thread of this process, keeping the permitted and effective ones.
// A build with cgo cannot change other threads (ENOTSUP): it clears the
// calling thread's, and leaves the others theirs, which give nothing to a
// child execed as uid 0; the container's init sets its own.
func emptyInheritedCapabilities() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading tug's capabilities in its user namespace: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	calls := []struct {
		what         string
		trap, a1, a2 uintptr
	}{
		{"clearing tug's ambient capabilities", unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL},
		{"clearing tug's inheritable capabilities", unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0]))},
	}
	for _, c := range calls {
		_, _, e := syscall.AllThreadsSyscall(c.trap, c.a1, c.a2, 0)
		if e == syscall.ENOTSUP {
			_, _, e = unix.RawSyscall(c.trap, c.a1, c.a2, 0)
		}
		if e != 0 {
			return fmt.Errorf("%s: %w", c.what, e)
		}
	}
	return nil
}
