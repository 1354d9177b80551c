package commands

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/tugcli/tug/image"
	"github.com/tugcli/tug/remote"
)

// PushCmd is `tug push`.
type PushCmd struct {
	DigestFile  string `name:"digestfile" help:"Write the manifest digest to this file." placeholder:"FILE"`
	Format      string `name:"format" short:"f" enum:"oci,docker," default:"" help:"Manifest format: oci or docker (default: the image's own, OCI for an image built here)."`
	Compression string `name:"compression" enum:"gzip,zstd" default:"gzip" help:"Layer compression: gzip or zstd (zstd needs --format oci)."`
	Quiet       bool   `short:"q" help:"Print only the digest."`
	TLSVerify   bool   `name:"tls-verify" default:"true" negatable:"" help:"Require HTTPS and verify certificates for non-loopback registries (--tls-verify=false allows plain HTTP)."`
	Image       string `arg:"" name:"IMAGE" help:"Image to push, by name or id."`
	Dest        string `arg:"" optional:"" name:"DEST" help:"Where to push it (default: IMAGE's name), e.g. 127.0.0.1:5000/app:1."`
}

// Run pushes the image; the last line on stdout is the manifest digest.
func (c *PushCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	opts := image.PushOptions{
		Remote:      remote.Options{Insecure: !c.TLSVerify, UserAgent: "tug/" + Version},
		Format:      c.Format,
		Compression: c.Compression,
	}
	if !c.Quiet {
		opts.Progress = newPushProgress(env.Stderr, liveTerminal(env.Stderr)).event
		dest := c.Dest
		if dest == "" {
			dest = c.Image
		}
		fmt.Fprintf(env.Stderr, "Pushing %s\n", dest)
	}
	res, err := store.Push(ctx, c.Image, c.Dest, opts)
	if err != nil {
		return err
	}
	if res.RecordErr != nil {
		fmt.Fprintf(env.Stderr, "WARNING: %v\n", res.RecordErr)
	}
	if !c.Quiet {
		// Docker's last line of a push.
		fmt.Fprintf(env.Stderr, "%s: digest: %s size: %d\n", res.Tag, res.Digest, res.Size)
	}
	if c.DigestFile != "" {
		if err := os.WriteFile(c.DigestFile, []byte(res.Digest), 0o644); err != nil {
			return fmt.Errorf("writing the digest file: %w (the push itself worked: %s)", err, res.Digest)
		}
	}
	fmt.Fprintln(env.Stdout, res.Digest)
	return nil
}

// pushProgress shows push events through layerProgress: a layer being
// compressed or uploaded shows its bytes, rate and time left on a
// terminal; on a pipe, one plain line when a layer is done.
type pushProgress struct{ *layerProgress }

func newPushProgress(w io.Writer, tty bool) *pushProgress {
	return &pushProgress{newLayerProgress(w, tty)}
}

func (p *pushProgress) event(e image.PushEvent) {
	moving := !e.Final && (e.Status == image.StatusPushing || e.Status == image.StatusCompressing)
	p.update(e.Layer, e.Status, e.Current, e.Total, moving, e.Final)
}
