package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	stdruntime "runtime"
	"syscall"

	"go.podman.io/storage/pkg/reexec"
	"golang.org/x/sys/unix"

	"github.com/tugcli/tug/runtime/initproc"
)

// initRole is argv[0] of a container's init that needs this package: tug
// as PID 1 (re-executed from a sealed copy of itself), or chroot
// isolation; dispatched by reexec.Init before the CLI parses. Any other
// init starts as initproc.LeanRole, which initproc dispatches before most
// of tug's packages are initialized.
const initRole = initproc.Role

func init() {
	reexec.Register(initRole, func() {
		initproc.Main(initproc.Hooks{Chroot: chrootInto, RunAsInit: runAsInit})
	})
}

// Stdio is what the container's standard streams are connected to; a nil
// Stdin reads /dev/null.
type Stdio struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// ExecError says the container's command could not be started: Code is
// Docker's 126 (not executable) or 127 (not found).
type ExecError struct {
	Code int
	Msg  string
}

func (e *ExecError) Error() string { return e.Msg }

// Run starts the container described by spec and waits for it. It returns
// the container's exit status (128+N when killed by signal N). Signals sent
// to this process are forwarded to the container's PID 1. The caller must
// already be uid 0 in its user namespace (or root).
func Run(ctx context.Context, spec *Spec, stdio Stdio) (int, error) {
	p, err := Prestart(spec, stdio)
	if err != nil {
		return 0, err
	}
	return p.Run(ctx, spec)
}

// Prestarted is a container init cloned before the rest of its spec
// exists: it waits for the spec on a pipe. Run sends the spec and waits for
// the container; Abandon ends it unused.
type Prestarted struct {
	cmd         *exec.Cmd
	stdio       Stdio
	early       Spec
	specW, errR *os.File
	consoleSock *os.File
	closers     []func()
	cg          *cgroup
	done        bool

	// partial is what Mounted sent, if it was called.
	partial *Spec

	// lean, for a plain container, is the thread that forks it instead
	// of cmd (see leanThread).
	lean *leanThread

	// The clone runs on a thread of its own (see Prestart): started says
	// how it went, once; forked ends that thread's wait.
	started  chan error
	startErr error
	waited   bool
	forked   chan struct{}

	// sigs gets the signals Run passes on to the container, once
	// sigsReady is closed (see Prestart).
	sigs      chan os.Signal
	sigsReady chan struct{}
}

// stopForwarding stops c's signals and closes it, which ends a loop that
// forwards them. signal.Stop hands each signal back to Go's signal thread
// and waits: callers on a run's path call this in a goroutine of its own.
func stopForwarding(c chan os.Signal) {
	signal.Stop(c)
	close(c)
}

// forwardedSignals are those a container's tug passes on to it.
var forwardedSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

