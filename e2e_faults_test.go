//go:build e2e

package main_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/tugcli/tug/fixture"
)

// faultImage pushes a busybox image with one more 1 MiB layer to the shared
// registry under repo and returns the image and the extra layer's digest,
// the blob the faults are aimed at.
func faultImage(t *testing.T, repo string, seed int64) (v1.Image, v1.Hash) {
	t.Helper()
	img, err := fixture.ImageWithLayers(1, 1<<20, seed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fixture.Push(img, registry.Ref(repo)); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	d, _ := layers[len(layers)-1].Digest()
	return img, d
}

// withTimeout returns u with tug's registry silence limit set to d.
func withTimeout(u fixture.User, d time.Duration) fixture.User {
	u.Env = append(slices.Clip(u.Env), "TUG_REGISTRY_TIMEOUT="+d.String())
	return u
}

// Transient failures are retried (go-containerregistry: 3 tries per
// request; tug: 3 more downloads of a blob that breaks off) and the pull
// gives the image.
func TestFaultPullRetried(t *testing.T) {
	u := fixture.RootlessUser(t)
	img, layer := faultImage(t, "faults/retried:1", 11)
	cfg, _ := img.ConfigName()
	for _, tc := range []struct {
		name string
		rule fixture.Rule
	}{
		{"500 twice on the manifest", fixture.Rule{Method: "GET", Path: "/manifests/", Fault: fixture.FaultStatus, Status: 500, Times: 2}},
		{"429 on a blob", fixture.Rule{Method: "GET", Path: "/blobs/" + layer.String(), Fault: fixture.FaultStatus, Status: 429, Times: 1}},
		{"503 on every blob once", fixture.Rule{Method: "GET", Path: "/blobs/", Fault: fixture.FaultStatus, Status: 503, Times: 1}},
		{"reset mid-blob", fixture.Rule{Method: "GET", Path: "/blobs/" + layer.String(), Fault: fixture.FaultReset, Times: 2}},
		{"truncated once", fixture.Rule{Method: "GET", Path: "/blobs/" + layer.String(), Fault: fixture.FaultTruncate, Times: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fixture.NewProxy(t, registry.Addr, tc.rule)
			store := isolated(t, u)
			start := time.Now()
			res := mustTug(t, u, store, "pull", "-q", p.Ref("faults/retried:1"))
			if got := strings.TrimSpace(res.Stdout); got != cfg.Hex {
				t.Fatalf("pull printed %q, want %s", got, cfg.Hex)
			}
			if p.Injected(0) == 0 {
				t.Fatal("the proxy injected no fault: the test tests nothing")
			}
			t.Logf("%d faults, pull took %v", p.Injected(0), time.Since(start))
		})
	}
}

// A blob that arrives cut short every time, or with a byte changed, fails
// the pull with an error naming the blob, and nothing is stored.
func TestFaultPullBadBlob(t *testing.T) {
	u := fixture.RootlessUser(t)
	_, layer := faultImage(t, "faults/bad:1", 12)
	for _, tc := range []struct {
		name  string
		fault fixture.Fault
		want  string
	}{
		{"truncated", fixture.FaultTruncate, "unexpected EOF"},
		{"corrupt", fixture.FaultCorrupt, "checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fixture.NewProxy(t, registry.Addr, fixture.Rule{Method: "GET", Path: "/blobs/" + layer.String(), Fault: tc.fault})
			store := isolated(t, u)
			res := tug(t, u, store, "pull", p.Ref("faults/bad:1"))
			if res.Code == 0 {
				t.Fatal("pull of a bad blob succeeded")
			}
			for _, want := range []string{layer.String(), tc.want} {
				if !strings.Contains(res.Stderr, want) {
					t.Errorf("error lacks %q:\n%s", want, res.Stderr)
				}
			}
			if images := mustTug(t, u, store, "images", "-q"); images.Stdout != "" {
				t.Fatalf("a failed pull left an image: %q", images.Stdout)
			}
		})
	}
}

