package commands

import "context"

// RenameCmd is `tug rename`.
type RenameCmd struct {
	Container string `arg:"" name:"CONTAINER" help:"Container to rename, by name or id."`
	NewName   string `arg:"" name:"NEW_NAME" help:"Its new name."`
}

// Run renames the container; a running one keeps running.
func (c *RenameCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	return store.RenameContainer(c.Container, c.NewName)
}