// Prestart clones the container's init ahead of its spec, so that the
// init's start (a Go runtime and tug's package init, a few ms) overlaps
// what the caller still has to do (the container's layer, its mount). The
// clone depends only on these fields of early: Init, Exec, ExecListener,
// Tty, HostNetwork, Isolation and Resources; Run refuses a spec that
// differs in them. With Init, or chroot isolation, the root file system
// must be mounted already (early.Rootfs): such an init is cloned into its
// own mount namespace.
func Prestart(early *Spec, stdio Stdio) (_ *Prestarted, err error) {
	spec := early
	if spec.Exec {
		spec.Init = true
	}
	p := &Prestarted{stdio: stdio, early: *spec}
	defer func() {
		if err != nil {
			p.release()
		}
	}()
	// Go enables each signal on its own signal thread, one hand-over at a
	// time (about 0.1 ms a signal, more on a busy machine): done here, it
	// overlaps the caller's work instead of delaying the container's start.
	p.sigs, p.sigsReady = make(chan os.Signal, 16), make(chan struct{})
	go func() {
		signal.Notify(p.sigs, forwardedSignals...)
		close(p.sigsReady)
	}()
	// A plain container gets no init exec'd: a thread of this process
	// makes its namespaces now and forks it once it has its spec.
	if leanEligible(spec, stdio) {
		if p.cg, err = newCgroup(spec.Resources, false); err != nil {
			return nil, err
		}
		p.lean, p.started = startLean(spec)
		return p, nil
	}
	// With --init, tug stays in the container as PID 1: start it from a
	// sealed copy, so that nothing in the container can reach (let alone
	// overwrite) the binary on the host through /proc/1/exe (runc
	// CVE-2019-5736). Without it, the init execs the command before any
	// container process exists, and the copy is not needed.
	self := "/proc/self/exe"
	if spec.Init {
		exe, err := sealedSelf()
		if err != nil {
			return nil, err
		}
		p.closers = append(p.closers, func() { exe.Close() })
		// The child execs it by its number after ExtraFiles are moved to
		// 3, 4, ...: a number among those would name one of them instead
		// ("fork/exec /proc/self/fd/4: permission denied").
		high, err := unix.FcntlInt(exe.Fd(), unix.F_DUPFD_CLOEXEC, 100)
		if err != nil {
			return nil, fmt.Errorf("moving tug's sealed copy out of the way: %w", err)
		}
		p.closers = append(p.closers, func() { unix.Close(high) })
		self = fmt.Sprintf("/proc/self/fd/%d", high)
	}

	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	p.specW = specW
	p.closers = append(p.closers, func() { specR.Close(); specW.Close() })
	errR, errW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	p.errR = errR
	p.closers = append(p.closers, func() { errR.Close(); errW.Close() })

	role := initproc.LeanRole
	if spec.Init || spec.Isolation == IsolationChroot {
		role = initRole
	}
	cmd := &exec.Cmd{
		Path: self,
		Args: []string{role},
		// The init's threads count against --pids-limit (as PID 1, with
		// -d or --init, for the container's life): one P keeps them few
		// (see initTasks). Set here, it costs no stop of the world as
		// runtime.GOMAXPROCS would. The command gets spec.Env.
		Env:        []string{"GOMAXPROCS=1"},
		Stdin:      stdio.Stdin,
		Stdout:     stdio.Stdout,
		Stderr:     stdio.Stderr,
		ExtraFiles: []*os.File{specR, errW},
	}
	p.cmd = cmd
	if spec.Tty {
		// The init's stdio become the pseudo-terminal's slave; it sends the
		// master back over this socket pair.
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("creating the console socket: %w", err)
		}
		consoleSock := os.NewFile(uintptr(fds[0]), "console")
		initSock := os.NewFile(uintptr(fds[1]), "console-init")
		p.consoleSock = consoleSock
		p.closers = append(p.closers, func() { consoleSock.Close(); initSock.Close() })
		cmd.ExtraFiles = append(cmd.ExtraFiles, initSock)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
	}
	flags := unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWCGROUP
	if !spec.HostNetwork {
		flags |= unix.CLONE_NEWNET
	}
	if !spec.Init && spec.Isolation != IsolationChroot {
		// The root file system may not be mounted yet: the init shares
		// this mount namespace until it has its spec, then makes its own
		// on the one thread that execs the command (the rest of the
		// process ends at that exec). tug as PID 1 (--init) keeps all its
		// threads, so each must be in the container's namespace from
		// the clone.
		flags &^= unix.CLONE_NEWNS
		p.early.UnshareMountNamespace = true
	} else if spec.Rootfs == "" {
		return nil, errors.New("internal error: the container's init with --init or chroot isolation needs its root file system mounted before it starts")
	}
	if spec.Isolation == IsolationChroot {
		if !spec.HostNetwork {
			return nil, errors.New("chroot isolation shares the host's network: use --network host (or leave --network out)")
		}
		flags = chrootFlags
		if err := tryClone(chrootFlags); err != nil {
			// Nothing can be mounted: tug puts what the command needs
			// into the root file system itself, and takes it out after.
			if spec.Rootfs == "" {
				return nil, errors.New("internal error: chroot isolation without a mount namespace needs the root file system before the init starts")
			}
			flags = 0
			spec.NoMountNamespace = true
			p.early.NoMountNamespace = true
			spec.debugf("chroot isolation: no mount or UTS namespace (%v): nothing is mounted for the command, and it shares the host name", err)
			undo, err := prepareChroot(spec)
			if err != nil {
				return nil, err
			}
			p.closers = append(p.closers, undo)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: uintptr(flags),
		// The container dies with tug; Pdeathsig follows the forking
		// thread, so it stays locked until the container is reaped.
		Pdeathsig: syscall.SIGKILL,
	}
	if spec.Exec {
		// fd 6 in the init; fd 5 is the console socket or closed.
		for len(cmd.ExtraFiles) < 3 {
			cmd.ExtraFiles = append(cmd.ExtraFiles, nil)
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, spec.ExecListener)
	}
	// The container's cgroup comes first: on cgroup v2 the init is cloned
	// straight into it.
	if p.cg, err = newCgroup(spec.Resources, spec.Init); err != nil {
		return nil, err
	}
	if fd := p.cg.cloneFD(); fd >= 0 {
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
	}
	// The clone (a new network namespace alone is 0.3 ms of the kernel's
	// time here, more on some hosts) and the exec run on a thread of
	// their own while the caller goes on. Pdeathsig follows the thread
	// that forked: it stays locked until the container is reaped
	// (release).
	p.started, p.forked = make(chan error, 1), make(chan struct{})
	go func() {
		stdruntime.LockOSThread()
		defer stdruntime.UnlockOSThread()
		err := cmd.Start()
		if err != nil {
			err = fmt.Errorf("starting container init: %w", err)
		} else {
			// The init waits for its spec: put it in its cgroup before
			// it reads one, so the command starts limited.
			err = p.cg.enter(cmd.Process.Pid)
		}
		p.started <- err
		<-p.forked
	}()
	return p, nil
}