// A registry that stops answering gives an error naming it once the
// silence limit has run out on every try, not a pull that hangs.
func TestFaultPullHang(t *testing.T) {
	const limit = 2 * time.Second
	// 3 tries of limit each, go-containerregistry's 1 s + 3 s backoff,
	// and the start of tug itself.
	const bound = 30 * time.Second
	u := withTimeout(fixture.RootlessUser(t), limit)
	_, layer := faultImage(t, "faults/hang:1", 13)
	for _, tc := range []struct {
		name string
		rule fixture.Rule
	}{
		{"manifest", fixture.Rule{Method: "GET", Path: "/manifests/", Fault: fixture.FaultHang}},
		{"blob", fixture.Rule{Method: "GET", Path: "/blobs/" + layer.String(), Fault: fixture.FaultHang}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fixture.NewProxy(t, registry.Addr, tc.rule)
			store := isolated(t, u)
			start := time.Now()
			res := tug(t, u, store, "pull", p.Ref("faults/hang:1"))
			took := time.Since(start)
			if res.Code == 0 {
				t.Fatal("pull from a hanging registry succeeded")
			}
			if took > bound {
				t.Errorf("pull gave up after %v, want at most %v", took, bound)
			}
			if want := "registry " + p.Addr + " sent nothing for 2s"; !strings.Contains(res.Stderr, want) {
				t.Errorf("error lacks %q:\n%s", want, res.Stderr)
			}
			t.Logf("gave up after %v: %s", took, strings.TrimSpace(res.Stderr))
			if images := mustTug(t, u, store, "images", "-q"); images.Stdout != "" {
				t.Fatalf("a failed pull left an image: %q", images.Stdout)
			}
		})
	}
}

// Push through the same faults: a 500 or a reset on an upload is retried
// and the pushed image pulls back identical; a registry that hangs gives a
// clear error in bounded time and no tag.
func TestFaultPush(t *testing.T) {
	u := withTimeout(fixture.RootlessUser(t), 2*time.Second)
	img, err := fixture.ImageWithLayers(2, 256<<10, 14)
	if err != nil {
		t.Fatal(err)
	}
	store, src := pushSource(t, u, img, "faults/push-src:1")
	want := identity(t, u, store, src)
	for _, tc := range []struct {
		name string
		rule fixture.Rule
		ok   bool
	}{
		{"500 on a blob upload", fixture.Rule{Method: "PATCH", Path: "/blobs/uploads/", Fault: fixture.FaultStatus, Status: 500, Times: 1}, true},
		{"500 on a blob commit", fixture.Rule{Method: "PUT", Path: "/blobs/uploads/", Fault: fixture.FaultStatus, Status: 500, Times: 1}, true},
		{"429 on the manifest", fixture.Rule{Method: "PUT", Path: "/manifests/", Fault: fixture.FaultStatus, Status: 429, Times: 1}, true},
		{"reset after an upload", fixture.Rule{Method: "PATCH", Path: "/blobs/uploads/", Fault: fixture.FaultReset, Times: 1}, true},
		{"hang on the manifest", fixture.Rule{Method: "PUT", Path: "/manifests/", Fault: fixture.FaultHang}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := fixture.NewRegistry(t)
			p := fixture.NewProxy(t, dst.Addr, tc.rule)
			dest := p.Ref("faults/pushed:1")
			start := time.Now()
			res := tug(t, u, store, "push", "-q", src, dest)
			took := time.Since(start)
			if p.Injected(0) == 0 {
				t.Fatal("the proxy injected no fault: the test tests nothing")
			}
			t.Logf("%d faults, push took %v", p.Injected(0), took)
			if !tc.ok {
				if res.Code == 0 {
					t.Fatal("push to a hanging registry succeeded")
				}
				if took > 30*time.Second {
					t.Errorf("push gave up after %v", took)
				}
				if !strings.Contains(res.Stderr, "sent nothing for 2s") {
					t.Errorf("error does not say the registry went silent:\n%s", res.Stderr)
				}
				return
			}
			if res.Code != 0 {
				t.Fatalf("push failed: exit %d\n%s", res.Code, res.Stderr)
			}
			other := isolated(t, u)
			mustTug(t, u, other, "pull", "-q", dst.Ref("faults/pushed:1"))
			if got := identity(t, u, other, dst.Ref("faults/pushed:1")); got != want {
				t.Fatalf("pulled back %s, want %s", got, want)
			}
		})
	}
}
