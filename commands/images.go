package commands

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker/go-units"

	"github.com/tugcli/tug/image"
)

// ImagesCmd is `tug images`.
type ImagesCmd struct {
	All     bool   `short:"a" help:"Show all images (tug keeps no intermediate images yet, so the same as without)."`
	Quiet   bool   `short:"q" help:"Only show image IDs."`
	Digests bool   `help:"Show digests."`
	NoTrunc bool   `name:"no-trunc" help:"Don't truncate output."`
	Format  string `help:"Format output using a Go template, or 'table TEMPLATE', or 'json'." placeholder:"STRING"`
	Repo    string `arg:"" optional:"" name:"REPOSITORY[:TAG]" help:"Only show images of this repository (and tag)."`
}

// imageRow is what --format templates see, with Docker's field names.
type imageRow struct {
	ID           string
	Repository   string
	Tag          string
	Digest       string
	CreatedSince string
	CreatedAt    string
	Size         string
	Containers   string
}

var imageHeaders = map[string]string{
	"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
	"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
}

// Run lists images.
func (c *ImagesCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	rows, err := store.List()
	if err != nil {
		return err
	}
	rows = filterRepo(rows, c.Repo)
	format := c.Format
	switch {
	case c.Quiet:
		seen := map[string]bool{}
		for _, r := range rows {
			id := c.id(r.Image.ID)
			if !seen[id] {
				seen[id] = true
				fmt.Fprintln(env.Stdout, id)
			}
		}
		return nil
	case format == "json":
		format = "{{json .}}"
	case (format == "" || format == "table") && c.Digests:
		format = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	case format == "" || format == "table":
		format = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	}
	f, err := NewFormatter(env.Stdout, format, imageHeaders)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := f.Write(imageRow{
			ID:           c.id(r.Image.ID),
			Repository:   r.Repository,
			Tag:          r.Tag,
			Digest:       r.Digest,
			CreatedSince: units.HumanDuration(time.Since(r.Image.Created)) + " ago",
			CreatedAt:    r.Image.Created.Format("2006-01-02 15:04:05 -0700 MST"),
			Size:         units.HumanSizeWithPrecision(float64(r.Image.Size), 3),
			Containers:   "N/A",
		}); err != nil {
			return err
		}
	}
	return f.Flush()
}

func (c *ImagesCmd) id(id string) string {
	if c.NoTrunc {
		return "sha256:" + id
	}
	return id[:12]
}

// filterRepo keeps rows whose repository (and tag, if given) match, with
// Docker's short names: busybox matches docker.io/library/busybox.
func filterRepo(rows []image.Summary, want string) []image.Summary {
	if want == "" {
		return rows
	}
	repo, tag := want, ""
	if i := strings.LastIndex(want, ":"); i > strings.LastIndex(want, "/") {
		repo, tag = want[:i], want[i+1:]
	}
	var out []image.Summary
	for _, r := range rows {
		if (r.Repository == repo || r.Repository == "docker.io/library/"+repo || r.Repository == "docker.io/"+repo) && (tag == "" || r.Tag == tag) {
			out = append(out, r)
		}
	}
	return out
}
