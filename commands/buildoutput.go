package commands

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tugcli/tug/image"
)

// buildOutput is build --output: the final stage's files, as a directory
// or a tar archive.
type buildOutput struct {
	typ  string // "local" or "tar"
	dest string // a path, or "-" for stdout
}

// parseOutput reads --output as docker buildx does: type=local,dest=DIR,
// type=tar,dest=FILE, type=oci|docker,dest=FILE (an image archive), a
// bare directory, or - for a tar on stdout.
func parseOutput(s string) (*buildOutput, error) {
	switch {
	case s == "":
		return nil, nil
	case s == "-":
		return &buildOutput{typ: "tar", dest: "-"}, nil
	case !strings.Contains(s, "="):
		return &buildOutput{typ: "local", dest: s}, nil
	}
	o := &buildOutput{}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "type":
			o.typ = v
		case "dest":
			o.dest = v
		default:
			return nil, fmt.Errorf("invalid --output %q: unknown key %q (tug takes type and dest)", s, k)
		}
	}
	switch {
	case o.typ != "local" && o.typ != "tar" && o.typ != "oci" && o.typ != "docker":
		return nil, fmt.Errorf("invalid --output %q: type must be local, tar, oci or docker (the image itself is always kept in the store)", s)
	case o.dest == "":
		return nil, fmt.Errorf("invalid --output %q: dest is missing", s)
	case o.typ == "local" && o.dest == "-":
		return nil, fmt.Errorf("invalid --output %q: type=local needs a directory; use - alone for a tar on stdout", s)
	}
	return o, nil
}

// export writes the image's files (local, tar) or the image itself as an
// archive (oci, docker: what tug save writes) where the output says.
func (o *buildOutput) export(ctx context.Context, store *image.Store, img *image.Image, stdout io.Writer) error {
	if o.typ == "oci" || o.typ == "docker" {
		so := image.SaveOptions{Format: image.OCIArchive, Writer: stdout}
		if o.typ == "docker" {
			so.Format = image.DockerArchive
		}
		if o.dest != "-" {
			abs, err := filepath.Abs(o.dest)
			if err != nil {
				return err
			}
			so.Path = abs
		}
		if err := store.Save(ctx, []string{img.ID}, so); err != nil {
			return fmt.Errorf("--output type=%s: %w", o.typ, err)
		}
		return nil
	}
	root := "/nonexistent-empty-image"
	if img.TopLayer != "" {
		p, err := store.MountLayer(img.TopLayer)
		if err != nil {
			return err
		}
		defer store.UnmountLayer(img.TopLayer)
		root = p
	} else {
		dir, err := os.MkdirTemp("", "tug-empty-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		root = dir
	}
	if o.typ == "tar" {
		w := stdout
		if o.dest != "-" {
			f, err := os.Create(o.dest)
			if err != nil {
				return fmt.Errorf("--output: %w", err)
			}
			defer f.Close()
			w = f
		}
		if err := tarHostPath(w, root+"/.", "", false); err != nil {
			return fmt.Errorf("--output: %w", err)
		}
		return nil
	}
	if err := os.MkdirAll(o.dest, 0o755); err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarHostPath(pw, root+"/.", "", false)) }()
	err := extractOnHost(o.dest, pr)
	pr.CloseWithError(err)
	if err != nil {
		return fmt.Errorf("--output %s: %w", o.dest, err)
	}
	return nil
}
