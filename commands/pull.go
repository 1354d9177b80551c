package commands

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/tugcli/tug/image"
	"github.com/tugcli/tug/remote"
)

// PullCmd is `tug pull`.
type PullCmd struct {
	Quiet     bool   `short:"q" help:"Suppress verbose output; print only the image id."`
	TLSVerify bool   `name:"tls-verify" default:"true" negatable:"" help:"Require HTTPS and verify certificates for non-loopback registries (--tls-verify=false allows plain HTTP)."`
	Platform  string `help:"Pull this platform (os/arch[/variant]) from an index instead of the host's." placeholder:"PLATFORM"`
	AllTags   bool   `short:"a" name:"all-tags" help:"Pull every tagged image of the repository."`
	Ref       string `arg:"" name:"NAME[:TAG|@DIGEST]" help:"Image to pull, e.g. busybox or 127.0.0.1:5000/app:1."`
}

// Run pulls the image and prints its id as the last line; with
// --all-tags, it pulls each tag of the repository in the registry's order
// and prints one id per tag.
func (c *PullCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	if c.AllTags {
		return c.pullAllTags(ctx, env, store)
	}
	res, err := c.pull(ctx, env, store, env.Stderr)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, res.Image.ID)
	return nil
}

func (c *PullCmd) pullAllTags(ctx context.Context, env *Env, store *image.Store) error {
	if _, tag := splitRepoTag(c.Ref); tag != "" {
		return fmt.Errorf("%s: a tag or digest cannot be used with --all-tags", c.Ref)
	}
	opts, err := c.options()
	if err != nil {
		return err
	}
	client := remote.NewClient(opts.Remote)
	repo, err := client.Reference(c.Ref)
	if err != nil {
		return err
	}
	tags, err := client.ListTags(ctx, repo)
	if err != nil {
		return err
	}
	if len(tags) == 0 {
		return fmt.Errorf("%s: the repository has no tags", c.Ref)
	}
	for _, tag := range tags {
		one := *c
		one.Ref = remote.Canonical(repo.Context().Tag(tag))
		res, err := one.pull(ctx, env, store, env.Stderr)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, res.Image.ID)
	}
	return nil
}

// splitRepoTag splits "repo:tag" or "repo@digest"; tag is "" if there is none.
func splitRepoTag(ref string) (repo, tag string) {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		return ref[:i], ref[i:]
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[:i], ref[i:]
	}
	return ref, ""
}

func (c *PullCmd) options() (image.PullOptions, error) {
	opts := image.PullOptions{Remote: remote.Options{Insecure: !c.TLSVerify, UserAgent: "tug/" + Version}}
	if c.Platform != "" {
		p, err := parsePlatform(c.Platform)
		if err != nil {
			return opts, err
		}
		opts.Remote.Platform = p
	}
	return opts, nil
}

// pull pulls with progress on w (unless quiet); run uses it too.
func (c *PullCmd) pull(ctx context.Context, env *Env, store *image.Store, w io.Writer) (*image.PullResult, error) {
	opts, err := c.options()
	if err != nil {
		return nil, err
	}
	if _, err := remote.ParseReference(c.Ref); err != nil {
		return nil, err
	}
	if !c.Quiet {
		pr := newPullProgress(w, liveTerminal(w))
		opts.Progress = pr.event
		fmt.Fprintf(w, "Pulling %s\n", c.Ref)
	}
	res, err := store.Pull(ctx, c.Ref, opts)
	if err != nil {
		return nil, err
	}
	if !c.Quiet {
		fmt.Fprintf(w, "Digest: %s\n", res.Digest)
		if res.UpToDate {
			fmt.Fprintf(w, "Status: Image is up to date for %s\n", res.Name)
		} else {
			fmt.Fprintf(w, "Status: Downloaded newer image for %s\n", res.Name)
		}
	}
	return res, nil
}

// pullProgress shows pull events through layerProgress: a layer
// downloading shows its bytes, rate and time left on a terminal; on a
// pipe, a line when a layer is already there or stored.
type pullProgress struct{ *layerProgress }

func newPullProgress(w io.Writer, tty bool) *pullProgress {
	return &pullProgress{newLayerProgress(w, tty)}
}

func (p *pullProgress) event(e image.PullEvent) {
	final := e.Status == image.StatusExists || e.Status == image.StatusComplete
	p.update(e.Layer, e.Status, e.Current, e.Total, e.Status == image.StatusDownload, final)
}
