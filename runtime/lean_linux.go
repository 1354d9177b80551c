package runtime

import (
	"context"
	"fmt"
	"io"
	"os"
	stdruntime "runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tugcli/tug/runtime/initproc"
)

// leanThread starts a plain container without exec'ing tug's init: a
// locked thread of this process makes the container's UTS, IPC and
// network namespaces when Prestart is called, its mount namespace and
// mounts once the root file system is mounted (Mounted), and forks the
// container's process from there (initproc.ForkPlan). The thread is never
// unlocked: it ends with its goroutine, taking its namespaces along.
type leanThread struct {
	work chan func()
	done chan struct{}
	// tid is the thread's: /proc/TID/ns/net is the container's network
	// namespace, which the network's helpers are given.
	tid int

	// mounted reports ThreadMountBase; proc is its /proc mount point.
	mounted chan error
	proc    string

	plan    *initproc.ForkPlan
	process *os.Process
	reaped  bool
}

// leanEligible says whether spec's container can start this way: no tug
// as PID 1, no chroot isolation, and the caller's own stdout and stderr
// (and stdin or none).
func leanEligible(spec *Spec, stdio Stdio) bool {
	return !spec.Init && !spec.Exec && spec.Isolation != IsolationChroot && !spec.NoMountNamespace &&
		stdio.Stdout == io.Writer(os.Stdout) && stdio.Stderr == io.Writer(os.Stderr) &&
		(stdio.Stdin == nil || stdio.Stdin == io.Reader(os.Stdin))
}

// startLean starts the thread; started reports its namespaces.
func startLean(spec *Spec) (*leanThread, chan error) {
	l := &leanThread{work: make(chan func()), done: make(chan struct{})}
	started := make(chan error, 1)
	flags := unix.CLONE_NEWUTS | unix.CLONE_NEWIPC
	if !spec.HostNetwork {
		flags |= unix.CLONE_NEWNET
	}
	go func() {
		stdruntime.LockOSThread()
		defer close(l.done)
		if err := unix.Unshare(flags); err != nil {
			started <- fmt.Errorf("starting container: %w", &os.SyscallError{Syscall: "unshare", Err: err})
			return
		}
		l.tid = unix.Gettid()
		started <- nil
		for f := range l.work {
			f()
		}
	}()
	return l, started
}

// mount has the thread start the container's file system view on
// rootfs (see initproc.ThreadMountBase); Run collects the result.
func (l *leanThread) mount(cfg initproc.Config) {
	l.mounted = make(chan error, 1)
	l.work <- func() {
		proc, err := initproc.ThreadMountBase(&cfg)
		l.proc = proc
		l.mounted <- err
	}
}

// run finishes the container's view, forks its process and waits for it.
func (p *Prestarted) runLean(ctx context.Context, spec *Spec) (int, error) {
	l := p.lean
	if l.mounted == nil {
		l.mount(initproc.Config{Rootfs: spec.Rootfs, Privileged: spec.Privileged, ShmSize: spec.ShmSize, HostNetwork: spec.HostNetwork})
	}
	if err := <-l.mounted; err != nil {
		return 0, err
	}
	// The network's helpers (pasta, slirp4netns) die with the thread that
	// starts them (Pdeathsig): keep it this goroutine's until they stop.
	// Wired before the fork, so the command starts connected.
	stdruntime.LockOSThread()
	defer stdruntime.UnlockOSThread()
	if !spec.HostNetwork {
		nw, err := startNetwork(spec.Network, l.tid)
		if err != nil {
			return 0, err
		}
		defer nw.stop()
	}
	type forked struct {
		pid int
		err error
	}
	res := make(chan forked, 1)
	l.work <- func() {
		plan, err := initproc.PrepareFork(&spec.Config, l.proc, p.stdio.Stdin == nil, p.cg != nil)
		if err != nil {
			res <- forked{err: err}
			return
		}
		l.plan = plan
		pid, err := plan.Fork()
		plan.Close() // the child has its copies
		res <- forked{pid, err}
	}
	f := <-res
	if f.err != nil {
		return 0, f.err
	}
	if p.cg != nil {
		// Into its cgroup before it runs anything: the command starts
		// limited.
		err := p.cg.enter(f.pid)
		if err == nil {
			err = l.plan.Released()
		}
		if err != nil {
			_ = unix.Kill(f.pid, unix.SIGKILL)
			var ws unix.WaitStatus
			_, _ = unix.Wait4(f.pid, &ws, 0, nil)
			return 0, err
		}
	}
	proc, err := os.FindProcess(f.pid)
	if err != nil {
		return 0, fmt.Errorf("finding the container's process %d: %w", f.pid, err)
	}
	l.process = proc
	if master := l.plan.Console(); master != nil {
		cons := startConsole(master, p.stdio.Stdin, p.stdio.Stdout)
		defer cons.stop()
	}
	if spec.OnStart != nil {
		spec.OnStart(f.pid)
	}
	<-p.sigsReady
	go func() {
		for s := range p.sigs {
			_ = proc.Signal(s)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = proc.Kill()
	}()
	// The error pipe closes at the exec with nothing written, or says
	// why the child failed.
	raw, _ := io.ReadAll(l.plan.ErrorPipe())
	code, failure := l.plan.Failure(raw, spec.debugf)
	state, werr := proc.Wait()
	l.reaped = true
	if failure != nil {
		if code == 126 || code == 127 {
			return 0, &ExecError{Code: code, Msg: failure.Error()}
		}
		return 0, failure
	}
	if werr != nil {
		return 0, fmt.Errorf("waiting for the container: %w", werr)
	}
	ws := state.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}

// release kills a process that was not waited for, and ends the thread.
func (l *leanThread) release() {
	if l.process != nil && !l.reaped {
		_ = l.process.Kill()
		_, _ = l.process.Wait()
	}
	close(l.work)
	<-l.done
	if l.plan != nil {
		l.plan.Abort()
		l.plan.Close()
		l.plan.ErrorPipe().Close()
	}
}
