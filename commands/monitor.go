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
	"strconv"
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
		if !reported {
			fmt.Fprintln(report, "started")
			report.Close()
			reported = true
		}
	}
	stopFile := filepath.Join(dir, stopRequested)
	_ = os.Remove(stopFile)
	policy, err := parseRestart(state.Restart)
	if err != nil {
		return fail(err)
	}
	var stdin io.Reader
	if state.OpenStdin || spec.Tty {
		// -dit: a shell waits on a stdin that stays open and silent.
		r, w, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		defer w.Close()
		defer r.Close()
		stdin = r
	}
	var code int
	delay := restartDelay
	for {
		started := time.Now()
		var runErr error
		code, runErr = rt.Run(context.Background(), &spec, rt.Stdio{Stdin: stdin, Stdout: logw.stream("stdout"), Stderr: logw.stream("stderr")})
		logw.flush()
		if runErr != nil {
			return fail(runErr)
		}
		if _, err := os.Stat(stopFile); err == nil || !policy.again(code, state.RestartCount) {
			break
		}
		// Docker's back-off: doubling from 100 ms, reset once a run lasted
		// 10 s; stop and kill end it.
		if time.Since(started) > 10*time.Second {
			delay = restartDelay
		}
		state.Status, state.ExitCode, state.FinishedAt, state.Pid = image.StateRestarting, code, time.Now().UTC(), 0
		state.RestartCount++
		_ = store.SaveState(state)
		for end := time.Now().Add(delay); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(stopFile); err == nil {
				break
			}
		}
		if _, err := os.Stat(stopFile); err == nil {
			break
		}
		delay = min(2*delay, time.Minute)
	}
	if c.Rm {
		// For wait and start -a, which may look once it has gone.
		_ = store.RecordExit(c.ID, code)
		if err := store.DeleteContainer(c.ID); err != nil {
			return err
		}
		removeVolumes(env, store, state.AnonymousVolumes)
		return nil
	}
	state.Status, state.ExitCode, state.FinishedAt, state.Pid = image.StateExited, code, time.Now().UTC(), 0
	return store.SaveState(state)
}

// stopRequested, in the container's directory, tells its monitor that
// stop or kill ended the container, so its restart policy does not apply.
const stopRequested = "tug-stop-requested"

const restartDelay = 100 * time.Millisecond

// restartPolicy is --restart: no, on-failure[:N], always or unless-stopped.
type restartPolicy struct {
	name string
	max  int // on-failure's N; 0 is no limit
}

func parseRestart(s string) (restartPolicy, error) {
	name, n, hasN := strings.Cut(s, ":")
	p := restartPolicy{name: name}
	switch name {
	case "", "no":
		p.name = "no"
	case "always", "unless-stopped":
	case "on-failure":
		if hasN {
			v, err := strconv.Atoi(n)
			if err != nil || v < 0 {
				return p, fmt.Errorf("invalid --restart %q: the maximum retry count must be a number >= 0", s)
			}
			p.max = v
		}
		return p, nil
	default:
		return p, fmt.Errorf("invalid --restart %q: use no, on-failure[:max-retries], always or unless-stopped", s)
	}
	if hasN {
		return p, fmt.Errorf("invalid --restart %q: only on-failure takes a maximum retry count", s)
	}
	return p, nil
}

// again says whether a container that exited with code, having been
// restarted count times already, starts again.
func (p restartPolicy) again(code, count int) bool {
	switch p.name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return code != 0 && (p.max == 0 || count < p.max)
	}
	return false
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
	Since      string `help:"Show logs since a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)."`
	Until      string `help:"Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)."`
	Container  string `arg:"" name:"CONTAINER"`

	from int64 // start -a: only what comes after this offset
}

