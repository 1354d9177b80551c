package commands

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/docker/go-units"

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
	if !c.Quiet {
		pr := newPullProgress(w, isTerminal(w))
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

// pullProgress shows one line per layer: redrawn in place on a terminal,
// and on a pipe only the lines where a layer reaches a final state.
type pullProgress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	order []string
	state map[string]image.PullEvent
	drawn int
}

func newPullProgress(w io.Writer, tty bool) *pullProgress {
	return &pullProgress{w: w, tty: tty, state: map[string]image.PullEvent{}}
}

func (p *pullProgress) event(e image.PullEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.state[e.Layer]; !ok {
		p.order = append(p.order, e.Layer)
	}
	p.state[e.Layer] = e
	if p.tty {
		p.redraw()
		return
	}
	switch e.Status {
	case image.StatusExists, image.StatusComplete:
		fmt.Fprintf(p.w, "%s: %s\n", e.Layer, e.Status)
	}
}

func (p *pullProgress) redraw() {
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", p.drawn)
	}
	for _, id := range p.order {
		e := p.state[id]
		line := fmt.Sprintf("%s: %s", id, e.Status)
		if e.Status == image.StatusDownload && e.Total > 0 {
			line += fmt.Sprintf(" %s/%s", units.HumanSize(float64(e.Current)), units.HumanSize(float64(e.Total)))
		}
		fmt.Fprintf(p.w, "\x1b[2K%s\n", line)
	}
	p.drawn = len(p.order)
}
