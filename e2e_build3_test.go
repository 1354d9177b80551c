//go:build e2e

package main_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tugcli/tug/fixture"
)

// COPY --exclude leaves out what its patterns match, below directories
// too; ADD --link and COPY --link build as plain copies.
func TestBuildCopyExclude(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile":    "FROM " + busybox + "\nCOPY --exclude=*.log --exclude=tmp src/ /app/\nCOPY --link src/keep.txt /linked.txt\nCMD find /app /linked.txt | sort\n",
		"src/keep.txt":  "keep",
		"src/drop.log":  "drop",
		"src/sub/k.txt": "keep",
		"src/sub/d.log": "kept: *.log matches the top level only",
		"src/tmp/x.txt": "dropped with its directory",
	})
	mustTug(t, u, store, "build", "-q", "-t", "excl", ctx)
	got := runOut(t, u, store, "--network", "none", "excl")
	want := "/app\n/app/keep.txt\n/app/sub\n/app/sub/d.log\n/app/sub/k.txt\n/linked.txt"
	if got != want {
		t.Fatalf("the image holds:\n%s\nwant:\n%s", got, want)
	}
}

// ADD from a URL: the file, named after the URL (or the destination),
// mode 0600, not unpacked; --checksum is verified; a bad checksum or a
// 404 fails the build with one Error: line.
func TestBuildAddURL(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	body := "downloaded content\n"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/files/data.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Last-Modified", time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC).Format(http.TimeFormat))
		fmt.Fprint(w, body)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String() + "/files/"
	h := sha256.Sum256([]byte(body))
	sum := "sha256:" + hex.EncodeToString(h[:])
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + "\nADD " + base + "data.txt /dl/\nADD --checksum=" + sum + " " + base + "data.txt /named.txt\nCMD stat -c '%n %a' /dl/data.txt /named.txt && cat /named.txt\n",
	})
	mustTug(t, u, store, "build", "-q", "-t", "addurl", ctx)
	got := runOut(t, u, store, "--network", "none", "addurl")
	if got != "/dl/data.txt 600\n/named.txt 600\n"+strings.TrimSpace(body) {
		t.Fatalf("the image holds:\n%s", got)
	}
	for name, df := range map[string]string{
		"bad checksum": "FROM " + busybox + "\nADD --checksum=sha256:" + strings.Repeat("0", 64) + " " + base + "data.txt /x\n",
		"not found":    "FROM " + busybox + "\nADD " + base + "missing.txt /x\n",
	} {
		ctx := buildContext(t, u, map[string]string{"Dockerfile": df})
		res := tug(t, u, store, "build", "-q", ctx)
		if res.Code == 0 || !strings.HasPrefix(lastLine(res.Stderr), "Error: ") {
			t.Fatalf("%s: exit %d, stderr %q", name, res.Code, res.Stderr)
		}
	}
}