// waitStarted waits for the clone Prestart began and says how it went.
func (p *Prestarted) waitStarted() error {
	if p.started == nil || p.waited {
		return p.startErr
	}
	p.waited = true
	p.startErr = <-p.started
	if p.cmd != nil && p.cmd.Process != nil {
		// The init has its copies.
		p.cmd.ExtraFiles[0].Close()
		p.cmd.ExtraFiles[1].Close()
		if p.early.Tty {
			p.cmd.ExtraFiles[2].Close()
		}
	}
	return p.startErr
}

// release kills an init that will not get its spec, reaps it, and undoes
// what Prestart set up.
func (p *Prestarted) release() {
	if p.done {
		return
	}
	p.done = true
	_ = p.waitStarted()
	if p.cmd != nil && p.cmd.Process != nil && p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
	if p.forked != nil {
		close(p.forked)
	}
	if p.lean != nil {
		p.lean.release()
	}
	p.cg.remove()
	if p.sigs != nil {
		// Not waited for: nothing needs it done.
		go func() {
			<-p.sigsReady
			stopForwarding(p.sigs)
		}()
	}
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
}

// Abandon ends a prestarted init that will not run (the container could
// not be made). It is safe to call after Run.
func (p *Prestarted) Abandon() {
	if p != nil {
		p.release()
	}
}

// Mounted tells the prestarted init that the container's root file
// system is mounted at rootfs, so that it mounts /proc, /dev and /sys there
// while the caller works out the rest of the spec; the spec Run sends must
// have the same Rootfs and Privileged. It does nothing for an init that
// mounts nothing (chroot isolation without a mount namespace).
func (p *Prestarted) Mounted(rootfs string, privileged bool) error {
	if p.done || p.partial != nil {
		return errors.New("internal error: the container's init was already told its root file system")
	}
	if p.early.NoMountNamespace {
		return nil
	}
	if err := p.waitStarted(); err != nil {
		return err
	}
	if p.lean != nil {
		cfg := initproc.Config{Rootfs: rootfs, Privileged: privileged, ShmSize: p.early.ShmSize, HostNetwork: p.early.HostNetwork}
		p.lean.mount(cfg)
		p.partial = &Spec{Config: cfg}
		return nil
	}
	partial := &Spec{Config: initproc.Config{
		Partial: true, Rootfs: rootfs, Privileged: privileged, ShmSize: p.early.ShmSize,
		HostNetwork: p.early.HostNetwork, Isolation: p.early.Isolation, UnshareMountNamespace: p.early.UnshareMountNamespace,
	}}
	if err := json.NewEncoder(p.specW).Encode(partial); err != nil {
		return p.initFailed(fmt.Errorf("sending the container's root file system: %w", err))
	}
	p.partial = partial
	return nil
}

// initFailed is err, or what the init said on its error pipe where it
// failed first (a write to it then finds the pipe closed).
func (p *Prestarted) initFailed(err error) error {
	p.specW.Close()
	raw, _ := io.ReadAll(p.errR)
	if reported := readInitReports(raw, func(string, ...any) {}); reported != nil {
		return reported
	}
	return err
}

