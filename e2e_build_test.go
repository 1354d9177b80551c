//go:build e2e

package main_test

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tugcli/tug/fixture"
)

// buildContext writes files (name → content) into a context directory
// owned by u.
func buildContext(t *testing.T, u fixture.User, files map[string]string) string {
	t.Helper()
	dir := fixture.TempDirFor(t, u)
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fixture.MustRun(t, fixture.Root(), "chown", "-R", u.Name, dir)
	return dir
}

func buildID(t *testing.T, u fixture.User, store []string, args ...string) string {
	t.Helper()
	res := mustTug(t, u, store, append([]string{"build"}, args...)...)
	id := lastLine(res.Stdout)
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("build printed %q as its last line, want the image id", res.Stdout)
	}
	return id
}

// A Dockerfile using the common instructions builds, runs, and carries
// its config, rootless and as root.
func TestBuildAndRun(t *testing.T) {
	for mode, u := range map[string]fixture.User{"rootless": fixture.RootlessUser(t), "root": fixture.Root()} {
		t.Run(mode, func(t *testing.T) {
			store := pulled(t, u)
			ctx := buildContext(t, u, map[string]string{
				"Dockerfile": "FROM " + busybox + "\n" +
					"ARG GREETING=hi\n" +
					"ENV APP=/app\n" +
					"WORKDIR $APP\n" +
					"COPY src/ ./src/\n" +
					"COPY --chown=user:user owned.txt .\n" +
					"RUN echo \"$GREETING from RUN\" > run.txt && mkdir -p /var/data\n" +
					"LABEL org.example.k=v\n" +
					"EXPOSE 8080\n" +
					"USER user\n" +
					"CMD [\"sh\", \"-c\", \"cat /app/run.txt /app/src/a.txt; id -u; ls -ln /app/owned.txt | awk '{print $3\\\":\\\"$4}'\"]\n",
				"src/a.txt": "from context\n",
				"owned.txt": "mine\n",
			})
			mustTug(t, u, store, "build", "-t", "myapp:1", "--build-arg", "GREETING=hello", ctx)
			out := runOut(t, u, store, "myapp:1")
			if out != "hello from RUN\nfrom context\n1000\n1000:1000" {
				t.Fatalf("the built image printed:\n%s", out)
			}
			var cfg struct {
				Env          []string
				WorkingDir   string
				User         string
				Labels       map[string]string
				ExposedPorts map[string]any
			}
			raw := mustTug(t, u, store, "inspect", "-f", "{{json .Config}}", "localhost/myapp:1").Stdout
			if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
				t.Fatalf("inspect: %v\n%s", err, raw)
			}
			if cfg.WorkingDir != "/app" || cfg.User != "user" || cfg.Labels["org.example.k"] != "v" || cfg.ExposedPorts["8080/tcp"] == nil || !strings.Contains(strings.Join(cfg.Env, " "), "APP=/app") {
				t.Fatalf("config of the built image: %+v", cfg)
			}
			if strings.Contains(strings.Join(cfg.Env, " "), "GREETING") {
				t.Fatalf("a build ARG leaked into the image's Env: %v", cfg.Env)
			}
		})
	}
}

func TestBuildCache(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + "\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\nCOPY c.txt /c.txt\nRUN date +%N > /stamp\n",
		"a.txt":      "one\n",
		"c.txt":      "three\n",
	})
	first := buildID(t, u, store, ctx)
	res := mustTug(t, u, store, "build", ctx)
	if n := strings.Count(res.Stderr, "CACHED"); n != 4 || lastLine(res.Stdout) != first {
		t.Fatalf("rebuild: %d steps CACHED (want 4), id %s (want %s)\n%s", n, lastLine(res.Stdout), first, res.Stderr)
	}
	os.WriteFile(filepath.Join(ctx, "c.txt"), []byte("changed\n"), 0o644)
	res = mustTug(t, u, store, "build", ctx)
	if n := strings.Count(res.Stderr, "CACHED"); n != 2 {
		t.Fatalf("after changing the second COPY's source, %d steps were CACHED, want the first two:\n%s", n, res.Stderr)
	}
	res = mustTug(t, u, store, "build", "--no-cache", ctx)
	if strings.Contains(res.Stderr, "CACHED") {
		t.Fatalf("--no-cache used the cache:\n%s", res.Stderr)
	}
}

