// Package commands is tug's command line: kong structs that turn flags into
// one library call and print the result. It is the only package that prints
// or chooses exit codes.
package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"
	"github.com/sirupsen/logrus"

	rt "github.com/tugcli/tug/runtime"
)

// Globals are the flags every command takes.
type Globals struct {
	Root          string `name:"root" help:"Storage root directory (default: Podman's for this user)." placeholder:"DIR"`
	RunRoot       string `name:"runroot" help:"Storage state directory (default: Podman's for this user)." placeholder:"DIR"`
	StorageDriver string `name:"storage-driver" help:"Storage driver: overlay or vfs (default: from storage.conf, else overlay when it works)." placeholder:"NAME"`
	LogLevel      string `name:"log-level" short:"l" help:"Log level: debug, info, warn, error." enum:"debug,info,warn,error" default:"warn"`
	Debug         bool   `name:"debug" short:"D" help:"Debug output: logs and the chain of causes of an error."`
	// Docker's -v is run's --volume here; the long form alone.
	PrintVersion kong.VersionFlag `name:"version" help:"Print version information and quit."`
}

// CLI is tug's grammar.
type CLI struct {
	Globals

	Build     BuildCmd     `cmd:"" help:"Build an image from a Dockerfile."`
	Builder   BuilderCmd   `cmd:"" help:"Manage builds."`
	Pull      PullCmd      `cmd:"" help:"Download an image from a registry."`
	Push      PushCmd      `cmd:"" help:"Upload an image to a registry."`
	Login     LoginCmd     `cmd:"" help:"Log in to a registry."`
	Logout    LogoutCmd    `cmd:"" help:"Log out from a registry."`
	Images    ImagesCmd    `cmd:"" help:"List images."`
	History   HistoryCmd   `cmd:"" help:"Show the history of an image."`
	Image     ImageCmd     `cmd:"" help:"Manage images."`
	Tag       TagCmd       `cmd:"" help:"Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE."`
	Rmi       RmiCmd       `cmd:"" help:"Remove one or more images."`
	Inspect   InspectCmd   `cmd:"" help:"Return low-level information on containers and images."`
	Save      SaveCmd      `cmd:"" help:"Save one or more images to a tar archive (streamed to standard output by default)."`
	Load      LoadCmd      `cmd:"" help:"Load images from a tar archive or standard input."`
	Info      InfoCmd      `cmd:"" help:"Display system-wide information."`
	Run       RunCmd       `cmd:"" help:"Create and run a new container from an image."`
	Create    CreateCmd    `cmd:"" help:"Create a new container without starting it."`
	Start     StartCmd     `cmd:"" help:"Start one or more stopped containers."`
	Restart   RestartCmd   `cmd:"" help:"Restart one or more containers."`
	Ps        PsCmd        `cmd:"" help:"List containers."`
	Rm        RmCmd        `cmd:"" help:"Remove one or more containers."`
	Exec      ExecCmd      `cmd:"" help:"Execute a command in a running container."`
	Logs      LogsCmd      `cmd:"" help:"Fetch the logs of a container."`
	Port      PortCmd      `cmd:"" help:"List port mappings or a specific mapping for the container."`
	Rename    RenameCmd    `cmd:"" help:"Rename a container."`
	Cp        CpCmd        `cmd:"" help:"Copy files/folders between a container and the local filesystem."`
	Stop      StopCmd      `cmd:"" help:"Stop one or more running containers."`
	Kill      KillCmd      `cmd:"" help:"Kill one or more running containers."`
	Wait      WaitCmd      `cmd:"" help:"Block until one or more containers stop, then print their exit codes."`
	Stats     StatsCmd     `cmd:"" help:"Display a live stream of container(s) resource usage statistics."`
	Monitor   MonitorCmd   `cmd:"" name:"container-monitor" hidden:"" help:"Run a detached container (internal)."`
	Container ContainerCmd `cmd:"" help:"Manage containers."`
	Volume    VolumeCmd    `cmd:"" help:"Manage volumes."`
	System    SystemCmd    `cmd:"" help:"Manage tug: disk usage, pruning, store checks."`
	Version   VersionCmd   `cmd:"" help:"Show the tug version information."`

	Completion CompletionCmd `cmd:"" help:"Print the shell completion script for bash, zsh or fish."`
	Complete   CompleteCmd   `cmd:"" name:"__complete" hidden:"" passthrough:"" help:"Print completions for a command line (used by the completion scripts)."`
}

