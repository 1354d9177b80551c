//go:build e2e

package main_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tugcli/tug/fixture"
)

// A registry that takes a blob request and then sends nothing, not even
// response headers, once: the request is timed out after the silence
// limit and sent again, and the pull or push gives the same image as
// without the fault. (The header timeout was not retried before: net/http
// reports it as a deadline, which go-containerregistry never retries.)
func TestFaultStallOnce(t *testing.T) {
	u := withTimeout(fixture.RootlessUser(t), 2*time.Second)
	img, layer := faultImage(t, "faults/stall:1", 15)
	cfg, _ := img.ConfigName()
	t.Run("pull: GET of a layer", func(t *testing.T) {
		p := fixture.NewProxy(t, registry.Addr, fixture.Rule{Method: "GET", Path: "/blobs/" + layer.String(), Fault: fixture.FaultStall, Times: 1})
		res := mustTug(t, u, isolated(t, u), "pull", "-q", p.Ref("faults/stall:1"))
		if got := strings.TrimSpace(res.Stdout); got != cfg.Hex {
			t.Fatalf("pull printed %q, want %s", got, cfg.Hex)
		}
		if p.Injected(0) != 1 {
			t.Fatalf("the proxy stalled %d requests, want 1", p.Injected(0))
		}
	})

	store, src := pushSource(t, u, img, "faults/stall-src:1")
	want := identity(t, u, store, src)
	for _, tc := range []struct {
		name string
		rule fixture.Rule
	}{
		// The first HEAD of a layer is tug's own (may the registry's
		// copy of the pulled blob be reused?), the next ones
		// go-containerregistry's, before each upload.
		{"HEAD of a blob", fixture.Rule{Method: "HEAD", Path: "/blobs/sha256:", Fault: fixture.FaultStall, Times: 1}},
		{"POST starting an upload", fixture.Rule{Method: "POST", Path: "/blobs/uploads/", Fault: fixture.FaultStall, Times: 1}},
		{"PATCH with the bytes", fixture.Rule{Method: "PATCH", Path: "/blobs/uploads/", Fault: fixture.FaultStall, Times: 1}},
		{"PUT committing an upload", fixture.Rule{Method: "PUT", Path: "/blobs/uploads/", Fault: fixture.FaultStall, Times: 1}},
	} {
		t.Run("push: "+tc.name, func(t *testing.T) {
			dst := fixture.NewRegistry(t)
			p := fixture.NewProxy(t, dst.Addr, tc.rule)
			start := time.Now()
			res := tug(t, u, store, "push", "-q", src, p.Ref("faults/stalled:1"))
			if res.Code != 0 {
				t.Fatalf("push through one stalled %s: exit %d\n%s", tc.rule.Method, res.Code, res.Stderr)
			}
			if p.Injected(0) != 1 {
				t.Fatalf("the proxy stalled %d requests, want 1", p.Injected(0))
			}
			t.Logf("push took %v", time.Since(start))
			other := isolated(t, u)
			mustTug(t, u, other, "pull", "-q", dst.Ref("faults/stalled:1"))
			if got := identity(t, u, other, dst.Ref("faults/stalled:1")); got != want {
				t.Fatalf("pulled back %s, want %s", got, want)
			}
		})
	}
}

// A registry that stalls before the headers of every blob request: each
// try is timed out, tried 3 times with backoff, and the command fails with
// an error naming the registry and the limit, in bounded time, storing no
// image and leaving no tag.
func TestFaultStallForever(t *testing.T) {
	const limit = 2 * time.Second
	// 3 tries of limit each, 1 s + 3 s of backoff, and tug's own start.
	const bound = 30 * time.Second
	u := withTimeout(fixture.RootlessUser(t), limit)
	img, layer := faultImage(t, "faults/stall-forever:1", 16)

	t.Run("pull", func(t *testing.T) {
		p := fixture.NewProxy(t, registry.Addr, fixture.Rule{Method: "GET", Path: "/blobs/" + layer.String(), Fault: fixture.FaultStall})
		store := isolated(t, u)
		start := time.Now()
		res := tug(t, u, store, "pull", p.Ref("faults/stall-forever:1"))
		took := time.Since(start)
		if res.Code == 0 {
			t.Fatal("pull from a stalled registry succeeded")
		}
		checkStalled(t, res.Stderr, p, took, bound)
		if images := mustTug(t, u, store, "images", "-q"); images.Stdout != "" {
			t.Fatalf("a failed pull left an image: %q", images.Stdout)
		}
	})

	t.Run("push", func(t *testing.T) {
		store, src := pushSource(t, u, img, "faults/stall-forever-src:1")
		dst := fixture.NewRegistry(t)
		p := fixture.NewProxy(t, dst.Addr, fixture.Rule{Method: "PUT", Path: "/blobs/uploads/", Fault: fixture.FaultStall})
		start := time.Now()
		res := tug(t, u, store, "push", src, p.Ref("faults/stall-forever:1"))
		took := time.Since(start)
		if res.Code == 0 {
			t.Fatal("push to a stalled registry succeeded")
		}
		checkStalled(t, res.Stderr, p, took, bound)
		if _, err := remote.Head(mustRef(t, dst.Ref("faults/stall-forever:1"))); err == nil {
			t.Fatal("a failed push left a tag")
		}
	})
}

// checkStalled checks a command that failed against a stalled proxy: it
// tried 3 times, gave up within bound, and said why.
func checkStalled(t *testing.T, stderr string, p *fixture.Proxy, took, bound time.Duration) {
	t.Helper()
	t.Logf("%d stalls, gave up after %v: %s", p.Injected(0), took, strings.TrimSpace(stderr))
	if n := p.Injected(0); n < 3 {
		t.Errorf("the proxy stalled %d requests: the request was not retried 3 times", n)
	}
	if took > bound {
		t.Errorf("gave up after %v, want at most %v", took, bound)
	}
	if want := "registry " + p.Addr + " sent nothing for 2s"; !strings.Contains(stderr, want) {
		t.Errorf("error lacks %q:\n%s", want, stderr)
	}
	if !strings.HasPrefix(lastLine(stderr), "Error: ") || strings.Count(stderr, "Error: ") != 1 {
		t.Errorf("want one Error: line, the last:\n%s", stderr)
	}
}