func TestBuildMultiStageAndTarget(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + " AS builder\nRUN mkdir /out && echo built > /out/artifact\n" +
			"FROM " + busybox + " AS unused\nRUN exit 1\n" +
			"FROM scratch\nCOPY --from=builder /out/artifact /artifact\nCOPY --from=builder /bin/busybox /bin/busybox\nCMD [\"/bin/busybox\", \"cat\", \"/artifact\"]\n",
	})
	mustTug(t, u, store, "build", "-t", "multi", ctx)
	if got := runOut(t, u, store, "multi"); got != "built" {
		t.Fatalf("multi-stage image printed %q", got)
	}
	mustTug(t, u, store, "build", "-t", "onlybuilder", "--target", "builder", ctx)
	if got := runOut(t, u, store, "onlybuilder", "cat", "/out/artifact"); got != "built" {
		t.Fatalf("--target builder: %q", got)
	}
}

func TestBuildContextRules(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile":    "FROM " + busybox + "\nCOPY . /ctx/\nCMD [\"ls\", \"-R\", \"/ctx\"]\n",
		".dockerignore": "secret*\n*.log\n!keep.log\n",
		"app.txt":       "a\n",
		"secret.key":    "s\n",
		"debug.log":     "d\n",
		"keep.log":      "k\n",
		"dir/x.txt":     "x\n",
	})
	mustTug(t, u, store, "build", "-t", "ctxrules", ctx)
	got := runOut(t, u, store, "ctxrules")
	for _, want := range []string{"app.txt", "keep.log", "x.txt"} {
		if !strings.Contains(got, want) {
			t.Errorf("%s missing from the image:\n%s", want, got)
		}
	}
	for _, absent := range []string{"secret.key", "debug.log"} {
		if strings.Contains(got, absent) {
			t.Errorf("%s, excluded by .dockerignore, is in the image:\n%s", absent, got)
		}
	}
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM "+busybox+"\nCOPY secret.key /\n"), 0o644)
	res := tug(t, u, store, "build", ctx)
	if res.Code != 1 || !strings.Contains(res.Stderr, "secret.key") || !strings.Contains(res.Stderr, ".dockerignore") {
		t.Fatalf("COPY of an excluded file: exit %d\n%s", res.Code, res.Stderr)
	}
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM "+busybox+"\nCOPY nothere.txt /\n"), 0o644)
	if res := tug(t, u, store, "build", ctx); res.Code != 1 || !strings.Contains(res.Stderr, "nothere.txt") {
		t.Fatalf("COPY of a missing file: exit %d\n%s", res.Code, res.Stderr)
	}
	os.Symlink("/etc", filepath.Join(ctx, "escape"))
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM "+busybox+"\nCOPY escape/passwd /stolen\n"), 0o644)
	if res := tug(t, u, store, "build", ctx); res.Code == 0 {
		t.Fatal("COPY through a symlink out of the context succeeded")
	}
}

func TestBuildErrors(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + "\nRUNN echo hi\n",
	})
	res := tug(t, u, store, "build", ctx)
	if res.Code != 1 || !strings.Contains(res.Stderr, "Dockerfile:2:") || !strings.Contains(res.Stderr, "unknown instruction") {
		t.Fatalf("syntax error: exit %d\n%s", res.Code, res.Stderr)
	}
	if strings.Contains(res.Stderr, "[1/") {
		t.Fatalf("steps ran before the syntax error was reported:\n%s", res.Stderr)
	}
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM "+busybox+"\nRUN echo about to fail; exit 4\n"), 0o644)
	res = tug(t, u, store, "build", ctx)
	if res.Code != 1 || !strings.Contains(res.Stderr, "exit code 4") || !strings.Contains(res.Stderr, "about to fail") {
		t.Fatalf("failing RUN: exit %d\n%s", res.Code, res.Stderr)
	}
}

// The same context built twice with a fixed timestamp gives the same image.
func TestBuildReproducible(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + "\nCOPY f /f\nRUN echo x > /g && mkdir /d\n",
		"f":          "content\n",
	})
	a := buildID(t, u, store, "--no-cache", "--timestamp", "1700000000", ctx)
	time.Sleep(1100 * time.Millisecond) // a clock that moved must not matter
	os.Chtimes(filepath.Join(ctx, "f"), time.Now(), time.Now())
	b := buildID(t, u, store, "--no-cache", "--timestamp", "1700000000", ctx)
	if a != b {
		t.Fatalf("two builds with --timestamp gave %s and %s", a, b)
	}
}

