//go:build e2e

package main_test

import (
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tugcli/tug/fixture"
)

// onTerminal runs tug with its output on a pseudo-terminal (script(1))
// and returns what the terminal got.
func onTerminal(t *testing.T, u fixture.User, store []string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script (bsdutils) is not installed")
	}
	cmdline := strings.Join(append(append([]string{tugBin}, store...), args...), " ")
	return fixture.MustRun(t, u, "script", "-qec", cmdline, "/dev/null").Stdout
}

var (
	downloadingLine = regexp.MustCompile(`[0-9a-f]{12}: Downloading [0-9.]+k?M?B/[0-9.]+MB [0-9.]+k?M?B/s [0-9hms]+ left`)
	pushingLine     = regexp.MustCompile(`[0-9a-f]{12}: Pushing [0-9.]+k?M?B/[0-9.]+MB [0-9.]+k?M?B/s [0-9hms]+ left`)
	colourCode      = regexp.MustCompile("\x1b\\[[0-9;]*m")
)

// On a terminal, a pull and a push over a slow link (through the fault
// proxy) show each layer moving: its bytes, its rate and the time
// left, redrawn in place, without colours (NO_COLOR is set, and tug
// writes none anyway). On a pipe the same push prints one plain line per
// layer and no escape codes, rates or times.
func TestProgressRateOnTerminal(t *testing.T) {
	u := fixture.RootlessUser(t)
	u.Env = append(slices.Clip(u.Env), "NO_COLOR=1")
	img, err := fixture.ImageWithLayers(1, 8<<20, 18)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fixture.Push(img, registry.Ref("progress/slow:1")); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	big, _ := layers[len(layers)-1].Digest()
	slowSrc := fixture.NewProxy(t, registry.Addr, fixture.Rule{Method: "GET", Path: "/blobs/" + big.String(), Fault: fixture.FaultSlow, Rate: 2 << 20})
	store := isolated(t, u)
	src := slowSrc.Ref("progress/slow:1")

	pull := onTerminal(t, u, store, "pull", src)
	if !downloadingLine.MatchString(pull) || !strings.Contains(pull, "\x1b[2K") || !strings.Contains(pull, "Pull complete") {
		t.Errorf("pull on a terminal shows no bytes, rate and time left (%s):\n%q", downloadingLine, pull)
	}
	if colourCode.MatchString(pull) {
		t.Errorf("pull on a terminal wrote colours:\n%q", pull)
	}

	dst := fixture.NewRegistry(t)
	// 1 MB/s: the socket buffers take the first megabytes at once.
	slowDst := fixture.NewProxy(t, dst.Addr, fixture.Rule{Method: "PATCH", Path: "/blobs/uploads/", Fault: fixture.FaultSlow, Rate: 1 << 20})
	push := onTerminal(t, u, store, "push", src, slowDst.Ref("progress/pushed:1"))
	if !pushingLine.MatchString(push) || !strings.Contains(push, "\x1b[2K") || !strings.Contains(push, "Pushed") {
		t.Errorf("push on a terminal shows no bytes, rate and time left (%s):\n%q", pushingLine, push)
	}
	if colourCode.MatchString(push) {
		t.Errorf("push on a terminal wrote colours:\n%q", push)
	}

	// A terminal with TERM=dumb gets what a pipe gets: no redraws.
	dumb := u
	dumb.Env = append(slices.Clip(u.Env), "TERM=dumb")
	if out := onTerminal(t, dumb, isolated(t, u), "pull", src); strings.Contains(out, "\x1b[") || strings.Contains(out, "B/s") || !strings.Contains(out, "Pull complete") {
		t.Errorf("pull on a TERM=dumb terminal:\n%q", out)
	}

	piped := mustTug(t, u, store, "push", src, fixture.NewRegistry(t).Ref("progress/piped:1")).Stderr
	if strings.Contains(piped, "\x1b[") || strings.Contains(piped, "B/s") || strings.Contains(piped, " left") {
		t.Errorf("push on a pipe printed live progress:\n%q", piped)
	}
	if n := strings.Count(piped, ": Pushed\n"); n != len(layers) {
		t.Errorf("push on a pipe printed %d Pushed lines, want one per layer (%d):\n%s", n, len(layers), piped)
	}
}