// Run prints the container's output, each line to the stream it came on.
func (c *LogsCmd) Run(ctx context.Context, env *Env) error {
	now := time.Now()
	since, err := logTime("--since", c.Since, now)
	if err != nil {
		return err
	}
	until, err := logTime("--until", c.Until, now)
	if err != nil {
		return err
	}
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
		if !since.IsZero() || !until.IsZero() {
			t, err := time.Parse(time.RFC3339Nano, ts)
			if err == nil && ((!since.IsZero() && t.Before(since)) || (!until.IsZero() && !t.Before(until))) {
				return
			}
		}
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

// logTime reads a --since/--until value as Docker does: an RFC 3339 time
// (or a date, or one without a zone, read as UTC), Unix seconds with an
// optional fraction, or a duration before now (10m, 1h30m). "" is no limit.
func logTime(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if secs, frac, ok := strings.Cut(s, "."); secs != "" {
		sec, err1 := strconv.ParseInt(secs, 10, 64)
		var nsec int64
		var err2 error
		if ok {
			frac = (frac + "000000000")[:9]
			nsec, err2 = strconv.ParseInt(frac, 10, 64)
		}
		if err1 == nil && err2 == nil {
			return time.Unix(sec, nsec), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid value for %s %q: use a time (2013-01-02T13:23:37Z), Unix seconds, or a duration before now (42m)", flag, s)
}

// StopCmd is `tug stop`.
type StopCmd struct {
	Signal     string   `short:"s" help:"Signal to send to the container (default: its stop signal, SIGTERM unless the image or --stop-signal says otherwise)."`
	Time       *int     `short:"t" name:"timeout" aliases:"time" help:"Seconds to wait before killing the container (default: its --stop-timeout, else 10)."`
	Containers []string `arg:"" name:"CONTAINER"`
}

// Run sends each container's stop signal to its PID 1, then SIGKILL after
// the grace time.
func (c *StopCmd) Run(ctx context.Context, env *Env) error {
	var sig syscall.Signal
	if c.Signal != "" {
		var err error
		if sig, err = parseSignal(c.Signal); err != nil {
			return &ExitError{Code: 1, Err: err}
		}
	}
	grace := time.Duration(-2) // each container's own
	if c.Time != nil {
		grace = time.Duration(max(*c.Time, 0)) * time.Second
	}
	return signalEach(ctx, env, c.Containers, sig, grace)
}

// stopSignal is the signal that stops the container: --stop-signal, the
// image's STOPSIGNAL, or SIGTERM.
func stopSignal(st *image.ContainerState) syscall.Signal {
	if st.StopSignal != "" {
		if sig, err := parseSignal(st.StopSignal); err == nil {
			return sig
		}
	}
	return syscall.SIGTERM
}

// stopGrace is how long stop waits before SIGKILL: --stop-timeout, or 10 s.
func stopGrace(st *image.ContainerState) time.Duration {
	if st.StopTimeout != nil {
		return time.Duration(max(*st.StopTimeout, 0)) * time.Second
	}
	return 10 * time.Second
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
		// Stopped by hand: the restart policy does not apply.
		if dir, err := store.ContainerDir(st.ID); err == nil {
			_ = os.WriteFile(filepath.Join(dir, stopRequested), nil, 0o600)
		}
		if !st.Running() {
			if grace == -1 {
				return fmt.Errorf("cannot kill container %s: container is not running", ref)
			}
			return nil
		}
		sig, grace := sig, grace
		if sig == 0 {
			sig = stopSignal(st)
		}
		if grace == -2 {
			grace = stopGrace(st)
		}
		return signalContainer(ctx, store, st, sig, grace)
	})
}

// signalContainer sends sig to a running container's PID 1; with grace >=
// 0 it waits that long for the container to exit, then kills it.
func signalContainer(ctx context.Context, store *image.Store, st *image.ContainerState, sig syscall.Signal, grace time.Duration) error {
	// Between two runs of a restart policy there is no process (and pid 0
	// would signal our own process group): the stop request ends it.
	if st.Pid > 0 {
		if err := syscall.Kill(st.Pid, sig); err != nil || grace < 0 {
			return err
		}
	} else if grace < 0 {
		return nil
	}
	_, err := waitExit(ctx, store, st.ID, grace)
	if err != nil && !errors.Is(err, image.ErrNoSuchContainer) && st.Pid > 0 {
		_ = syscall.Kill(st.Pid, syscall.SIGKILL)
		_, err = waitExit(ctx, store, st.ID, 10*time.Second)
	}
	if errors.Is(err, image.ErrNoSuchContainer) {
		// Gone once it stopped: a --rm container, removed by its tug.
		return nil
	}
	return err
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
		if errors.Is(err, image.ErrNoSuchContainer) {
			// Removed as it exited (--rm): its tug kept the status
			// under its full id (ref is one after the first lookup).
			if code, ok := store.RecordedExit(ref); ok {
				return &image.ContainerState{ID: ref, Status: image.StateExited, ExitCode: code}, nil
			}
		}
		if err != nil {
			return nil, err
		}
		// Looked up by id from now on: the name may be taken anew.
		ref = st.ID
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
	Time       int      `short:"t" name:"timeout" aliases:"time" default:"10" help:"Seconds to wait before killing the container."`
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
			if err := signalContainer(ctx, store, st, stopSignal(st), time.Duration(c.Time)*time.Second); err != nil {
				return err
			}
		}
		return startMonitor(env, st.ID, st.AutoRemove)
	})
}