// ADD unpacks a local archive; the built image runs in Podman too.
func TestBuildAddArchiveAndPodman(t *testing.T) {
	u := fixture.RootlessUser(t)
	fixture.ResetStore(t, u)
	t.Cleanup(func() { fixture.ResetStore(t, u) })
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + "\nADD files.tar.gz /opt/\nCMD [\"cat\", \"/opt/inner/hello\"]\n",
	})
	f, _ := os.Create(filepath.Join(ctx, "files.tar.gz"))
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "inner/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "inner/hello", Mode: 0o644, Size: 6})
	tw.Write([]byte("howdy\n"))
	tw.Close()
	zw.Close()
	f.Close()
	os.Chown(filepath.Join(ctx, "files.tar.gz"), int(u.UID), int(u.GID))
	mustTug(t, u, nil, "build", "-t", "addtest", ctx)
	if got := runOut(t, u, nil, "addtest"); got != "howdy" {
		t.Fatalf("ADD of a tar.gz: %q", got)
	}
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman is not installed")
	}
	conf := filepath.Join(u.Home, ".config/containers/storage.conf")
	fixture.MustRun(t, u, "/bin/sh", "-c", "mkdir -p ~/.config/containers && printf '[storage]\\ndriver = \"overlay\"\\n' > "+conf)
	t.Cleanup(func() { os.Remove(conf) })
	out := fixture.MustRun(t, u, "podman", "--runtime", "runc", "run", "--rm", "--network", "none", "localhost/addtest")
	if strings.TrimSpace(out.Stdout) != "howdy" {
		t.Fatalf("podman run of tug's build: %q", out.Stdout)
	}
}

// A build killed in the middle of a RUN leaves no mount and no image; the
// next build works and reuses the steps that finished.
func TestBuildKilled(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + "\nRUN echo first > /first\nRUN sleep 4102\n",
	})
	cmd := u.Command(t.Context(), tugBin, append(append([]string{}, store...), "build", "-t", "killed", ctx)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !processRunning("sleep\x004102\x00") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	deadline = time.Now().Add(5 * time.Second)
	for processRunning("sleep\x004102\x00") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), store[1]) {
		t.Fatalf("a killed build left mounts:\n%s", grepLines(string(mounts), store[1]))
	}
	if imgs := mustTug(t, u, store, "images", "--format", "{{.Repository}}").Stdout; strings.Contains(imgs, "killed") {
		t.Fatalf("a killed build left an image: %s", imgs)
	}
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM "+busybox+"\nRUN echo first > /first\nRUN echo done\n"), 0o644)
	res := mustTug(t, u, store, "build", "-t", "killed", ctx)
	if !strings.Contains(res.Stderr, "[2/3] CACHED") {
		t.Fatalf("the step finished before the kill was not reused:\n%s", res.Stderr)
	}
}

func processRunning(cmdline string) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && string(b) == cmdline {
			return true
		}
	}
	return false
}

// -f - reads the Dockerfile from stdin, rootless too (where tug re-executes
// itself and only the second process may read it).
func TestBuildDockerfileFromStdin(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{"x": "x"})
	cmd := u.Command(t.Context(), tugBin, append(append([]string{}, store...), "build", "-q", "-t", "fromstdin", "-f", "-", ctx)...)
	cmd.Stdin = strings.NewReader("FROM " + busybox + "\nCMD [\"echo\", \"from stdin\"]\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build -f -: %v\n%s", err, out)
	}
	if got := runOut(t, u, store, "fromstdin"); got != "from stdin" {
		t.Fatalf("image built from stdin printed %q", got)
	}
}

// history shows the build's steps, newest first; `image` is Docker's
// management command for the image commands.
func TestHistoryAndImageCommand(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + "\nRUN echo x > /x\nCMD [\"true\"]\n",
	})
	mustTug(t, u, store, "build", "-t", "hist", ctx)
	out := mustTug(t, u, store, "history", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}", "hist").Stdout
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "") || !strings.Contains(lines[0], `CMD ["true"]`) || !strings.Contains(lines[1], "RUN /bin/sh -c echo x > /x") || !strings.HasPrefix(lines[1], "<missing>|") {
		t.Fatalf("history:\n%s", out)
	}
	if strings.HasSuffix(lines[1], "|0B") {
		t.Fatalf("the RUN step's layer has no size: %s", lines[1])
	}
	ls := mustTug(t, u, store, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}").Stdout
	if !strings.Contains(ls, "localhost/hist:latest") {
		t.Fatalf("image ls:\n%s", ls)
	}
	mustTug(t, u, store, "image", "rm", "hist")
	if res := tug(t, u, store, "image", "inspect", "hist"); res.Code != 1 {
		t.Fatalf("image inspect after image rm: exit %d", res.Code)
	}
}
