package commands

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/sirupsen/logrus"
	"golang.org/x/term"

	"github.com/tugcli/tug/image"
	rt "github.com/tugcli/tug/runtime"
	"github.com/tugcli/tug/runtime/userns"
)

// Env is what every command gets: its output streams, the global flags,
// and the store, opened on first use.
type Env struct {
	Stdout, Stderr io.Writer
	Globals        *Globals
	// Args is the whole command line, for the user namespace re-exec.
	Args []string
	// Config is the configuration file's settings, read on first use.
	Config *Config
	// Isolation is the --isolation of run, create and build, given before
	// the store is opened; empty is the configuration file's, else auto.
	Isolation string

	store  *image.Store
	choice *rt.Choice
	// entered: this tug is where the store opens (see enter).
	entered bool
	// handoff is the parsed command line for the tug re-executed in
	// tug's namespaces, if it may skip parsing (see runHandoff).
	handoff string
	// early is the user-namespace child of an unprivileged `tug run`,
	// started before the parse (see Main); nil where there is none.
	early *rt.EarlyUserNamespace
	// spec is the entry and store opening begun before the parse where
	// this tug is that child already (see speculate); nil where none.
	spec *speculation
}

// isolation settles, once per process, how this tug confines containers
// and what it enters first (see rt.ChooseIsolation).
func (e *Env) isolation() (rt.Choice, error) {
	if e.choice != nil {
		return *e.choice, nil
	}
	if err := e.loadConfig(); err != nil {
		return rt.Choice{}, err
	}
	req := e.Isolation
	if req == "" {
		req = e.Config.Isolation.Default
	}
	iso, err := rt.ParseIsolation(req)
	if err != nil {
		if e.Isolation == "" {
			err = fmt.Errorf("configuration file %s: isolation.default: %w", e.Config.Path, err)
		}
		return rt.Choice{}, err
	}
	c, err := rt.ChooseIsolation(iso)
	if err != nil {
		return rt.Choice{}, err
	}
	e.choice = &c
	return c, nil
}

// ChosenIsolation is the isolation the store was opened for: call it
// after Store or MountingStore.
func (e *Env) ChosenIsolation() rt.Isolation {
	if e.choice == nil {
		return rt.IsolationRootless
	}
	return e.choice.Isolation
}

// loadConfig reads the configuration file once and applies its defaults
// to the global settings the command line left unset.
func (e *Env) loadConfig() error {
	if e.Config != nil {
		return nil
	}
	c, err := loadConfig()
	if err != nil {
		return err
	}
	e.setConfig(c)
	return nil
}

// setConfig takes c as the configuration and applies its defaults to the
// global settings the command line left unset.
func (e *Env) setConfig(c *Config) {
	e.Config = c
	if e.Globals != nil {
		c.apply(e.Globals)
	}
}

// Store opens the image store. An unprivileged user first needs tug's user
// namespace: then this process re-executes itself inside one, waits, and
// Store returns an *ExitError with the child's exit code, which the caller
// returns as it is. The child runs the same command and gets here again,
// this time inside.
func (e *Env) Store(ctx context.Context) (*image.Store, error) {
	return e.openStore(ctx, false)
}

// MountingStore is Store for commands that mount: as root, too, they run
// in a mount namespace of their own, so that nothing they mount is left in
// the host's when they end or are killed.
func (e *Env) MountingStore(ctx context.Context) (*image.Store, error) {
	return e.openStore(ctx, true)
}

func (e *Env) openStore(ctx context.Context, mounts bool) (*image.Store, error) {
	if e.store != nil {
		return e.store, nil
	}
	if err := e.enter(ctx, mounts); err != nil {
		return nil, err
	}
	s, err := image.Open(image.Options{
		GraphRoot:         e.Globals.Root,
		RunRoot:           e.Globals.RunRoot,
		Driver:            e.Globals.StorageDriver,
		IgnoreChownErrors: rt.SingleIDMapping(),
	})
	if err != nil {
		return nil, err
	}
	logrus.Debugf("storage driver: %s; decided by %s", s.Driver(), s.Driver().Source)
	e.store = s
	return s, nil
}

