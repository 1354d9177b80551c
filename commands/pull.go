package commands

import (
	"context"
	"fmt"
	"io"
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
	Ref       string `arg:"" name:"NAME[:TAG|@DIGEST]" help:"Image to pull, e.g. busybox or 127.0.0.1:5000/app:1."`
}

// Run pulls the image and prints its id as the last line.
func (c *PullCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	res, err := c.pull(ctx, env, store, env.Stderr)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, res.Image.ID)
	return nil
}

// pull pulls with progress on w (unless quiet); run uses it too.
func (c *PullCmd) pull(ctx context.Context, env *Env, store *image.Store, w io.Writer) (*image.PullResult, error) {
	opts := image.PullOptions{Remote: remote.Options{Insecure: !c.TLSVerify, UserAgent: "tug/" + Version}}
	if c.Platform != "" {
		p, err := parsePlatform(c.Platform)
		if err != nil {
			return nil, err
		}
		opts.Remote.Platform = p
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
