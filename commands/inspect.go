package commands

import (
	"context"
	"fmt"
)

// InspectCmd is `tug inspect`: containers and images.
type InspectCmd struct {
	Format string   `short:"f" help:"Format output using a Go template." placeholder:"STRING"`
	Type   string   `help:"Only inspect objects of this type: container or image." enum:"image,container," default:""`
	Refs   []string `arg:"" name:"NAME|ID" help:"Containers or images to inspect."`
}

// Run prints a JSON array (or one template line per object), like Docker;
// exits 1 if any object was not found, after printing the others.
func (c *InspectCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	var out []any
	var failed []string
	for _, ref := range c.Refs {
		// As Docker: a container by that name or id first, then an image.
		if c.Type != "image" {
			if st, err := store.LookupContainer(ref); err == nil {
				out = append(out, inspectContainer(st))
				continue
			}
		}
		if c.Type != "container" {
			if info, err := store.Inspect(ref); err == nil {
				out = append(out, info)
				continue
			}
		}
		failed = append(failed, fmt.Sprintf("Error: No such object: %s", ref))
	}
	if err := writeObjects(env.Stdout, c.Format, out); err != nil {
		return err
	}
	for _, f := range failed {
		fmt.Fprintln(env.Stderr, f)
	}
	if len(failed) > 0 {
		return &ExitError{Code: 1}
	}
	return nil
}
