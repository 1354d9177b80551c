package commands

import (
	"context"
	"fmt"
)

// VolumeCmd is `tug volume`.
type VolumeCmd struct {
	Create  VolumeCreateCmd  `cmd:"" help:"Create a volume."`
	Ls      VolumeLsCmd      `cmd:"" aliases:"list" help:"List volumes."`
	Rm      VolumeRmCmd      `cmd:"" aliases:"remove" help:"Remove one or more volumes."`
	Inspect VolumeInspectCmd `cmd:"" help:"Display detailed information on one or more volumes."`
	Prune   VolumePruneCmd   `cmd:"" help:"Remove unused local volumes."`
}

// VolumePruneCmd is `tug volume prune`.
type VolumePruneCmd struct {
	Force bool `short:"f" help:"Do not prompt for confirmation (tug never prompts)."`
	All   bool `short:"a" help:"Remove all unused volumes (tug has only named ones, so this is the default)."`
}

// Run removes every volume no container uses, as Docker prints it.
func (c *VolumePruneCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	removed, err := store.PruneVolumes()
	printPrunedVolumes(env, removed)
	return err
}

func printPrunedVolumes(env *Env, removed []string) {
	if len(removed) == 0 {
		return
	}
	fmt.Fprintln(env.Stdout, "Deleted Volumes:")
	for _, v := range removed {
		fmt.Fprintln(env.Stdout, v)
	}
	fmt.Fprintln(env.Stdout)
}

// VolumeCreateCmd is `tug volume create`.
type VolumeCreateCmd struct {
	Name string `arg:"" help:"Volume name."`
}

// Run creates the volume and prints its name.
func (c *VolumeCreateCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	v, err := store.CreateVolume(c.Name)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, v.Name)
	return nil
}

// VolumeLsCmd is `tug volume ls`.
type VolumeLsCmd struct {
	Quiet  bool   `short:"q" help:"Only display volume names."`
	Format string `help:"Format output using a Go template." placeholder:"STRING"`
}

var volumeHeaders = map[string]string{"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT", "Scope": "SCOPE"}

// Run lists volumes in Docker's columns.
func (c *VolumeLsCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	vols, err := store.Volumes()
	if err != nil {
		return err
	}
	f, err := listFormatter(env.Stdout, c.Format, c.Quiet, "{{.Name}}", "table {{.Driver}}\t{{.Name}}", volumeHeaders)
	if err != nil {
		return err
	}
	for _, v := range vols {
		if err := f.Write(v); err != nil {
			return err
		}
	}
	return f.Flush()
}

// VolumeRmCmd is `tug volume rm`.
type VolumeRmCmd struct {
	Force bool     `short:"f" help:"Do not fail on volumes that do not exist."`
	Names []string `arg:"" name:"VOLUME" help:"Volumes to remove."`
}

// Run removes each volume, printing its name; exits 1 if any failed.
func (c *VolumeRmCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	failed := false
	for _, n := range c.Names {
		if err := store.RemoveVolume(n); err != nil {
			if c.Force {
				continue
			}
			fmt.Fprintf(env.Stderr, "Error: %s\n", oneLine(err.Error()))
			failed = true
			continue
		}
		fmt.Fprintln(env.Stdout, n)
	}
	if failed {
		return &ExitError{Code: 1}
	}
	return nil
}

// VolumeInspectCmd is `tug volume inspect`.
type VolumeInspectCmd struct {
	Format string   `short:"f" help:"Format output using a Go template." placeholder:"STRING"`
	Names  []string `arg:"" name:"VOLUME" help:"Volumes to inspect."`
}

// Run prints a JSON array of the volumes, as Docker does.
func (c *VolumeInspectCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	var out []any
	failed := false
	for _, n := range c.Names {
		v, err := store.Volume(n)
		if err != nil {
			fmt.Fprintf(env.Stderr, "Error: %s\n", oneLine(err.Error()))
			failed = true
			continue
		}
		out = append(out, v)
	}
	if err := writeObjects(env.Stdout, c.Format, out); err != nil {
		return err
	}
	if failed {
		return &ExitError{Code: 1}
	}
	return nil
}
