package commands

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tugcli/tug/image"
	rt "github.com/tugcli/tug/runtime"
)

// A detached container is run by its own monitor: tug re-executed as
// `tug container-monitor ID`, in its own session, in the same user and
// mount namespaces as the run that started it (it keeps them alive). It
// records the state, writes the output to the container's log, and
// removes the container afterwards for --rm. There is no daemon: each
// container has one monitor, which lives exactly as long as it does.

const (
	execSocket = "exec.sock"
	specFile   = "tug-spec.json"
	logFile    = "ctr.log"
	// monitorFD is the monitor's end of the pipe on which it reports that
	// the container started (or why it did not).
	monitorFD = 3
)

// detach hands a prepared container to a new monitor and waits until the
// container runs.
func (c *RunCmd) detach(env *Env, store *image.Store, state *image.ContainerState, spec *rt.Spec) error {
	if err := saveSpec(store, state.ID, spec); err != nil {
		return err
	}
	return startMonitor(env, state.ID, c.Rm)
}

// saveSpec keeps a prepared container's spec for its monitor.
func saveSpec(store *image.Store, id string, spec *rt.Spec) error {
	dir, err := store.ContainerDir(id)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, specFile), raw, 0o600); err != nil {
		return fmt.Errorf("writing the container's spec: %w", err)
	}
	return nil
}

// startMonitor starts a container's monitor in a session of its own and
// waits until the container runs.
func startMonitor(env *Env, id string, rm bool) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	args := append(globalArgs(env.Globals), "container-monitor", id)
	if rm {
		args = append(args, "--rm")
	}
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Args[0] = "tug"
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("starting the container's monitor: %w", err)
	}
	w.Close()
	go cmd.Wait() // reaped if it ends while we wait; else adopted
	msg, _ := io.ReadAll(r)
	if s := strings.TrimSpace(string(msg)); s != "started" {
		if s == "" {
			s = "the container's monitor exited without starting it"
		}
		return errors.New(s)
	}
	return nil
}

// globalArgs repeats the global flags for a re-executed tug.
func globalArgs(g *Globals) []string {
	var out []string
	if g.Root != "" {
		out = append(out, "--root", g.Root)
	}
	if g.RunRoot != "" {
		out = append(out, "--runroot", g.RunRoot)
	}
	if g.StorageDriver != "" {
		out = append(out, "--storage-driver", g.StorageDriver)
	}
	return out
}

// MonitorCmd is the hidden `tug container-monitor` role.
type MonitorCmd struct {
	Rm bool   `help:"Remove the container when it exits."`
	ID string `arg:""`
}

// Run runs the container to its end.
func (c *MonitorCmd) Run(ctx context.Context, env *Env) error {
	// Nothing the monitor starts (a network helper) may hold the report
	// pipe open: the caller waits for its end.
	syscall.CloseOnExec(monitorFD)
	report := os.NewFile(monitorFD, "monitor-report")
	reported := false
	fail := func(err error) error {
		if !reported {
			fmt.Fprintln(report, err.Error())
			report.Close()
		}
		return err
	}
	store, err := env.MountingStore(ctx)
	if err != nil {
		return fail(err)
	}
	state, err := store.LookupContainer(c.ID)
	if err != nil {
		return fail(err)
	}
	dir, err := store.ContainerDir(c.ID)
	if err != nil {
		return fail(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, specFile))
	if err != nil {
		return fail(fmt.Errorf("reading the container's spec: %w", err))
	}
	var spec rt.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return fail(fmt.Errorf("reading the container's spec: %w", err))
	}
	// Mounted here, in the namespace this monitor keeps alive.
	if spec.Rootfs, err = store.MountContainer(c.ID); err != nil {
		return fail(err)
	}
	lf, err := os.OpenFile(filepath.Join(dir, logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fail(fmt.Errorf("opening the container's log: %w", err))
	}
	defer lf.Close()
	logw := &logWriter{f: lf}
	runDir, err := store.ContainerRunDir(c.ID)
	if err != nil {
		return fail(err)
	}
	// tug stays PID 1 of a detached container and serves `tug exec`.
	spec.Exec = true
	if spec.ExecListener, err = rt.ListenExec(filepath.Join(runDir, execSocket)); err != nil {
		return fail(err)
	}
	spec.OnStart = func(pid int) {
		state.Status, state.Pid, state.TugPid, state.StartedAt = image.StateRunning, pid, os.Getpid(), time.Now().UTC()
		_ = store.SaveState(state)
		fmt.Fprintln(report, "started")
		report.Close()
		reported = true
	}
	code, runErr := rt.Run(context.Background(), &spec, rt.Stdio{Stdout: logw.stream("stdout"), Stderr: logw.stream("stderr")})
	logw.flush()
	if runErr != nil {
		return fail(runErr)
	}
	if c.Rm {
		return store.DeleteContainer(c.ID)
	}
	state.Status, state.ExitCode, state.FinishedAt, state.Pid = image.StateExited, code, time.Now().UTC(), 0
	return store.SaveState(state)
}