// Run gives the prestarted init its spec and waits for the container, as
// the package's Run does.
func (p *Prestarted) Run(ctx context.Context, spec *Spec) (int, error) {
	defer p.release()
	if p.done {
		return 0, errors.New("internal error: the container's init was already used or abandoned")
	}
	if spec.Exec {
		spec.Init = true
	}
	e := &p.early
	if spec.Init != e.Init || spec.Exec != e.Exec || spec.Tty != e.Tty || spec.HostNetwork != e.HostNetwork ||
		spec.Isolation != e.Isolation || (spec.Resources == nil) != (e.Resources == nil) ||
		spec.Resources != nil && spec.Resources.Name != e.Resources.Name {
		return 0, errors.New("internal error: the container's spec differs from the one its init was started for")
	}
	spec.NoMountNamespace, spec.UnshareMountNamespace = e.NoMountNamespace, e.UnshareMountNamespace
	if p.partial != nil && (spec.Rootfs != p.partial.Rootfs || spec.Privileged != p.partial.Privileged) {
		return 0, errors.New("internal error: the container's spec differs from the root file system its init was told")
	}
	if err := p.waitStarted(); err != nil {
		return 0, err
	}
	if p.lean != nil {
		return p.runLean(ctx, spec)
	}
	// The network's helpers (pasta, slirp4netns) die with the thread that
	// starts them (Pdeathsig): keep it this goroutine's until they stop.
	stdruntime.LockOSThread()
	defer stdruntime.UnlockOSThread()
	cmd := p.cmd
	// Wire the network before the init reads its spec, so the command
	// starts connected.
	var nw *network
	var err error
	if !spec.HostNetwork {
		if nw, err = startNetwork(spec.Network, cmd.Process.Pid); err != nil {
			// The init may have failed first and taken its namespace
			// with it; the kernel drops the namespace before it reports
			// the exit, so asking whether it exited races. Its report is
			// written before it starts to exit: stop it and prefer what
			// it said.
			_ = cmd.Process.Kill()
			return 0, p.initFailed(err)
		}
		defer nw.stop()
	}
	if spec.OnStart != nil {
		spec.OnStart(cmd.Process.Pid)
	}

	// Signals that came since Prestart go to the container as it starts.
	<-p.sigsReady
	go func() {
		for s := range p.sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = cmd.Process.Kill()
	}()

	// tug as PID 1 under a pids limit starts the threads it may need
	// before the command can use up the limit (see initSpares).
	spec.SpareThreads = spec.Init && spec.Resources != nil && spec.Resources.PidsLimit > 0
	enc := json.NewEncoder(p.specW)
	if err := enc.Encode(spec); err != nil {
		return 0, p.initFailed(fmt.Errorf("sending the container spec: %w", err))
	}
	p.specW.Close()

	var cons *console
	if spec.Tty {
		master, err := receiveConsole(p.consoleSock)
		if err == nil {
			cons = startConsole(master, p.stdio.Stdin, p.stdio.Stdout)
		}
		// On failure the init reports why on the error pipe.
	}
	// The error pipe closes on exec (close-on-exec) with nothing written,
	// or carries why setup or exec failed.
	raw, _ := io.ReadAll(p.errR)
	reported := readInitReports(raw, spec.debugf)
	if reported == nil {
		p.cg.initRunning(cmd.Process.Pid)
	}
	waitErr := cmd.Wait()
	if cons != nil {
		cons.stop()
	}
	if reported != nil {
		return 0, reported
	}
	return exitStatus(waitErr, "waiting for the container")
}

// readInitReports reads what the init wrote on its error pipe: notes,
// passed to debugf, then the failure, if any, as an error (an ExecError
// for Docker's 126 and 127); nil when it reported none.
func readInitReports(raw []byte, debugf func(string, ...any)) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var failure error
	for {
		var r initproc.Report
		if err := dec.Decode(&r); err == io.EOF {
			return failure
		} else if err != nil {
			return fmt.Errorf("container init failed: %s", raw)
		}
		if r.Note != "" {
			debugf("%s", r.Note)
			continue
		}
		if r.Code == 126 || r.Code == 127 {
			failure = &ExecError{Code: r.Code, Msg: r.Msg}
		} else {
			failure = errors.New(r.Msg)
		}
	}
}

// debugf passes a note to spec.Debugf, if set.
func (spec *Spec) debugf(format string, args ...any) {
	if spec.Debugf != nil {
		spec.Debugf(format, args...)
	}
}

// exitStatus turns cmd.Wait's error into the status a shell would report:
// the exit code, or 128+N when signal N killed the process.
func exitStatus(waitErr error, what string) (int, error) {
	var exitErr *exec.ExitError
	if errors.As(waitErr, &exitErr) {
		if st, ok := exitErr.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			return 128 + int(st.Signal()), nil
		}
		return exitErr.ExitCode(), nil
	}
	if waitErr != nil {
		return 0, fmt.Errorf("%s: %w", what, waitErr)
	}
	return 0, nil
}

// sealedSelf returns a sealed in-memory copy of the tug binary.
func sealedSelf() (*os.File, error) {
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("opening tug's own binary: %w", err)
	}
	defer self.Close()
	fd, err := unix.MemfdCreate("tug", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("creating a sealed copy of tug: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:tug")
	if _, err := io.Copy(f, self); err != nil {
		f.Close()
		return nil, fmt.Errorf("copying tug into a sealed memfd: %w", err)
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("sealing tug's memfd copy: %w", err)
	}
	return f, nil
}
