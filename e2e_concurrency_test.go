//go:build e2e

package main_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tugcli/tug/fixture"
)

// TestConcurrency runs a dozen tugs at once on one store, a few rounds in
// a row: pulls of overlapping images, builds that share a base and their
// step cache, run --rm, rmi of images (one unrelated to the rest, one
// whose layers an image being pulled at that moment shares), and reads.
// Every command must succeed — a lock or "layer not known" error that a
// retry would fix is a failure — and after each round every image runs
// and `tug system check` finds nothing wrong. TestConcurrentPulls (in
// e2e_test.go) is the pulls-only case.
func TestConcurrency(t *testing.T) {
	const rounds = 3
	const layerSize = 256 << 10
	// Round r pulls big-r while it removes its prefix-r, pulled before
	// the round: the same first two layers, which nothing else holds.
	refs := map[string]string{}
	for r := range rounds {
		for name, n := range map[string]int{"big": 3, "prefix": 2} {
			ref := registry.Ref(fmt.Sprintf("concurrency/%s-%d:1", name, r))
			pushImage(t, ref, n, layerSize, int64(1000+r))
			refs[fmt.Sprintf("%s-%d", name, r)] = ref
		}
		ref := registry.Ref(fmt.Sprintf("concurrency/unrelated-%d:1", r))
		pushImage(t, ref, 1, layerSize, int64(2000+r))
		refs[fmt.Sprintf("unrelated-%d", r)] = ref
	}
	shared := registry.Ref("concurrency/shared:1")
	pushImage(t, shared, 2, layerSize, 3000)

	for mode, u := range map[string]fixture.User{"rootless": fixture.RootlessUser(t), "root": fixture.Root()} {
		t.Run(mode, func(t *testing.T) {
			if mode == "root" {
				fixture.RequireRoot(t)
			}
			store := pulled(t, u)
			// Two contexts whose first steps are the same: the second
			// build finds the first's RUN in the cache, or both make it.
			ctx1 := buildContext(t, u, map[string]string{
				"Dockerfile": "FROM " + busybox + "\nRUN echo shared > /shared\nCOPY one /one\nRUN cat /shared /one > /both\n",
				"one":        "one\n",
			})
			ctx2 := buildContext(t, u, map[string]string{
				"Dockerfile": "FROM " + busybox + "\nRUN echo shared > /shared\nCOPY two /two\nRUN cat /shared /two > /both\n",
				"two":        "two\n",
			})
			for r := range rounds {
				// Set up: what this round removes.
				mustTug(t, u, store, "pull", "-q", refs[fmt.Sprintf("prefix-%d", r)])
				mustTug(t, u, store, "pull", "-q", refs[fmt.Sprintf("unrelated-%d", r)])
				prevBuilt := busybox
				if r > 0 {
					prevBuilt = fmt.Sprintf("localhost/built1:%d", r-1)
				}
				cmds := [][]string{
					{"pull", "-q", refs[fmt.Sprintf("big-%d", r)]},
					{"pull", "-q", refs[fmt.Sprintf("big-%d", r)]},
					{"pull", "-q", shared},
					{"pull", "-q", busybox},
					{"rmi", refs[fmt.Sprintf("prefix-%d", r)]},
					{"rmi", refs[fmt.Sprintf("unrelated-%d", r)]},
					{"build", "-q", "-t", fmt.Sprintf("built1:%d", r), ctx1},
					{"build", "-q", "-t", fmt.Sprintf("built2:%d", r), ctx2},
					{"build", "-q", "--no-cache", "-t", fmt.Sprintf("built3:%d", r), ctx1},
					{"run", "--rm", "--network", "none", busybox, "echo", "ran"},
					{"run", "--rm", "--network", "none", prevBuilt, "sh", "-c", "cat /both 2>/dev/null || echo ran"},
					{"images", "-q"},
				}
				start := time.Now()
				results := runAll(t.Context(), u, store, cmds)
				t.Logf("round %d: %d commands at once took %v", r, len(cmds), time.Since(start))
				for _, res := range results {
					if res.err != nil || res.code != 0 {
						t.Errorf("round %d: tug %s: exit %d (%v)\n%s", r, strings.Join(res.args, " "), res.code, res.err, res.stderr)
					}
					if strings.Contains(res.stderr, "level=") {
						t.Logf("round %d: tug %s logged:\n%s", r, strings.Join(res.args, " "), res.stderr)
					}
				}
				if t.Failed() {
					t.FailNow()
				}
				checkStore(t, u, store,
					[]string{refs[fmt.Sprintf("big-%d", r)], shared, busybox,
						fmt.Sprintf("localhost/built1:%d", r), fmt.Sprintf("localhost/built2:%d", r), fmt.Sprintf("localhost/built3:%d", r)},
					[]string{refs[fmt.Sprintf("prefix-%d", r)], refs[fmt.Sprintf("unrelated-%d", r)]})
			}
		})
	}
}

