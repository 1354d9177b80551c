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
)

// initRole is argv[0] of a container's init: tug re-executed from a sealed
// copy of itself, dispatched by reexec.Init before the CLI parses.
const initRole = "tug-init"

func init() {
	reexec.Register(initRole, containerInit)
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

// initReport is what the init writes on its error pipe when setup or exec
// fails; nothing is written when exec succeeds.
type initReport struct {
	Msg  string `json:"msg,omitempty"`
	Code int    `json:"code,omitempty"`
	// Note is not a failure: something the init did another way, for
	// --debug (several may come before the pipe closes).
	Note string `json:"note,omitempty"`
}

// Run starts the container described by spec and waits for it. It returns
// the container's exit status (128+N when killed by signal N). Signals sent
// to this process are forwarded to the container's PID 1. The caller must
// already be uid 0 in its user namespace (or root).
func Run(ctx context.Context, spec *Spec, stdio Stdio) (int, error) {
	if spec.Exec {
		spec.Init = true
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
			return 0, err
		}
		defer exe.Close()
		// The child execs it by its number after ExtraFiles are moved to
		// 3, 4, ...: a number among those would name one of them instead
		// ("fork/exec /proc/self/fd/4: permission denied").
		high, err := unix.FcntlInt(exe.Fd(), unix.F_DUPFD_CLOEXEC, 100)
		if err != nil {
			return 0, fmt.Errorf("moving tug's sealed copy out of the way: %w", err)
		}
		defer unix.Close(high)
		self = fmt.Sprintf("/proc/self/fd/%d", high)
	}

	specR, specW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer specR.Close()
	defer specW.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer errR.Close()
	defer errW.Close()

	cmd := &exec.Cmd{
		Path:       self,
		Args:       []string{initRole},
		Env:        []string{},
		Stdin:      stdio.Stdin,
		Stdout:     stdio.Stdout,
		Stderr:     stdio.Stderr,
		ExtraFiles: []*os.File{specR, errW},
	}
	var consoleSock *os.File
	if spec.Tty {
		// The init's stdio become the pseudo-terminal's slave; it sends the
		// master back over this socket pair.
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return 0, fmt.Errorf("creating the console socket: %w", err)
		}
		consoleSock = os.NewFile(uintptr(fds[0]), "console")
		initSock := os.NewFile(uintptr(fds[1]), "console-init")
		defer consoleSock.Close()
		defer initSock.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, initSock)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
	}
	flags := unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWCGROUP
	if !spec.HostNetwork {
		flags |= unix.CLONE_NEWNET
	}
	if spec.Isolation == IsolationChroot {
		if !spec.HostNetwork {
			return 0, errors.New("chroot isolation shares the host's network: use --network host (or leave --network out)")
		}
		flags = chrootFlags
		if err := tryClone(chrootFlags); err != nil {
			// Nothing can be mounted: tug puts what the command needs
			// into the root file system itself, and takes it out after.
			flags = 0
			spec.NoMountNamespace = true
			spec.debugf("chroot isolation: no mount or UTS namespace (%v): nothing is mounted for the command, and it shares the host name", err)
			undo, err := prepareChroot(spec)
			if err != nil {
				return 0, err
			}
			defer undo()
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
	cg, err := newCgroup(spec.Resources, spec.Init)
	if err != nil {
		return 0, err
	}
	defer cg.remove()
	if fd := cg.cloneFD(); fd >= 0 {
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
	}
	stdruntime.LockOSThread()
	defer stdruntime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting container init: %w", err)
	}
	specR.Close()
	errW.Close()
	// The init waits for its spec: put it in its cgroup and wire its
	// network before it reads one, so the command starts limited and
	// connected.
	if err := cg.enter(cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, err
	}
	var nw *network
	if !spec.HostNetwork {
		if nw, err = startNetwork(spec.Network, cmd.Process.Pid); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return 0, err
		}
		defer nw.stop()
	}
	if spec.OnStart != nil {
		spec.OnStart(cmd.Process.Pid)
	}
	if spec.Tty {
		cmd.ExtraFiles[2].Close()
	}

	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH)
	defer signal.Stop(sigs)
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = cmd.Process.Kill()
	}()

	enc := json.NewEncoder(specW)
	if err := enc.Encode(spec); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, fmt.Errorf("sending the container spec: %w", err)
	}
	specW.Close()

	var cons *console
	if spec.Tty {
		master, err := receiveConsole(consoleSock)
		if err == nil {
			cons = startConsole(master, stdio.Stdin, stdio.Stdout)
		}
		// On failure the init reports why on the error pipe.
	}
	// The error pipe closes on exec (close-on-exec) with nothing written,
	// or carries why setup or exec failed.
	raw, _ := io.ReadAll(errR)
	report, failed := readInitReports(raw, spec.debugf)
	if !failed {
		cg.initRunning(cmd.Process.Pid)
	}
	waitErr := cmd.Wait()
	if cons != nil {
		cons.stop()
	}
	if failed {
		if report.Code == 126 || report.Code == 127 {
			return 0, &ExecError{Code: report.Code, Msg: report.Msg}
		}
		return 0, errors.New(report.Msg)
	}
	return exitStatus(waitErr, "waiting for the container")
}

// readInitReports reads what the init wrote on its error pipe: notes,
// passed to debugf, then the failure, if any.
func readInitReports(raw []byte, debugf func(string, ...any)) (report initReport, failed bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		var r initReport
		if err := dec.Decode(&r); err == io.EOF {
			return report, failed
		} else if err != nil {
			return initReport{Msg: fmt.Sprintf("container init failed: %s", raw)}, true
		}
		if r.Note != "" {
			debugf("%s", r.Note)
			continue
		}
		report, failed = r, true
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