// EnterForMounts puts this tug where MountingStore opens the store: in
// the caller, it runs the command in a re-executed tug in the namespaces
// the isolation needs and returns its exit status as an *ExitError; in
// that tug, or where none is needed, it returns nil. run calls it first
// to start the container's init while the store opens.
func (e *Env) EnterForMounts(ctx context.Context) error {
	return e.enter(ctx, true)
}

func (e *Env) enter(ctx context.Context, mounts bool) error {
	if e.entered {
		return nil
	}
	if s := e.spec; s != nil {
		e.spec = nil
		if taken, err := s.take(e); taken {
			return err
		}
	}
	if err := e.loadConfig(); err != nil {
		return err
	}
	choice, err := e.isolation()
	if err != nil && !mounts {
		// A command that runs nothing needs only the store: it opens it
		// as auto would, or, where nothing isolates, as root can.
		if c, aerr := rt.ChooseIsolation(rt.IsolationAuto); aerr == nil {
			choice, err = c, nil
		} else if os.Geteuid() == 0 {
			choice, err = rt.Choice{Isolation: "none", Why: "none works here, and this command runs nothing: " + oneLine(err.Error())}, nil
		}
	}
	if err != nil {
		return &ExitError{Code: 125, Err: err}
	}
	if e.handoff != "" {
		// Inherited by the re-executed tug only: this one exits after it.
		_ = os.Setenv(envHandoff, e.handoff)
	}
	if rt.EarlyEntryPending() {
		if choice.Entry != rt.EntryUserNamespace {
			rt.RedoWithoutEarlyEntry()
		}
		// This tug is the namespace child already (see main.entry):
		// once its maps are written it goes on as Run's child would.
		warning, err := rt.CompleteEarlyEntry(choice)
		if err != nil {
			return &ExitError{Code: 125, Err: err}
		}
		if warning != "" {
			fmt.Fprintf(e.Stderr, "WARNING: %s\n", warning)
		}
		if rt.EarlyMapsCached() {
			logrus.Debugf("user namespace: id maps written by tug's entry point, from %s", userns.MapCachePath())
		}
		// As that child: the choice comes from the environment now.
		e.choice = nil
		if choice, err = e.isolation(); err != nil {
			return &ExitError{Code: 125, Err: err}
		}
	} else if mounts && choice.Entry == rt.EntryMountNamespace {
		code, err := rt.RunInMountNamespace(ctx, e.Args, choice)
		if err != nil {
			return &ExitError{Code: 125, Err: err}
		}
		return &ExitError{Code: code}
	} else if choice.UserNamespace() {
		code, ok, err := e.early.Use(choice, e.Args)
		if !ok {
			code, err = e.runUserNamespace(ctx, choice)
		}
		if err != nil {
			return &ExitError{Code: 125, Err: err}
		}
		return &ExitError{Code: code}
	}
	// Said once, by the tug that runs the command.
	logrus.Debugf("isolation: %s (%s)", choice.Isolation, choice.Why)
	e.entered = true
	return nil
}

// runUserNamespace re-executes this tug in the user namespace the choice
// enters and returns its exit status.
func (e *Env) runUserNamespace(ctx context.Context, choice rt.Choice) (int, error) {
	ns, err := choice.PlanUserNamespace()
	if err != nil {
		return 0, err
	}
	if ns.Warning != "" {
		fmt.Fprintf(e.Stderr, "WARNING: %s\n", ns.Warning)
	}
	return ns.Run(ctx, e.Args)
}

func (e *Env) close() {
	if e.store != nil {
		if err := e.store.Close(); err != nil {
			fmt.Fprintf(e.Stderr, "WARNING: closing the image store: %v\n", err)
		}
		e.store = nil
	}
}

// isTerminal reports whether w is a terminal (not merely a character
// device such as /dev/null).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// liveTerminal reports whether w is a terminal that live progress may
// redraw: not one with TERM=dumb (an editor's shell buffer, a CI log that
// claims a tty), which gets the lines a pipe gets.
func liveTerminal(w io.Writer) bool {
	return isTerminal(w) && os.Getenv("TERM") != "dumb"
}
