package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/docker/go-units"

	"github.com/tugcli/tug/image"
)

// LoadCmd is `tug load`.
type LoadCmd struct {
	Input string `short:"i" help:"Read from an archive file (docker-archive or oci-archive, possibly compressed) or an OCI layout directory instead of standard input." placeholder:"FILE"`
	Quiet bool   `short:"q" help:"Suppress the progress output."`
}

// Run loads the archive and prints, in Docker's words, each name loaded
// (the id of an image the archive does not name).
func (c *LoadCmd) Run(ctx context.Context, env *Env) error {
	opts := image.LoadOptions{Input: c.Input}
	if c.Input == "" {
		if ttyFile(os.Stdin) {
			return errors.New("requested load from stdin, but stdin is a terminal: use -i FILE or redirect an archive to tug load")
		}
		opts.Stdin = os.Stdin
	}
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	if !c.Quiet && ttyFile(env.Stderr) {
		opts.Progress = newLoadProgress(env.Stderr).event
	}
	loaded, err := store.Load(ctx, opts)
	if err != nil {
		return err
	}
	for _, l := range loaded {
		if len(l.Names) == 0 {
			fmt.Fprintf(env.Stdout, "Loaded image ID: sha256:%s\n", l.ID)
		}
		for _, n := range l.Names {
			fmt.Fprintf(env.Stdout, "Loaded image: %s\n", n)
		}
	}
	return nil
}

// loadProgress redraws one line per layer on a terminal, as docker load
// does; load shows no progress elsewhere.
type loadProgress struct {
	mu    sync.Mutex
	w     io.Writer
	order []string
	state map[string]image.PullEvent
	drawn int
}

func newLoadProgress(w io.Writer) *loadProgress {
	return &loadProgress{w: w, state: map[string]image.PullEvent{}}
}

func (p *loadProgress) event(e image.PullEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.state[e.Layer]; !ok {
		p.order = append(p.order, e.Layer)
	}
	p.state[e.Layer] = e
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", p.drawn)
	}
	for _, id := range p.order {
		fmt.Fprintf(p.w, "\x1b[2K%s: %s\n", id, loadStatus(p.state[id]))
	}
	p.drawn = len(p.order)
}

// loadStatus says a pull's layer events in load's words.
func loadStatus(e image.PullEvent) string {
	switch e.Status {
	case image.StatusDownload:
		if e.Total > 0 {
			return fmt.Sprintf("Verifying %s/%s", units.HumanSize(float64(e.Current)), units.HumanSize(float64(e.Total)))
		}
		return "Verifying"
	case image.StatusDownloaded:
		return "Verified"
	case image.StatusComplete:
		return "Loaded"
	}
	return e.Status
}