// ExitError carries an exit code; a nil Err exits without a message (the
// message was already printed, e.g. by tug's user namespace child).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode implements kong.ExitCoder.
func (e *ExitError) ExitCode() int { return e.Code }

// Main parses args (without the program name) and runs the command; it
// returns the process exit code.
func Main(args []string) int {
	// As signal.NotifyContext, but neither its start nor its stop waits
	// while Go's signal thread takes each signal on or off (about 0.1 ms
	// a signal): one instant more of a signal's default effect at the
	// start, and a process about to exit at the end.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := newEnv(args, os.Stdout, os.Stderr)
	if commandWord(args) == "run" && !slices.Contains(args, "--help") {
		if rt.EarlyEntryPending() {
			// Cloned by tug's entry point: the entry and the store
			// go on beside the parse. Started first, so that its
			// goroutine gets the other processor at once.
			env.spec = speculate(ctx, env, args)
			defer env.spec.discard()
		} else {
			// An unprivileged `tug run` enters tug's user namespace
			// (see Env.openStore): its child starts now, and its
			// start (about 3 ms) overlaps the parse. Where it is not
			// used, it is ended and nothing else changes.
			env.early = rt.StartEarlyUserNamespace(env.Args)
			defer env.early.Discard()
		}
	}
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		<-sigs
		cancel()
	}()
	return execute(ctx, env, args)
}

func newEnv(args []string, stdout, stderr io.Writer) *Env {
	return &Env{Stdout: stdout, Stderr: stderr, Args: append([]string{os.Args[0]}, args...)}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return execute(ctx, newEnv(args, stdout, stderr), args)
}

func execute(ctx context.Context, env *Env, args []string) int {
	var cli CLI
	stdout, stderr := env.Stdout, env.Stderr
	if h := takeHandoff(args); h != nil {
		// tug's namespace child of `tug run`: its parent parsed the line.
		cli.Globals = h.Globals
		env.Globals = &cli.Globals
		configureLogging(&cli.Globals, stderr)
		err := env.diskFull(h.Run.Run(ctx, env))
		env.close()
		if err != nil {
			return report(stderr, err, cli.Debug)
		}
		return 0
	}
	parser, err := kong.New(&cli,
		kong.Name("tug"),
		kong.Description("Build, ship and run containers: one binary, no daemon, no root."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(exitPanic(code)) }),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, NoExpandSubcommands: true}),
		kong.Help(printHelp),
		versionVar(args),
		kong.BindFor[context.Context](ctx),
		kong.Bind(env),
		onlyCommand(args),
	)
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 125
	}
	code, done := func() (code int, done bool) {
		// kong's own exits (--help, --version) come as panics so that
		// deferred cleanup still runs.
		defer func() {
			if r := recover(); r != nil {
				if c, ok := r.(exitPanic); ok {
					code, done = int(c), true
					return
				}
				panic(r)
			}
		}()
		kctx, err := parseArgs(parser, args)
		// The entry may be complete now (see speculate): this tug is
		// still the early child the switch below is about.
		env.spec.wait()
		pending := env.spec != nil || rt.EarlyEntryPending()
		if err != nil {
			// Docker exits 125 on usage errors; kong would exit 80.
			fmt.Fprintf(stderr, "Error: %v\n%s\n", err, usageHint(err))
			return 125, true
		}
		env.Globals = &cli.Globals
		isRun := false
		if sel := kctx.Selected(); sel != nil && sel.Target.CanAddr() && sel.Target.Addr().Interface() == any(&cli.Run) {
			isRun = true
		}
		switch {
		case pending && !isRun:
			// Made by tug's entry point for a "run" that is not the
			// command (`tug build -t run .`): run it the usual way.
			rt.RedoWithoutEarlyEntry()
		case isRun && !pending:
			env.handoff = runHandoff(args, &cli)
		}
		configureLogging(&cli.Globals, stderr)
		err = env.diskFull(kctx.Run())
		env.close()
		if err != nil {
			return report(stderr, err, cli.Debug), true
		}
		return 0, true
	}()
	if done {
		return code
	}
	return 0
}

type exitPanic int