// `build -` reads a context as a tar archive (gzip'd here) on stdin, with
// the Dockerfile inside (or -f naming it there); a plain Dockerfile on
// stdin builds with an empty context.
func TestBuildContextFromStdin(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile":     "FROM " + busybox + "\nCOPY hello.txt /\nCMD cat /hello.txt\n",
		"alt/Dockerfile": "FROM " + busybox + "\nCOPY hello.txt /alt.txt\nCMD cat /alt.txt\n",
		"hello.txt":      "hello from the tar",
	})
	tarball := fixture.TempDirFor(t, u) + "/ctx.tar.gz"
	fixture.MustRun(t, fixture.Root(), "tar", "-C", ctx, "-czf", tarball, ".")
	build := func(stdin string, args ...string) fixture.Result {
		cmd := u.Command(t.Context(), "sh", "-c", `exec "$@" < `+stdin, "sh", tugBin)
		cmd.Args = append(append(cmd.Args, store...), append([]string{"build", "-q"}, args...)...)
		out, err := cmd.Output()
		res := fixture.Result{Stdout: string(out)}
		if ee, ok := err.(interface{ ExitCode() int }); ok {
			res.Code = ee.ExitCode()
		}
		return res
	}
	if res := build(tarball, "-t", "tarctx", "-"); res.Code != 0 {
		t.Fatalf("build - < ctx.tar.gz: exit %d", res.Code)
	}
	if got := runOut(t, u, store, "--network", "none", "tarctx"); got != "hello from the tar" {
		t.Fatalf("the image from a tar context printed %q", got)
	}
	if res := build(tarball, "-t", "altctx", "-f", "alt/Dockerfile", "-"); res.Code != 0 {
		t.Fatalf("build -f alt/Dockerfile - < ctx.tar.gz: exit %d", res.Code)
	}
	if got := runOut(t, u, store, "--network", "none", "altctx"); got != "hello from the tar" {
		t.Fatalf("the image from -f in a tar context printed %q", got)
	}
	if res := build(ctx+"/alt/Dockerfile", "-t", "nofiles", "-"); res.Code == 0 {
		t.Fatal("a Dockerfile on stdin with COPY of a file built: its context must be empty")
	}
	df := fixture.TempDirFor(t, u) + "/Dockerfile"
	fixture.MustRun(t, u, "sh", "-c", "printf 'FROM "+busybox+"\\nCMD echo bare\\n' > "+df)
	if res := build(df, "-t", "bare", "-"); res.Code != 0 {
		t.Fatalf("build - < Dockerfile: exit %d", res.Code)
	}
	if got := runOut(t, u, store, "--network", "none", "bare"); got != "bare" {
		t.Fatalf("the image from a bare Dockerfile printed %q", got)
	}
}

// build --output writes the final stage's files: a directory
// (type=local), a tar file (type=tar), or a tar on stdout (-), rootless.
func TestBuildOutput(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + " AS b\nRUN mkdir -p /out/sub && echo built > /out/result.txt && ln -s result.txt /out/link\nFROM scratch\nCOPY --from=b /out/ /\n",
	})
	dest := fixture.TempDirFor(t, u)
	mustTug(t, u, store, "build", "-q", "--network", "none", "-o", "type=local,dest="+dest+"/dir", ctx)
	got := fixture.MustRun(t, u, "sh", "-c", "cd "+dest+"/dir && find . | sort && cat result.txt && readlink link && stat -c %U result.txt").Stdout
	if got != ".\n./link\n./result.txt\n./sub\nbuilt\nresult.txt\n"+u.Name+"\n" {
		t.Fatalf("--output type=local wrote:\n%s", got)
	}
	mustTug(t, u, store, "build", "-q", "--network", "none", "-o", "type=tar,dest="+dest+"/out.tar", ctx)
	if got := fixture.MustRun(t, u, "tar", "-tf", dest+"/out.tar").Stdout; !strings.Contains(got, "result.txt") || !strings.Contains(got, "sub/") {
		t.Fatalf("--output type=tar holds:\n%s", got)
	}
	res := mustTug(t, u, store, "build", "-q", "--network", "none", "-o", "-", ctx)
	if !strings.Contains(res.Stdout, "built\n") || strings.Contains(res.Stdout, "sha256:") {
		t.Fatalf("--output - wrote %d bytes to stdout, not the archive alone", len(res.Stdout))
	}
	// The image itself as an OCI or Docker archive, which load reads.
	for _, typ := range []string{"oci", "docker"} {
		archive := dest + "/img-" + typ + ".tar"
		mustTug(t, u, store, "build", "-q", "--network", "none", "-o", "type="+typ+",dest="+archive, ctx)
		other := isolated(t, u)
		if got := mustTug(t, u, other, "load", "-q", "-i", archive).Stdout; !strings.Contains(got, "sha256:") && !strings.Contains(got, "Loaded") {
			t.Fatalf("load of the type=%s output printed %q", typ, got)
		}
	}
	if res := tug(t, u, store, "build", "-q", "-o", "type=registry,dest=x", ctx); res.Code == 0 || !strings.Contains(res.Stderr, "--output") {
		t.Fatalf("--output type=registry: exit %d, stderr %q", res.Code, res.Stderr)
	}
}

