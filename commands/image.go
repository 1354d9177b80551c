package commands

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker/go-units"
)

// ImageCmd is `tug image`, Docker's management command: the same commands
// as the top-level ones.
type ImageCmd struct {
	Ls      ImagesCmd     `cmd:"" aliases:"list" help:"List images."`
	Rm      RmiCmd        `cmd:"" aliases:"remove" help:"Remove one or more images."`
	Inspect InspectCmd    `cmd:"" help:"Display detailed information on one or more images."`
	Pull    PullCmd       `cmd:"" help:"Download an image from a registry."`
	Push    PushCmd       `cmd:"" help:"Upload an image to a registry."`
	Tag     TagCmd        `cmd:"" help:"Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE."`
	Save    SaveCmd       `cmd:"" help:"Save one or more images to a tar archive."`
	Load    LoadCmd       `cmd:"" help:"Load images from a tar archive or standard input."`
	Build   BuildCmd      `cmd:"" help:"Build an image from a Dockerfile."`
	History HistoryCmd    `cmd:"" help:"Show the history of an image."`
	Prune   ImagePruneCmd `cmd:"" help:"Remove unused images."`
}

// ImagePruneCmd is `tug image prune`.
type ImagePruneCmd struct {
	All   bool `short:"a" help:"Remove every image no container uses, not just dangling ones."`
	Force bool `short:"f" help:"Do not prompt for confirmation (tug never prompts)."`
}

// Run removes dangling images, or with --all every image no container
// uses, and lists them as Docker does.
func (c *ImagePruneCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	removed, err := store.PruneImages(c.All)
	if len(removed) > 0 {
		fmt.Fprintln(env.Stdout, "Deleted Images:")
		for _, id := range removed {
			fmt.Fprintf(env.Stdout, "deleted: sha256:%s\n", id)
		}
	}
	return err
}

// HistoryCmd is `tug history`.
type HistoryCmd struct {
	NoTrunc bool   `name:"no-trunc" help:"Don't truncate output."`
	Quiet   bool   `short:"q" help:"Only show image IDs."`
	Human   bool   `short:"H" default:"true" negatable:"" help:"Print sizes and dates in human readable format."`
	Format  string `help:"Format output using a Go template." placeholder:"STRING"`
	Image   string `arg:"" name:"IMAGE"`
}

type historyRow struct {
	ID           string
	CreatedSince string
	CreatedAt    string
	CreatedBy    string
	Size         string
	Comment      string
}

var historyHeaders = map[string]string{
	"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
	"Size": "SIZE", "Comment": "COMMENT",
}

// Run prints the image's history, newest step first, as Docker does; the
// top row carries the image id, the others <missing>.
func (c *HistoryCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	img, err := store.Lookup(c.Image)
	if err != nil {
		return err
	}
	sizes, err := store.LayerSizes(img)
	if err != nil {
		return err
	}
	f, err := listFormatter(env.Stdout, c.Format, c.Quiet, "{{.ID}}",
		"table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}", historyHeaders)
	if err != nil {
		return err
	}
	hist := img.Config.History
	layer := len(sizes) - 1
	for i := len(hist) - 1; i >= 0; i-- {
		h := hist[i]
		row := historyRow{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Size: "0B"}
		if i == len(hist)-1 {
			row.ID = img.ID[:12]
			if c.NoTrunc {
				row.ID = "sha256:" + img.ID
			}
		}
		if !h.EmptyLayer && layer >= 0 {
			row.Size = units.HumanSizeWithPrecision(float64(sizes[layer]), 3)
			if !c.Human {
				row.Size = fmt.Sprint(sizes[layer])
			}
			layer--
		}
		row.CreatedAt = h.Created.Format(time.RFC3339)
		row.CreatedSince = units.HumanDuration(time.Since(h.Created.Time)) + " ago"
		if !c.NoTrunc && len(row.CreatedBy) > 45 {
			row.CreatedBy = row.CreatedBy[:44] + "…"
		}
		row.CreatedBy = strings.ReplaceAll(row.CreatedBy, "\t", " ")
		if err := f.Write(row); err != nil {
			return err
		}
	}
	return f.Flush()
}
