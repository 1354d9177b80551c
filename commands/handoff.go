package commands

import (
	"encoding/json"
	"os"
	"slices"
)

// envHandoff carries `tug run`'s parsed command line from the tug that
// parsed it to the one it re-executes in its namespaces (see
// Env.openStore), which so skips kong: building the run command's model
// and parsing cost about 1.2 ms of each rootless run.
const envHandoff = "_TUG_RUN_PARSED"

// handoff is a parsed `tug run` command line. Args is the line it was
// parsed from: a child whose arguments differ parses its own.
type handoff struct {
	Args    []string
	Globals Globals
	Run     RunCmd
}

// runHandoff returns the environment entry that hands cli's parsed run
// command to the re-executed tug.
func runHandoff(args []string, cli *CLI) string {
	b, err := json.Marshal(handoff{Args: args, Globals: cli.Globals, Run: cli.Run})
	if err != nil {
		return ""
	}
	return string(b)
}

// takeHandoff returns the parsed command line the parent tug left for
// args, if any. It leaves the environment without it: nothing this tug
// starts inherits it.
func takeHandoff(args []string) *handoff {
	raw, ok := os.LookupEnv(envHandoff)
	if !ok {
		return nil
	}
	_ = os.Unsetenv(envHandoff)
	var h handoff
	if err := json.Unmarshal([]byte(raw), &h); err != nil || !slices.Equal(h.Args, args) {
		return nil
	}
	return &h
}
