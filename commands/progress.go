package commands

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/docker/go-units"
	"golang.org/x/term"
)

// layerProgress is pull's and push's progress: one line per layer. On a
// terminal the lines are redrawn in place, and a layer that is moving
// bytes shows how many of how many, its rate and the time left:
//
//	3c137bf03cb5: Downloading 1.2MB/4.194MB 1.5MB/s 2s left
//
// On a pipe only the line where a layer reaches its final state is
// printed, without escape codes. No colours are written, so NO_COLOR
// holds.
type layerProgress struct {
	w     io.Writer
	tty   bool
	width int              // columns of the terminal; 0: unknown
	now   func() time.Time // the clock, for the rate

	mu    sync.Mutex
	order []string
	lines map[string]*layerLine
	drawn int       // lines on screen
	shown time.Time // when they were drawn
}

type layerLine struct {
	status         string
	current, total int64
	bytes          bool     // show current/total, rate and time left
	samples        []sample // (time, bytes) of the current status, oldest first
}

type sample struct {
	at time.Time
	n  int64
}

const (
	// redrawEvery is how often byte counts are redrawn; a new layer or
	// status is drawn at once.
	redrawEvery = 100 * time.Millisecond
	// rateWindow is how far back the rate looks, and rateAfter how long
	// a status must have moved bytes before a rate is shown.
	rateWindow = 3 * time.Second
	rateAfter  = 500 * time.Millisecond
)

func newLayerProgress(w io.Writer, tty bool) *layerProgress {
	p := &layerProgress{w: w, tty: tty, now: time.Now, lines: map[string]*layerLine{}}
	if f, ok := w.(*os.File); ok && tty {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil {
			p.width = cols
		}
	}
	return p
}

// update records a layer's state. bytes says current and total count
// bytes being moved; final says the status is the layer's last.
func (p *layerProgress) update(layer, status string, current, total int64, bytes, final bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty {
		if final {
			fmt.Fprintf(p.w, "%s: %s\n", layer, status)
		}
		return
	}
	now := p.now()
	l, ok := p.lines[layer]
	if !ok {
		l = &layerLine{}
		p.lines[layer] = l
		p.order = append(p.order, layer)
	}
	changed := !ok || l.status != status || l.bytes != bytes
	if changed || current < l.current {
		l.samples = l.samples[:0]
	}
	l.status, l.current, l.total, l.bytes = status, current, total, bytes && total > 0
	if l.bytes {
		// Samples 50 ms apart at least, the oldest just outside the window.
		if n := len(l.samples); n >= 2 && now.Sub(l.samples[n-2].at) < 50*time.Millisecond {
			l.samples[n-1] = sample{now, current}
		} else {
			l.samples = append(l.samples, sample{now, current})
		}
		for len(l.samples) > 2 && now.Sub(l.samples[1].at) >= rateWindow {
			l.samples = l.samples[1:]
		}
	}
	if changed || final || now.Sub(p.shown) >= redrawEvery {
		p.redraw(now)
	}
}

func (p *layerProgress) redraw(now time.Time) {
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", p.drawn)
	}
	for _, id := range p.order {
		line := id + ": " + p.lines[id].text()
		if p.width > 1 && len(line) >= p.width {
			line = line[:p.width-1] // a wrapped line would spoil the redraw
		}
		fmt.Fprintf(p.w, "\x1b[2K%s\n", line)
	}
	p.drawn, p.shown = len(p.order), now
}

// text is a layer's line after its id.
func (l *layerLine) text() string {
	if !l.bytes {
		return l.status
	}
	s := fmt.Sprintf("%s %s/%s", l.status, units.HumanSize(float64(l.current)), units.HumanSize(float64(l.total)))
	if len(l.samples) < 2 {
		return s
	}
	first, last := l.samples[0], l.samples[len(l.samples)-1]
	took := last.at.Sub(first.at)
	moved := last.n - first.n
	if took < rateAfter || moved <= 0 {
		return s
	}
	rate := float64(moved) / took.Seconds()
	s += fmt.Sprintf(" %s/s", units.HumanSize(rate))
	if left := l.total - l.current; left > 0 {
		s += " " + timeLeft(time.Duration(float64(left)/rate*float64(time.Second))) + " left"
	}
	return s
}

// timeLeft writes d as 7s, 2m05s or 1h20m, rounded up.
func timeLeft(d time.Duration) string {
	secs := int64((d + time.Second - 1) / time.Second)
	switch {
	case secs < 60:
		return fmt.Sprintf("%ds", secs)
	case secs < 3600:
		return fmt.Sprintf("%dm%02ds", secs/60, secs%60)
	}
	return fmt.Sprintf("%dh%02dm", secs/3600, secs%3600/60)
}
