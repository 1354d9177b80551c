package commands

import (
	"strings"
	"testing"
	"time"

	"github.com/tugcli/tug/image"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// On a terminal a layer moving bytes shows them, its rate over the last
// seconds and the time left; the rate and time appear once the layer
// has moved bytes for half a second, byte counts are redrawn at most
// every tenth of a second, a new status at once.
func TestLayerProgressRate(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	clock := &fakeClock{t: time.Unix(1000, 0)}
	p := newPushProgress(&out, true)
	p.now = clock.now
	const mb = 1000 * 1000
	p.event(image.PushEvent{Layer: "aaa", Status: image.StatusPushing, Total: 10 * mb})
	clock.advance(200 * time.Millisecond)
	p.event(image.PushEvent{Layer: "aaa", Status: image.StatusPushing, Current: 1 * mb, Total: 10 * mb})
	if got := lastFrame(out.String()); got != "aaa: Pushing 1MB/10MB" {
		t.Errorf("after 0.2 s: %q, want bytes and no rate yet", got)
	}
	clock.advance(800 * time.Millisecond)
	p.event(image.PushEvent{Layer: "aaa", Status: image.StatusPushing, Current: 2 * mb, Total: 10 * mb})
	if got := lastFrame(out.String()); got != "aaa: Pushing 2MB/10MB 2MB/s 4s left" {
		t.Errorf("after 1 s: %q", got)
	}
	// Within a tenth of a second: not redrawn.
	before := out.Len()
	clock.advance(10 * time.Millisecond)
	p.event(image.PushEvent{Layer: "aaa", Status: image.StatusPushing, Current: 2*mb + 1000, Total: 10 * mb})
	if out.Len() != before {
		t.Errorf("redrawn after 10 ms: %q", out.String()[before:])
	}
	// A second layer: drawn at once, below the first.
	p.event(image.PushEvent{Layer: "bbb", Status: image.StatusPushWaiting})
	if got := lastFrame(out.String()); got != "aaa: Pushing 2.001MB/10MB 1.981MB/s 5s left\nbbb: Waiting" {
		t.Errorf("with a second layer: %q", got)
	}
	// A slow minute-long tail: the rate follows the last 3 seconds only.
	for range 6 {
		clock.advance(time.Second)
		p.event(image.PushEvent{Layer: "aaa", Status: image.StatusPushing, Current: 2*mb + 1000, Total: 10 * mb})
	}
	clock.advance(time.Second)
	p.event(image.PushEvent{Layer: "aaa", Status: image.StatusPushing, Current: 2*mb + 61000, Total: 10 * mb})
	if got := lastFrame(out.String()); !strings.HasPrefix(got, "aaa: Pushing 2.061MB/10MB 20kB/s 6m37s left\n") {
		t.Errorf("slowed down: %q", got)
	}
	// Done: the final status, without bytes.
	p.event(image.PushEvent{Layer: "aaa", Status: image.StatusPushed, Current: 10 * mb, Total: 10 * mb, Final: true})
	if got := lastFrame(out.String()); got != "aaa: Pushed\nbbb: Waiting" {
		t.Errorf("done: %q", got)
	}
	if strings.Contains(out.String(), "\x1b[3") || strings.Contains(out.String(), "m\x1b") {
		t.Errorf("colour codes written: %q", out.String())
	}
}

// A pull on a terminal shows the same; on a pipe, one line per layer
// that is stored or already there, without escape codes.
func TestPullProgress(t *testing.T) {
	t.Parallel()
	events := []image.PullEvent{
		{Layer: "aaa", Status: image.StatusWaiting},
		{Layer: "bbb", Status: image.StatusExists},
		{Layer: "aaa", Status: image.StatusDownload, Current: 0, Total: 4 << 20},
		{Layer: "aaa", Status: image.StatusDownload, Current: 2 << 20, Total: 4 << 20},
		{Layer: "aaa", Status: image.StatusDownloaded, Current: 4 << 20, Total: 4 << 20},
		{Layer: "aaa", Status: image.StatusComplete, Current: 4 << 20, Total: 4 << 20},
	}
	var pipe strings.Builder
	p := newPullProgress(&pipe, false)
	for _, e := range events {
		p.event(e)
	}
	if got, want := pipe.String(), "bbb: Already exists\naaa: Pull complete\n"; got != want {
		t.Errorf("on a pipe:\n%q\nwant\n%q", got, want)
	}
	var tty strings.Builder
	clock := &fakeClock{t: time.Unix(1000, 0)}
	p = newPullProgress(&tty, true)
	p.now = clock.now
	for _, e := range events[:3] {
		p.event(e)
	}
	clock.advance(time.Second)
	p.event(events[3])
	if got := lastFrame(tty.String()); got != "aaa: Downloading 2.097MB/4.194MB 2.097MB/s 1s left\nbbb: Already exists" {
		t.Errorf("downloading: %q", got)
	}
	for _, e := range events[4:] {
		p.event(e)
	}
	if got := lastFrame(tty.String()); got != "aaa: Pull complete\nbbb: Already exists" {
		t.Errorf("done: %q", got)
	}
}

// A line wider than the terminal is cut: a wrapped one would spoil the
// redraw.
func TestLayerProgressWidth(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	p := newPushProgress(&out, true)
	p.width = 20
	p.event(image.PushEvent{Layer: "aaa", Status: image.StatusMountedFrom + " some/long/repository", Final: true})
	if got := lastFrame(out.String()); got != "aaa: Mounted from s" {
		t.Errorf("got %q", got)
	}
}

func TestTimeLeft(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		300 * time.Millisecond:       "1s",
		59 * time.Second:             "59s",
		125 * time.Second:            "2m05s",
		80*time.Minute + time.Second: "1h20m",
	} {
		if got := timeLeft(d); got != want {
			t.Errorf("timeLeft(%v) = %q, want %q", d, got, want)
		}
	}
}

// lastFrame is the last redraw in a terminal's output: the lines after
// the last cursor-up, without the line-clearing codes.
func lastFrame(s string) string {
	if i := strings.LastIndex(s, "A\x1b[2K"); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSuffix(strings.ReplaceAll(s, "\x1b[2K", ""), "\n")
}
