package commands

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/tugcli/tug/build"
)

// ttyView is build's live view on a terminal, after BuildKit's: finished
// steps stay as lines ("[2/4] RUN make  DONE 3.1s"), the steps running now
// are redrawn in place every tenth of a second with their elapsed time
// and the last lines of their output. It writes no colours (NO_COLOR
// holds by default).
type ttyView struct {
	w     io.Writer
	width int

	mu     sync.Mutex
	active []*viewStep // running steps, in start order
	drawn  int         // lines of the live part on screen
	tail   []string    // the newest output lines, for the running steps
	part   []byte      // an output line not yet ended
	stop   chan struct{}
	done   chan struct{}
}

type viewStep struct {
	key    string
	prefix string
	text   string
	start  time.Time
}

const viewTailLines = 6

func newTTYView(w io.Writer, width int) *ttyView {
	if width <= 20 {
		width = 80
	}
	v := &ttyView{w: w, width: width, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(v.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-v.stop:
				return
			case <-t.C:
				v.mu.Lock()
				v.redraw()
				v.mu.Unlock()
			}
		}
	}()
	return v
}

// close stops the redrawing and leaves the screen with finished lines
// only.
func (v *ttyView) close() {
	close(v.stop)
	<-v.done
	v.mu.Lock()
	defer v.mu.Unlock()
	v.active = nil
	v.tail = nil
	v.redraw()
}

// step is build's progress callback.
func (v *ttyView) step(s build.Step) {
	v.mu.Lock()
	defer v.mu.Unlock()
	prefix := fmt.Sprintf("[%d/%d]", s.Index, s.Total)
	if s.Stage > 0 {
		prefix = fmt.Sprintf("[stage-%d %d/%d]", s.Stage, s.Index, s.Total)
	}
	key := fmt.Sprintf("%d/%d", s.Stage, s.Index)
	if !s.Done {
		v.active = append(v.active, &viewStep{key: key, prefix: prefix, text: s.Text, start: time.Now()})
		v.tail = nil
		v.redraw()
		return
	}
	text := s.Text
	for i, a := range v.active {
		if a.key == key {
			text = a.text
			v.active = append(v.active[:i], v.active[i+1:]...)
			break
		}
	}
	line := prefix + " " + text
	switch {
	case s.Index == 1:
	case s.Cached:
		line += "  CACHED"
	default:
		line += fmt.Sprintf("  DONE %.1fs", s.Elapsed.Seconds())
	}
	v.clear()
	fmt.Fprintln(v.w, v.fit(line))
	if len(v.active) == 0 {
		v.tail = nil
	}
	v.redraw()
}

// Write takes the steps' output: its last lines show under them.
func (v *ttyView) Write(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.part = append(v.part, p...)
	for {
		i := bytes.IndexByte(v.part, '\n')
		if i < 0 {
			break
		}
		v.tail = append(v.tail, strings.TrimRight(string(v.part[:i]), "\r"))
		v.part = v.part[i+1:]
	}
	if len(v.tail) > viewTailLines {
		v.tail = v.tail[len(v.tail)-viewTailLines:]
	}
	return len(p), nil
}

// clear erases the live part of the screen.
func (v *ttyView) clear() {
	if v.drawn > 0 {
		fmt.Fprintf(v.w, "\x1b[%dA\x1b[J", v.drawn)
		v.drawn = 0
	}
}

// redraw draws the running steps and their output's last lines.
func (v *ttyView) redraw() {
	v.clear()
	var lines []string
	for _, a := range v.active {
		lines = append(lines, fmt.Sprintf("%s %s  %.1fs", a.prefix, a.text, time.Since(a.start).Seconds()))
	}
	if len(v.active) > 0 {
		for _, t := range v.tail {
			lines = append(lines, " > "+t)
		}
	}
	for _, l := range lines {
		fmt.Fprintln(v.w, v.fit(l))
	}
	v.drawn = len(lines)
}

// fit cuts a line to the terminal's width, so that each takes one row.
func (v *ttyView) fit(s string) string {
	s = strings.ReplaceAll(s, "\t", " ")
	if r := []rune(s); len(r) > v.width-1 {
		return string(r[:v.width-2]) + "…"
	}
	return s
}
