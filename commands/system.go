package commands

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/docker/go-units"

	"github.com/tugcli/tug/build"
)

// SystemCmd is `tug system`.
type SystemCmd struct {
	Df    SystemDfCmd    `cmd:"" help:"Show tug disk usage."`
	Prune SystemPruneCmd `cmd:"" help:"Remove stopped containers, dangling images and unused build cache."`
	Check SystemCheckCmd `cmd:"" help:"Check the store for damage, and repair it with --repair."`
	Info  InfoCmd        `cmd:"" help:"Display system-wide information."`
	Reset SystemResetCmd `cmd:"" help:"Remove all containers, images, volumes and caches of the store."`
}

// SystemDfCmd is `tug system df`.
type SystemDfCmd struct {
	Format string `help:"Format output using a Go template, or 'table TEMPLATE', or 'json'." placeholder:"STRING"`
}

// Run prints Docker's df table.
func (c *SystemDfCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	u, err := store.DiskUsage()
	if err != nil {
		return err
	}
	f, err := listFormatter(env.Stdout, c.Format, false, "", "table {{.Type}}\t{{.Total}}\t{{.Active}}\t{{.Size}}", map[string]string{
		"Type": "TYPE", "Total": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
	})
	if err != nil {
		return err
	}
	type row struct{ Type, Total, Active, Size string }
	h := func(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }
	for _, r := range []row{
		{"Images", fmt.Sprint(u.Images), fmt.Sprint(u.ActiveImages), h(u.ImagesSize)},
		{"Containers", fmt.Sprint(u.Containers), fmt.Sprint(u.RunningContainers), h(u.ContainersSize)},
		{"Local Volumes", fmt.Sprint(u.Volumes), "-", h(u.VolumesSize)},
		{"Build Cache", "-", "-", h(u.BuildCacheSize)},
	} {
		if err := f.Write(r); err != nil {
			return err
		}
	}
	return f.Flush()
}

// SystemPruneCmd is `tug system prune`.
type SystemPruneCmd struct {
	All     bool `short:"a" help:"Remove all unused images, not just dangling ones."`
	Force   bool `short:"f" help:"Do not prompt for confirmation (tug never prompts here)."`
	Volumes bool `help:"Prune volumes no container uses, too."`
}

// Run removes stopped containers, then unused images, then build cache.
func (c *SystemPruneCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	ctrs, err := store.PruneContainers()
	if err != nil {
		return err
	}
	imgs, err := store.PruneImages(c.All)
	if err != nil {
		return err
	}
	var vols []string
	if c.Volumes {
		if vols, err = store.PruneVolumes(); err != nil {
			return err
		}
	}
	cache, err := build.Prune(store, c.All)
	if err != nil {
		return err
	}
	if len(ctrs) > 0 {
		fmt.Fprintln(env.Stdout, "Deleted Containers:")
		for _, id := range ctrs {
			fmt.Fprintln(env.Stdout, id)
		}
		fmt.Fprintln(env.Stdout)
	}
	printPrunedVolumes(env, vols)
	if len(imgs) > 0 {
		fmt.Fprintln(env.Stdout, "Deleted Images:")
		for _, id := range imgs {
			fmt.Fprintf(env.Stdout, "deleted: sha256:%s\n", id)
		}
		fmt.Fprintln(env.Stdout)
	}
	if cache.Busy {
		fmt.Fprintln(env.Stderr, "WARNING: a build is running: the build cache is kept; prune it when no build runs")
	}
	fmt.Fprintf(env.Stdout, "Total reclaimed space: %s\n", units.HumanSize(float64(cache.Reclaimed)))
	return nil
}

// SystemCheckCmd is `tug system check`, as Podman's.
type SystemCheckCmd struct {
	Repair bool `short:"r" help:"Remove damaged layers and images (images that are whole are kept)."`
	Force  bool `short:"f" help:"With --repair, remove damaged containers too."`
}

// Run reports damage and exits 1 while any is left.
func (c *SystemCheckCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	res, err := store.Check(c.Repair, c.Force)
	if err != nil {
		return err
	}
	if res.Clean() {
		fmt.Fprintln(env.Stdout, "No problems found.")
		return nil
	}
	print := func(kind string, m map[string][]error) {
		ids := make([]string, 0, len(m))
		for id := range m {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			for _, e := range m[id] {
				fmt.Fprintf(env.Stdout, "damaged %s %s: %s\n", kind, id, oneLine(e.Error()))
			}
		}
	}
	print("layer", res.Layers)
	print("image", res.Images)
	print("container", res.Containers)
	if c.Repair {
		for _, r := range res.Repaired {
			fmt.Fprintf(env.Stdout, "removed %s\n", r)
		}
		if len(res.Containers) == 0 || c.Force {
			return nil
		}
	}
	return &ExitError{Code: 1, Err: errors.New("the store has damage: run 'tug system check --repair' (add --force to remove damaged containers)")}
}

// SystemResetCmd is `tug system reset`, as Podman's.
type SystemResetCmd struct {
	Force bool `short:"f" help:"Really remove everything: without it, tug says what would go and does nothing."`
}

// Run removes every container, image, volume and cache of the store.
func (c *SystemResetCmd) Run(ctx context.Context, env *Env) error {
	if !c.Force {
		return &ExitError{Code: 125, Err: errors.New("system reset removes all containers (killing running ones), images, volumes and build and push caches of this store: run 'tug system reset --force' to do it")}
	}
	store, err := env.MountingStore(ctx)
	if err != nil {
		return err
	}
	return store.Reset()
}
