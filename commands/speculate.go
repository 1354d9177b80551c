package commands

import (
	"bytes"
	"context"
	"strings"

	rt "github.com/tugcli/tug/runtime"
)

// A rootless `tug run` built with tug's entry point is its user-namespace
// child from its first instruction (see package runtime/userns), and kong
// then takes about a millisecond, on one processor, to build and parse its
// command line. Meanwhile, on the other, speculate does what enter and
// openStore will do first for the globals the line plainly gives: it
// completes the entry into tug's namespaces and opens the store. enter
// takes the entry as it is (made for a run whose isolation comes from the
// configuration, as the parse then finds: a line with --isolation is not
// taken on), and the store where the parsed globals are the ones assumed.
// A line that does not parse has had its store opened for nothing.

// speculation is that work, done on an Env of its own.
type speculation struct {
	done   chan struct{}
	env    *Env
	stderr bytes.Buffer // what enter printed (a warning), said again by the caller's
	err    error
}

// speculate starts the speculation for args in an early child, or returns
// nil where there is none or the line is not one it takes on: anything
// but --root, --runroot and --storage-driver before the command (logging
// included: it sets up logging now as the parse will), --help, or
// --isolation anywhere.
func speculate(ctx context.Context, env *Env, args []string) *speculation {
	if !rt.EarlyEntryPending() {
		return nil
	}
	g, ok := plainGlobals(args)
	if !ok {
		return nil
	}
	for _, a := range args {
		if a == "--help" || a == "-h" || a == "--isolation" || strings.HasPrefix(a, "--isolation=") {
			return nil
		}
	}
	configureLogging(g, env.Stderr)
	s := &speculation{done: make(chan struct{})}
	s.env = &Env{Stdout: env.Stdout, Stderr: &s.stderr, Globals: g, Args: env.Args}
	go func() {
		defer close(s.done)
		// Where the isolation is not tug's user namespace, enter has
		// the line run again without the entry point: that is decided
		// once the line is parsed.
		if c, err := s.env.isolation(); err != nil || c.Entry != rt.EntryUserNamespace {
			return
		}
		_, s.err = s.env.MountingStore(ctx)
	}()
	return s
}

// plainGlobals reads the global flags before the command word "run" as
// kong will, where they are only --root, --runroot and --storage-driver
// (NAME VALUE or NAME=VALUE); ok is false otherwise.
func plainGlobals(args []string) (g *Globals, ok bool) {
	g = &Globals{LogLevel: "warn"} // kong's default
	fields := map[string]*string{"--root": &g.Root, "--runroot": &g.RunRoot, "--storage-driver": &g.StorageDriver}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "run" {
			return g, true
		}
		name, value, hasValue := strings.Cut(a, "=")
		field := fields[name]
		if field == nil {
			return nil, false
		}
		if !hasValue {
			if i++; i == len(args) || strings.HasPrefix(args[i], "-") {
				return nil, false
			}
			value = args[i]
		}
		*field = value
	}
	return nil, false
}

// wait waits until the speculation has ended; nil has nothing to wait for.
func (s *speculation) wait() {
	if s != nil {
		<-s.done
	}
}

// take gives e what the speculation made, once it has ended: its
// warning (on e's stderr), the entry into tug's namespaces, and the store
// where e's globals are those it assumed. taken is false where it did not
// enter (enter goes on as without it); err is what entering returned.
func (s *speculation) take(e *Env) (taken bool, err error) {
	s.wait()
	_, _ = e.Stderr.Write(s.stderr.Bytes())
	if !s.env.entered {
		return s.err != nil, s.err
	}
	e.setConfig(s.env.Config)
	e.choice, e.entered = s.env.choice, true
	if s.err == nil && *e.Globals == *s.env.Globals {
		e.store, s.env.store = s.env.store, nil
	}
	s.env.close()
	return true, nil
}

// discard ends the speculation; a store it opened that was not taken is
// closed.
func (s *speculation) discard() {
	if s != nil {
		s.wait()
		s.env.close()
	}
}
