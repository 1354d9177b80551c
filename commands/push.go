package commands

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/docker/go-units"

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
		opts.Progress = newPushProgress(env.Stderr, isTerminal(env.Stderr)).event
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

// pushProgress shows push events: on a terminal through pull's redrawn
// per-layer lines, on a pipe one plain line when a layer is done.
type pushProgress struct {
	w   io.Writer
	tty *pullProgress
}

func newPushProgress(w io.Writer, tty bool) *pushProgress {
	p := &pushProgress{w: w}
	if tty {
		p.tty = newPullProgress(w, true)
	}
	return p
}

func (p *pushProgress) event(e image.PushEvent) {
	if p.tty == nil {
		if e.Final {
			fmt.Fprintf(p.w, "%s: %s\n", e.Layer, e.Status)
		}
		return
	}
	status := e.Status
	if !e.Final && e.Total > 0 && (e.Status == image.StatusPushing || e.Status == image.StatusCompressing) {
		status += fmt.Sprintf(" %s/%s", units.HumanSize(float64(e.Current)), units.HumanSize(float64(e.Total)))
	}
	p.tty.event(image.PullEvent{Layer: e.Layer, Status: status})
}