// TestConcurrencyPullStorm pulls 16 images at once into a fresh store,
// round after round. It is the regression test for a race in
// go.podman.io/storage v1.65: a layer is unpacked in a temporary
// directory whose lock is created and taken in two steps, and another
// process opening the store in between removes the directory as a dead
// process's. Pulls failed with "mkdir /data: no such file or directory"
// (storage's chrooted unpacker, in the removed directory) or "rename
// .../temp-dir-N/0-addition ...: no such file or directory", about one
// pull in 30 here; tug now applies such a layer again (image/putlayer.go).
func TestConcurrencyPullStorm(t *testing.T) {
	const images, rounds = 16, 8
	u := fixture.RootlessUser(t)
	var cmds [][]string
	for i := range images {
		ref := registry.Ref(fmt.Sprintf("storm/i%d:1", i))
		pushImage(t, ref, 4, 64<<10, int64(5000+i))
		cmds = append(cmds, []string{"pull", "-q", ref})
	}
	var store []string
	for r := range rounds {
		store = isolated(t, u)
		for _, res := range runAll(t.Context(), u, store, cmds) {
			if res.err != nil || res.code != 0 {
				t.Errorf("round %d: tug %s: exit %d (%v)\n%s", r, strings.Join(res.args, " "), res.code, res.err, res.stderr)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	if res := tug(t, u, store, "system", "check"); res.Code != 0 || !strings.Contains(res.Stdout, "No problems found") {
		t.Errorf("system check: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
}

// TestConcurrencyPullWhileRmi is the regression test for a pull that
// builds on layers it found stored while another tug removes the image
// that held them: the pull of big finds the two layers it shares with
// prefix stored and fetches only its third, which the proxy holds back
// (two 503s) until rmi prefix has removed the two. Storing the third on
// them failed with "layer not known"; tug now stores the layers again.
func TestConcurrencyPullWhileRmi(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := isolated(t, u)
	img, err := fixture.ImageWithLayers(3, 64<<10, 4000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fixture.Push(img, registry.Ref("while-rmi/big:1")); err != nil {
		t.Fatal(err)
	}
	prefix := registry.Ref("while-rmi/prefix:1")
	pushImage(t, prefix, 2, 64<<10, 4000)
	mustTug(t, u, store, "pull", "-q", prefix)

	layers, _ := img.Layers()
	third, _ := layers[len(layers)-1].Digest()
	// Two 503s: go-containerregistry tries again after 1 s and 3 s.
	p := fixture.NewProxy(t, registry.Addr, fixture.Rule{Method: "GET", Path: "/blobs/" + third.String(), Fault: fixture.FaultStatus, Status: 503, Times: 2})
	big := p.Ref("while-rmi/big:1")
	pull := u.Command(t.Context(), tugBin, append(slices.Clone(store), "pull", "-q", big)...)
	var stderr bytes.Buffer
	pull.Stderr = &stderr
	if err := pull.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); p.Injected(0) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			pull.Process.Kill()
			t.Fatal("the pull never asked for its third layer")
		}
	}
	mustTug(t, u, store, "rmi", prefix)
	if err := pull.Wait(); err != nil {
		t.Fatalf("pull while its base layers were removed: %v\n%s", err, stderr.String())
	}
	checkStore(t, u, store, []string{big}, []string{prefix})
}

func pushImage(t *testing.T, ref string, layers int, size, seed int64) {
	t.Helper()
	img, err := fixture.ImageWithLayers(layers, size, seed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fixture.Push(img, ref); err != nil {
		t.Fatal(err)
	}
}

type cmdResult struct {
	args   []string
	code   int
	stderr string
	err    error
}

// runAll starts every command at once (tug with the store flags) and
// waits for them all.
func runAll(ctx context.Context, u fixture.User, store []string, cmds [][]string) []cmdResult {
	out := make([]cmdResult, len(cmds))
	var wg sync.WaitGroup
	for i, args := range cmds {
		wg.Go(func() {
			cmd := u.Command(ctx, tugBin, append(slices.Clone(store), args...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			out[i] = cmdResult{args: args, stderr: stderr.String(), err: err}
			if cmd.ProcessState != nil {
				out[i].code, out[i].err = cmd.ProcessState.ExitCode(), nil
				if _, ok := err.(*exec.ExitError); !ok {
					out[i].err = err
				}
			}
		})
	}
	wg.Wait()
	return out
}

// checkStore checks that the images named present are there and those
// named gone are not, that every image in the store runs, and that
// `tug system check` finds nothing wrong.
func checkStore(t *testing.T, u fixture.User, store, present, gone []string) {
	t.Helper()
	names := mustTug(t, u, store, "images", "--format", "{{.Repository}}:{{.Tag}}").Stdout
	have := strings.Fields(names)
	for _, n := range present {
		if !slices.Contains(have, n) {
			t.Errorf("images lacks %s:\n%s", n, names)
		}
	}
	for _, n := range gone {
		if slices.Contains(have, n) {
			t.Errorf("images still lists %s, which was removed:\n%s", n, names)
		}
	}
	ids := strings.Fields(mustTug(t, u, store, "images", "-q", "--no-trunc").Stdout)
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		if res := tug(t, u, store, "run", "--rm", "--network", "none", id, "true"); res.Code != 0 {
			t.Errorf("image %s does not run: exit %d\n%s", id, res.Code, res.Stderr)
		}
	}
	if res := tug(t, u, store, "system", "check"); res.Code != 0 || !strings.Contains(res.Stdout, "No problems found") {
		t.Errorf("system check: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
}
