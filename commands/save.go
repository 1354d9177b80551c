package commands

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/term"

	"github.com/tugcli/tug/image"
)

// SaveCmd is `tug save`.
type SaveCmd struct {
	Output string   `short:"o" help:"Write to a file (for oci-dir, a new or empty directory) instead of standard output." placeholder:"FILE"`
	Format string   `help:"Archive format: docker-archive (docker save's), oci-archive (a tar of an OCI layout) or oci-dir (an OCI layout directory)." enum:"docker-archive,oci-archive,oci-dir" default:"docker-archive"`
	Images []string `arg:"" name:"IMAGE" help:"Images to save, by name or id; an image saved by name keeps that name in the archive."`
}

// Run writes the archive.
func (c *SaveCmd) Run(ctx context.Context, env *Env) error {
	format := image.ArchiveFormat(c.Format)
	if c.Output == "" {
		if format == image.OCIDir {
			return errors.New("--format oci-dir writes a directory: name it with -o DIR")
		}
		if ttyFile(env.Stdout) {
			return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
		}
	}
	out := c.Output
	if out != "" {
		abs, err := filepath.Abs(out)
		if err != nil {
			return err
		}
		out = abs
	}
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	return store.Save(ctx, c.Images, image.SaveOptions{Format: format, Path: out, Writer: env.Stdout})
}

// ttyFile reports whether w is a terminal (unlike a character device such
// as /dev/null, which save writes to and load reads from gladly).
func ttyFile(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