// logWriter writes a container's output as lines of
// "TIMESTAMP STREAM TEXT", one per line the container printed.
type logWriter struct {
	mu      sync.Mutex
	f       *os.File
	partial map[string][]byte
}

func (l *logWriter) stream(name string) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.partial == nil {
			l.partial = map[string][]byte{}
		}
		buf := append(l.partial[name], p...)
		for {
			i := strings.IndexByte(string(buf), '\n')
			if i < 0 {
				break
			}
			fmt.Fprintf(l.f, "%s %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), name, buf[:i])
			buf = buf[i+1:]
		}
		l.partial[name] = buf
		return len(p), nil
	})
}

func (l *logWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, buf := range l.partial {
		if len(buf) > 0 {
			fmt.Fprintf(l.f, "%s %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), name, buf)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// LogsCmd is `tug logs`.
type LogsCmd struct {
	Follow     bool   `short:"f" help:"Follow log output."`
	Tail       string `short:"n" default:"all" help:"Number of lines to show from the end of the logs."`
	Timestamps bool   `short:"t" help:"Show timestamps."`
	Container  string `arg:"" name:"CONTAINER"`

	from int64 // start -a: only what comes after this offset
}

// Run prints the container's output, each line to the stream it came on.
func (c *LogsCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	state, err := store.LookupContainer(c.Container)
	if err != nil {
		return err
	}
	dir, err := store.ContainerDir(state.ID)
	if err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(dir, logFile))
	if os.IsNotExist(err) {
		return nil // a container run in the foreground keeps no log
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if c.from > 0 {
		if _, err := f.Seek(c.from, io.SeekStart); err != nil {
			return err
		}
	}
	br := bufio.NewReader(f)
	var lines []string
	print := func(line string) {
		ts, rest, _ := strings.Cut(line, " ")
		stream, text, _ := strings.Cut(rest, " ")
		w := env.Stdout
		if stream == "stderr" {
			w = env.Stderr
		}
		if c.Timestamps {
			fmt.Fprintf(w, "%s %s\n", ts, text)
		} else {
			fmt.Fprintln(w, text)
		}
	}
	for {
		line, err := br.ReadString('\n')
		if err == nil {
			lines = append(lines, strings.TrimSuffix(line, "\n"))
			continue
		}
		break
	}
	if c.Tail != "all" {
		var n int
		if _, err := fmt.Sscan(c.Tail, &n); err == nil && n < len(lines) {
			lines = lines[len(lines)-n:]
		}
	}
	for _, l := range lines {
		print(l)
	}
	if !c.Follow {
		return nil
	}
	var pending string
	for {
		line, err := br.ReadString('\n')
		if err == nil {
			print(strings.TrimSuffix(pending+line, "\n"))
			pending = ""
			continue
		}
		pending += line
		st, lerr := store.LookupContainer(state.ID)
		if lerr != nil || !st.Running() {
			// One more read: the last lines may have arrived meanwhile.
			if rest, _ := io.ReadAll(br); len(rest) > 0 {
				for _, l := range strings.Split(strings.TrimRight(pending+string(rest), "\n"), "\n") {
					print(l)
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// StopCmd is `tug stop`.
type StopCmd struct {
	Time       int      `short:"t" default:"10" help:"Seconds to wait before killing the container."`
	Containers []string `arg:"" name:"CONTAINER"`
}

// Run sends SIGTERM to each container's PID 1, then SIGKILL after -t seconds.
func (c *StopCmd) Run(ctx context.Context, env *Env) error {
	return signalEach(ctx, env, c.Containers, syscall.SIGTERM, time.Duration(c.Time)*time.Second)
}

// KillCmd is `tug kill`.
type KillCmd struct {
	Signal     string   `short:"s" default:"KILL" help:"Signal to send to the container."`
	Containers []string `arg:"" name:"CONTAINER"`
}

// Run sends the signal to each container's PID 1.
func (c *KillCmd) Run(ctx context.Context, env *Env) error {
	sig, err := parseSignal(c.Signal)
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	return signalEach(ctx, env, c.Containers, sig, -1)
}

// WaitCmd is `tug wait`.
type WaitCmd struct {
	Containers []string `arg:"" name:"CONTAINER"`
}

// Run waits for each container to exit and prints its exit code.
func (c *WaitCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	for _, ref := range c.Containers {
		st, err := waitExit(ctx, store, ref, -1)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, st.ExitCode)
	}
	return nil
}

// signalEach signals every container; with grace >= 0 it waits that long
// for each to exit, then kills it.
func signalEach(ctx context.Context, env *Env, refs []string, sig syscall.Signal, grace time.Duration) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	return eachRef(env, refs, func(ref string) error {
		st, err := store.LookupContainer(ref)
		if err != nil {
			return err
		}
		if !st.Running() {
			if grace < 0 {
				return fmt.Errorf("cannot kill container %s: container is not running", ref)
			}
			return nil
		}
		return signalContainer(ctx, store, st, sig, grace)
	})
}

// signalContainer sends sig to a running container's PID 1; with grace >=
// 0 it waits that long for the container to exit, then kills it.
func signalContainer(ctx context.Context, store *image.Store, st *image.ContainerState, sig syscall.Signal, grace time.Duration) error {
	if err := syscall.Kill(st.Pid, sig); err != nil || grace < 0 {
		return err
	}
	if _, err := waitExit(ctx, store, st.ID, grace); err != nil {
		_ = syscall.Kill(st.Pid, syscall.SIGKILL)
		_, err = waitExit(ctx, store, st.ID, 10*time.Second)
		return err
	}
	return nil
}

// eachRef runs do for every object named, as Docker's multi-object
// commands do: the name on stdout when it worked, one Error: line when it
// did not, and exit status 1 if any failed.
func eachRef(env *Env, refs []string, do func(ref string) error) error {
	failed := false
	for _, ref := range refs {
		if err := do(ref); err != nil {
			fmt.Fprintf(env.Stderr, "Error: %s\n", oneLine(err.Error()))
			failed = true
			continue
		}
		fmt.Fprintln(env.Stdout, ref)
	}
	if failed {
		return &ExitError{Code: 1}
	}
	return nil
}

// waitExit polls a container's record until it is no longer running;
// timeout < 0 waits forever.
func waitExit(ctx context.Context, store *image.Store, ref string, timeout time.Duration) (*image.ContainerState, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := store.LookupContainer(ref)
		if err != nil {
			return nil, err
		}
		if !st.Running() {
			return st, nil
		}
		if timeout >= 0 && time.Now().After(deadline) {
			return nil, fmt.Errorf("container %s did not stop in %v", ref, timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func parseSignal(s string) (syscall.Signal, error) {
	s = strings.TrimPrefix(strings.ToUpper(s), "SIG")
	names := map[string]syscall.Signal{
		"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "KILL": syscall.SIGKILL,
		"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "TERM": syscall.SIGTERM, "STOP": syscall.SIGSTOP,
		"CONT": syscall.SIGCONT, "WINCH": syscall.SIGWINCH,
	}
	if sig, ok := names[s]; ok {
		return sig, nil
	}
	var n int
	if _, err := fmt.Sscan(s, &n); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	return 0, fmt.Errorf("invalid signal: %s", s)
}

// ExecCmd is `tug exec`.
type ExecCmd struct {
	Interactive bool     `short:"i" help:"Keep STDIN open."`
	TTY         bool     `short:"t" help:"Allocate a pseudo-TTY."`
	Env         []string `short:"e" sep:"none" help:"Set environment variables."`
	Workdir     string   `short:"w" help:"Working directory inside the container."`
	User        string   `short:"u" help:"Username or UID (format: <name|uid>[:<group|gid>])."`
	Container   string   `arg:"" name:"CONTAINER" passthrough:"partial"`
	Command     []string `arg:"" name:"COMMAND" passthrough:"all"`
}

// Run runs the command in the container, through its init, and exits
// with the command's status (126/127 when it cannot be run).
func (c *ExecCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	st, err := store.LookupContainer(c.Container)
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	if !st.Running() {
		return &ExitError{Code: 1, Err: fmt.Errorf("container %s is not running", c.Container)}
	}
	runDir, err := store.ContainerRunDir(st.ID)
	if err != nil {
		return err
	}
	var vars []string
	for _, kv := range c.Env {
		if !strings.Contains(kv, "=") {
			v, ok := os.LookupEnv(kv)
			if !ok {
				continue
			}
			kv += "=" + v
		}
		vars = append(vars, kv)
	}
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer stdin.Close()
	if c.Interactive {
		stdin = os.Stdin
	}
	code, err := rt.Exec(filepath.Join(runDir, execSocket), rt.ExecRequest{Args: c.Command, Env: vars, Cwd: c.Workdir, User: c.User, Tty: c.TTY}, stdin, os.Stdout, os.Stderr)
	var xe *rt.ExecError
	if errors.As(err, &xe) {
		return &ExitError{Code: xe.Code, Err: err}
	}
	if err != nil {
		return &ExitError{Code: 126, Err: err}
	}
	if code != 0 {
		return &ExitError{Code: code}
	}
	return nil
}

// CreateCmd is `tug create`: a container prepared as run would, not started.
type CreateCmd struct {
	RunCmd `embed:""`
}

// Run prepares the container and prints its id.
func (c *CreateCmd) Run(ctx context.Context, env *Env) error {
	c.create = true
	return c.RunCmd.Run(ctx, env)
}

// StartCmd is `tug start`.
type StartCmd struct {
	Attach     bool     `short:"a" help:"Attach STDOUT/STDERR and wait for the container; exit with its status."`
	Containers []string `arg:"" name:"CONTAINER"`
}

// Run starts each stopped container under a new monitor.
func (c *StartCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.MountingStore(ctx)
	if err != nil {
		return err
	}
	if c.Attach && len(c.Containers) != 1 {
		return &ExitError{Code: 125, Err: errors.New("start -a takes one container")}
	}
	failed := false
	for _, ref := range c.Containers {
		st, err := store.LookupContainer(ref)
		if err == nil && !st.Running() {
			var from int64
			if dir, derr := store.ContainerDir(st.ID); derr == nil {
				if fi, serr := os.Stat(filepath.Join(dir, logFile)); serr == nil {
					from = fi.Size()
				}
			}
			if err = startMonitor(env, st.ID, st.AutoRemove); err == nil && c.Attach {
				logs := &LogsCmd{Follow: true, Tail: "all", Container: st.ID, from: from}
				if err := logs.Run(ctx, env); err != nil {
					return err
				}
				end, err := waitExit(ctx, store, st.ID, -1)
				if err != nil {
					return err
				}
				if end.ExitCode != 0 {
					return &ExitError{Code: end.ExitCode}
				}
				return nil
			}
		}
		if err != nil {
			fmt.Fprintf(env.Stderr, "Error: %s\n", oneLine(err.Error()))
			failed = true
			continue
		}
		if !c.Attach {
			fmt.Fprintln(env.Stdout, ref)
		}
	}
	if failed {
		return &ExitError{Code: 1}
	}
	return nil
}

// RestartCmd is `tug restart`.
type RestartCmd struct {
	Time       int      `short:"t" default:"10" help:"Seconds to wait before killing the container."`
	Containers []string `arg:"" name:"CONTAINER"`
}

// Run stops, then starts, each container.
func (c *RestartCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.MountingStore(ctx)
	if err != nil {
		return err
	}
	return eachRef(env, c.Containers, func(ref string) error {
		st, err := store.LookupContainer(ref)
		if err != nil {
			return err
		}
		if st.Running() {
			if err := signalContainer(ctx, store, st, syscall.SIGTERM, time.Duration(c.Time)*time.Second); err != nil {
				return err
			}
		}
		return startMonitor(env, st.ID, st.AutoRemove)
	})
}
