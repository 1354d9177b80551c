package commands

import (
	"context"
	"fmt"
)

// TagCmd is `tug tag`.
type TagCmd struct {
	Source string `arg:"" name:"SOURCE_IMAGE[:TAG]" help:"Image to tag."`
	Target string `arg:"" name:"TARGET_IMAGE[:TAG]" help:"New name."`
}

// Run tags the image.
func (c *TagCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	return store.Tag(c.Source, c.Target)
}

// RmiCmd is `tug rmi`.
type RmiCmd struct {
	Force bool     `short:"f" help:"Force removal of an image referenced by several names."`
	Refs  []string `arg:"" name:"IMAGE" help:"Images to remove, by name or id."`
}

// Run removes each image; it goes on past failures and exits 1 if any failed.
func (c *RmiCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	failed := 0
	for _, ref := range c.Refs {
		rep, err := store.Remove(ref, c.Force)
		if err != nil {
			fmt.Fprintf(env.Stderr, "Error: %s\n", oneLine(err.Error()))
			failed++
			continue
		}
		for _, u := range rep.Untagged {
			fmt.Fprintf(env.Stdout, "Untagged: %s\n", u)
		}
		for _, d := range rep.Deleted {
			fmt.Fprintf(env.Stdout, "Deleted: %s\n", d)
		}
	}
	if failed > 0 {
		return &ExitError{Code: 1}
	}
	return nil
}