// Independent stages build side by side: each of two stages waits (in a
// shared cache mount) for the other's mark, which only works when both
// run at once; built one after the other, the first would give up.
func TestBuildParallelStages(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	wait := func(mine, other string) string {
		return "RUN --mount=type=cache,target=/c,id=rendezvous sh -c 'touch /c/" + mine + "; for i in $(seq 300); do [ -e /c/" + other + " ] && echo met > /" + mine + " && exit 0; sleep 0.1; done; exit 1'\n"
	}
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + " AS a\n" + wait("a", "b") +
			"FROM " + busybox + " AS b\n" + wait("b", "a") +
			"FROM " + busybox + "\nCOPY --from=a /a /a\nCOPY --from=b /b /b\nCMD cat /a /b\n",
	})
	mustTug(t, u, store, "build", "-q", "--network", "none", "-t", "par", ctx)
	if got := runOut(t, u, store, "--network", "none", "par"); got != "met\nmet" {
		t.Fatalf("the image holds %q", got)
	}
	// A failing stage stops the build with its error, and nothing is left
	// running.
	ctx = buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + " AS slow\nRUN sleep 4109\nFROM " + busybox + " AS bad\nRUN exit 3\nFROM " + busybox + "\nCOPY --from=slow /etc/hostname /x\nCOPY --from=bad /etc/hostname /y\n",
	})
	res := tug(t, u, store, "--debug", "build", "-q", "--network", "none", ctx)
	if res.Code == 0 || !strings.Contains(res.Stderr, "exit 3") {
		t.Fatalf("a build with a failing stage: exit %d\n%s", res.Code, res.Stderr)
	}
	if processRunning("sleep\x004109\x00") {
		t.Fatal("the other stage's step outlived the failed build")
	}
}

// COPY --parents keeps each source's path from the context root.
func TestBuildCopyParents(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile":   "FROM " + busybox + "\nCOPY --parents x/*/conf.txt y/ /out/\nCMD find /out | sort\n",
		"x/a/conf.txt": "a", "x/b/conf.txt": "b", "x/b/other.txt": "no",
		"y/z/file": "z",
	})
	mustTug(t, u, store, "build", "-q", "--network", "none", "-t", "parents", ctx)
	want := "/out\n/out/x\n/out/x/a\n/out/x/a/conf.txt\n/out/x/b\n/out/x/b/conf.txt\n/out/y\n/out/y/z\n/out/y/z/file"
	if got := runOut(t, u, store, "--network", "none", "parents"); got != want {
		t.Fatalf("COPY --parents gave:\n%s\nwant:\n%s", got, want)
	}
}

// On a terminal, build shows a live view: the running step with its time
// and the last lines of its output, redrawn in place; finished steps stay
// as DONE lines. In a pipe, plain lines and no escape codes.
func TestBuildLiveViewOnTerminal(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script (bsdutils) is not installed")
	}
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + "\nRUN for i in 1 2 3 4 5; do echo line-$i; sleep 0.2; done\nRUN echo second\n",
	})
	cmdline := strings.Join(append(append([]string{tugBin}, store...), "build", "--network", "none", "-t", "live", ctx), " ")
	res := fixture.MustRun(t, u, "script", "-qec", cmdline, "/dev/null")
	for _, want := range []string{"\x1b[", " > line-3", "[2/3] RUN for i in", "DONE", "[3/3] RUN echo second"} {
		if !strings.Contains(res.Stdout, want) {
			t.Fatalf("build on a terminal lacks %q:\n%q", want, res.Stdout)
		}
	}
	piped := mustTug(t, u, store, "build", "--no-cache", "--network", "none", ctx)
	if strings.Contains(piped.Stderr, "\x1b[") || !strings.Contains(piped.Stderr, "line-5") {
		t.Fatalf("build on a pipe:\n%q", piped.Stderr)
	}
}