// versionVar gives kong the version line --version prints, where args
// hold it: kong works out every variable for each flag it builds (0.07
// ms of a run's 0.7 ms parse), and nothing else uses this one.
func versionVar(args []string) kong.Vars {
	for _, a := range args {
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "--version") {
			return kong.Vars{"version": versionLine()}
		}
	}
	return kong.Vars{}
}

// onlyCommand has kong leave out every command but the one args name, so
// that it builds the model of that one only: the whole grammar costs
// about 3.5 ms and 2.5 MB of garbage to build, and a rootless command
// parses it twice (the caller and its user-namespace child; `tug run`'s
// child takes the caller's parse instead, see runHandoff). Without a
// command word that names a command (a typo, completion) or with help,
// kong gets all.
func onlyCommand(args []string) kong.Option {
	word := commandWord(args)
	// Help lists a command's aliases under other commands: it needs all.
	if word == "" || word == "completion" || word == "__complete" || slices.Contains(args, "--help") || slices.Contains(args, "-h") {
		return kong.OptionFunc(func(*kong.Kong) error { return nil })
	}
	t := reflect.TypeFor[CLI]()
	var others []string
	found := false
	for i := range t.NumField() {
		f := t.Field(i)
		if _, ok := f.Tag.Lookup("cmd"); !ok {
			continue
		}
		name := f.Tag.Get("name")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == word {
			found = true
		} else {
			others = append(others, f.Name)
		}
	}
	if !found {
		return kong.OptionFunc(func(*kong.Kong) error { return nil })
	}
	return kong.IgnoreFields(`^CLI\.(` + strings.Join(others, "|") + `)$`)
}

// commandWord is the first argument that is neither a global flag nor
// its value: the command, if args name one.
func commandWord(args []string) string {
	long, short := globalValueFlags()
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return ""
		case a == "-" || !strings.HasPrefix(a, "-"):
			return a
		case strings.Contains(a, "="):
		case long[a]:
			i++
		case !strings.HasPrefix(a, "--") && short[a[len(a)-1]]: // -l LEVEL, -Dl LEVEL
			i++
		}
	}
	return ""
}

// globalValueFlags are the global flags that take a value, from Globals:
// the long ones as "--name", the short ones as their letter.
func globalValueFlags() (long map[string]bool, short map[byte]bool) {
	long, short = map[string]bool{}, map[byte]bool{}
	t := reflect.TypeFor[Globals]()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Bool {
			continue
		}
		long["--"+f.Tag.Get("name")] = true
		if s := f.Tag.Get("short"); s != "" {
			short[s[0]] = true
		}
	}
	return long, short
}

// report prints err the way Docker does and returns the exit code.
func report(w io.Writer, err error, debug bool) int {
	code := 1
	var ee *ExitError
	if errors.As(err, &ee) {
		code = ee.Code
		if ee.Err == nil {
			return code
		}
	}
	fmt.Fprintf(w, "Error: %s\n", oneLine(err.Error()))
	if debug {
		printCauses(w, err, "  ")
	}
	return code
}

// printCauses prints the chain of errors err wraps, one "caused by:"
// line each; the errors an error joins (errors.Join, several %w) each
// start a branch, indented under it. A wrapper that says nothing more
// than what it wraps (ExitError, a stack trace's, kong's errors.Join of
// the one error a command returned) gets no line.
func printCauses(w io.Writer, err error, indent string) {
	said := oneLine(err.Error())
	for {
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			errs := u.Unwrap()
			if len(errs) != 1 {
				for _, e := range errs {
					fmt.Fprintf(w, "%scaused by: %s\n", indent, oneLine(e.Error()))
					printCauses(w, e, indent+"  ")
				}
				return
			}
			err = errs[0]
		default:
			return
		}
		if err == nil {
			return
		}
		if msg := oneLine(err.Error()); msg != said {
			fmt.Fprintf(w, "%scaused by: %s\n", indent, msg)
			said = msg
		}
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

func configureLogging(g *Globals, w io.Writer) {
	level := g.LogLevel
	if g.Debug {
		level = "debug"
	}
	lv, err := logrus.ParseLevel(level)
	if err != nil {
		lv = logrus.WarnLevel
	}
	logrus.SetLevel(lv)
	logrus.SetOutput(w)
	logrus.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true})
}
