package commands

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/docker/go-units"

	"github.com/tugcli/tug/build"
)

// BuilderCmd is `tug builder`.
type BuilderCmd struct {
	Build BuildCmd        `cmd:"" help:"Build an image from a Dockerfile."`
	Prune BuilderPruneCmd `cmd:"" help:"Remove build cache."`
}

// BuilderPruneCmd is `tug builder prune`.
type BuilderPruneCmd struct {
	All   bool `short:"a" help:"Remove all build cache (and RUN --mount=type=cache directories), not just what no image uses."`
	Force bool `short:"f" help:"Do not prompt for confirmation."`
}

// Run removes the build cache and prints what it reclaimed, as Docker does.
func (c *BuilderPruneCmd) Run(ctx context.Context, env *Env) error {
	// The store first: rootless, this re-executes tug in its user
	// namespace, and only that process asks.
	store, err := env.MountingStore(ctx)
	if err != nil {
		return err
	}
	if !c.Force {
		what := "all dangling build cache"
		if c.All {
			what = "all build cache"
		}
		fmt.Fprintf(env.Stdout, "WARNING! This will remove %s. Are you sure you want to continue? [y/N] ", what)
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			fmt.Fprintln(env.Stdout)
			return nil
		}
	}
	rep, err := build.Prune(store, c.All)
	if rep != nil && len(rep.Deleted) > 0 {
		fmt.Fprintln(env.Stdout, "Deleted build cache objects:")
		for _, id := range rep.Deleted {
			fmt.Fprintln(env.Stdout, id)
		}
		fmt.Fprintln(env.Stdout)
	}
	if err != nil {
		return err
	}
	if rep.Busy {
		fmt.Fprintln(env.Stderr, "WARNING: a build is running: the build cache is kept; prune it when no build runs")
	}
	fmt.Fprintf(env.Stdout, "Total reclaimed space: %s\n", units.HumanSize(float64(rep.Reclaimed)))
	return nil
}
