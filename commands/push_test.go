package commands

import (
	"strings"
	"testing"

	"github.com/tugcli/tug/image"
)

func TestPushProgress(t *testing.T) {
	t.Parallel()
	events := []image.PushEvent{
		{Layer: "aaa", Status: image.StatusPushWaiting},
		{Layer: "bbb", Status: image.StatusPushWaiting},
		{Layer: "aaa", Status: image.StatusCompressing, Current: 1 << 20, Total: 4 << 20},
		{Layer: "aaa", Status: image.StatusPushing, Current: 2 << 20, Total: 3 << 20},
		{Layer: "bbb", Status: image.StatusLayerExists, Final: true},
		{Layer: "aaa", Status: image.StatusPushed, Current: 3 << 20, Total: 3 << 20, Final: true},
	}
	var pipe strings.Builder
	p := newPushProgress(&pipe, false)
	for _, e := range events {
		p.event(e)
	}
	if got, want := pipe.String(), "bbb: Layer already exists\naaa: Pushed\n"; got != want {
		t.Errorf("on a pipe:\n%q\nwant\n%q", got, want)
	}

	var tty strings.Builder
	p = newPushProgress(&tty, true)
	for _, e := range events[:4] {
		p.event(e)
	}
	if !strings.Contains(tty.String(), "aaa: Compressing 1.049MB/4.194MB") || !strings.Contains(tty.String(), "aaa: Pushing 2.097MB/3.146MB") || !strings.Contains(tty.String(), "\x1b[2A") {
		t.Errorf("on a terminal:\n%q", tty.String())
	}
	for _, e := range events[4:] {
		p.event(e)
	}
	if !strings.HasSuffix(tty.String(), "\x1b[2Kaaa: Pushed\n\x1b[2Kbbb: Layer already exists\n") {
		t.Errorf("on a terminal, the last redraw:\n%q", tty.String())
	}
}
