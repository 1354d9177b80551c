//go:build e2e

package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tugcli/tug/fixture"
)

// RUN --mount: a cache directory kept across builds, tmpfs, binds from
// the context (read-only, or rw with the writes thrown away) and from a
// stage; none of them leaves a trace in the image.
func TestBuildRunMounts(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + " AS builder\nRUN mkdir /out && echo staged > /out/artifact\n" +
			"FROM " + busybox + "\n" +
			"RUN --mount=type=cache,target=/cache echo line >> /cache/log && cp /cache/log /seen\n" +
			"RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/f && grep -q ' /scratch ' /proc/mounts\n" +
			"RUN --mount=type=bind,source=data,target=/data cat /data/f.txt > /fromctx && ! touch /data/new 2>/dev/null\n" +
			"RUN --mount=type=bind,target=/ctx,rw echo written > /ctx/data/f.txt && touch /ctx/new\n" +
			"RUN --mount=type=bind,from=builder,source=/out,target=/o cp /o/artifact /a\n" +
			"RUN --mount=type=cache,target=/tugcache/x,id=owned,uid=1000,mode=0700 stat -c %u:%a /tugcache/x > /cacheowner\n" +
			"CMD [\"sh\", \"-c\", \"for p in /cache /scratch /data /ctx /o /tugcache; do [ -e $p ] && echo LEFT $p; done; cat /seen /fromctx /a /cacheowner\"]\n",
		"data/f.txt": "ctx data\n",
	})
	mustTug(t, u, store, "build", "--no-cache", "-t", "mounts", ctx)
	res := mustTug(t, u, store, "build", "--no-cache", "-t", "mounts", ctx)
	if strings.Contains(res.Stderr, "CACHED") {
		t.Fatalf("--no-cache used the cache:\n%s", res.Stderr)
	}
	if got := runOut(t, u, store, "mounts"); got != "line\nline\nctx data\nstaged\n1000:700" {
		t.Fatalf("the image built with RUN --mount printed:\n%s", got)
	}
	if b, _ := os.ReadFile(filepath.Join(ctx, "data/f.txt")); string(b) != "ctx data\n" {
		t.Fatalf("a rw bind mount wrote to the context: %q", b)
	}
	if _, err := os.Stat(filepath.Join(ctx, "new")); err == nil {
		t.Fatal("a rw bind mount created a file in the context")
	}
	// The mounts are in the cache key, the cache's content is not.
	res = mustTug(t, u, store, "build", "-t", "mounts", ctx)
	if n := strings.Count(res.Stderr, "CACHED"); n != 8 {
		t.Fatalf("rebuild: %d steps CACHED, want 8:\n%s", n, res.Stderr)
	}
	os.WriteFile(filepath.Join(ctx, "data/f.txt"), []byte("changed\n"), 0o644)
	res = mustTug(t, u, store, "build", "-t", "mounts", ctx)
	if !strings.Contains(res.Stderr, "cat /data/f.txt") || strings.Count(res.Stderr, "CACHED") != 3 {
		t.Fatalf("after changing a bind-mounted file, want the first 3 steps CACHED:\n%s", res.Stderr)
	}
}

// RUN --mount=type=secret reads --secret's file or variable; the value is
// in no layer, no history and no saved archive.
func TestBuildSecret(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	const value = "s3cr3t-value"
	dir := fixture.TempDirFor(t, u)
	secretFile := filepath.Join(dir, "token")
	os.WriteFile(secretFile, []byte(value), 0o600)
	os.Chown(secretFile, int(u.UID), int(u.GID))
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + "\n" +
			"RUN --mount=type=secret,id=tok echo \"got $(cat /run/secrets/tok) $(stat -c %a /run/secrets/tok)\"\n" +
			"RUN --mount=type=secret,id=tok,env=TOK,target=/s/t test \"${#TOK}\" = 12 && test -f /s/t && echo env-ok\n" +
			"RUN --mount=type=secret,id=fromenv,required echo \"fromenv $(cat /run/secrets/fromenv)\" && touch /done\n",
	})
	ue := u
	ue.Env = append(append([]string{}, u.Env...), "MYSECRET=envsecret")
	res := mustTug(t, ue, store, "build", "--progress", "plain", "-t", "sec", "--secret", "id=tok,src="+secretFile, "--secret", "id=fromenv,env=MYSECRET", ctx)
	for _, want := range []string{"got " + value + " 400", "env-ok", "fromenv envsecret"} {
		if !strings.Contains(res.Stderr, want) {
			t.Fatalf("build output lacks %q:\n%s", want, res.Stderr)
		}
	}
	if insp := mustTug(t, u, store, "inspect", "localhost/sec").Stdout; strings.Contains(insp, value) || strings.Contains(insp, "envsecret") {
		t.Fatalf("inspect shows the secret:\n%s", insp)
	}
	archive := filepath.Join(fixture.TempDirFor(t, u), "sec.tar")
	mustTug(t, u, store, "save", "-o", archive, "localhost/sec")
	raw, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{value, "envsecret"} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("the saved image contains %q", leak)
		}
	}
	if got := runOut(t, u, store, "sec", "sh", "-c", "ls /run /s 2>&1; ls /done"); strings.Contains(got, "secrets") || !strings.Contains(got, "/s: No such file") {
		t.Fatalf("the image holds the secret mount points:\n%s", got)
	}
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM "+busybox+"\nRUN --mount=type=secret,id=absent,required true\n"), 0o644)
	if res := tug(t, u, store, "build", ctx); res.Code != 1 || !strings.Contains(res.Stderr, "absent") {
		t.Fatalf("a required secret that was not given: exit %d\n%s", res.Code, res.Stderr)
	}
}

// Heredocs: RUN <<EOF runs the text, a #! heredoc runs as a script, and
// COPY <<EOF writes a file (variables expanded, mode 0644).
func TestBuildHeredocs(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + "\n" +
			"RUN <<EOF\necho one > /h1\necho two >> /h1\nEOF\n" +
			"RUN <<EOF\n#!/bin/sh\necho \"script $0\" > /h2\nEOF\n" +
			"ARG NAME=world\n" +
			"COPY <<EOF /etc/greeting\nhello $NAME\nEOF\n" +
			"COPY <<EOT /x/\nin dir\nEOT\n" +
			"CMD [\"sh\", \"-c\", \"cat /h1 /h2 /etc/greeting /x/EOT; stat -c %a /etc/greeting\"]\n",
	})
	mustTug(t, u, store, "build", "-t", "heredocs", ctx)
	if got := runOut(t, u, store, "heredocs"); got != "one\ntwo\nscript /dev/pipes/EOF\nhello world\nin dir\n644" {
		t.Fatalf("the heredoc image printed:\n%s", got)
	}
}

// ONBUILD triggers of a base image run right after FROM in the child,
// which keeps none of them.
func TestBuildOnBuild(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	parent := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + "\nONBUILD RUN echo triggered > /onbuild\nONBUILD COPY f /f\n",
	})
	mustTug(t, u, store, "build", "-t", "parent", parent)
	if got := mustTug(t, u, store, "inspect", "-f", "{{json .Config.OnBuild}}", "localhost/parent").Stdout; !strings.Contains(got, "COPY f /f") {
		t.Fatalf("the parent's OnBuild: %s", got)
	}
	child := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM localhost/parent\nRUN cat /onbuild /f > /both\n",
		"f":          "from the child's context\n",
	})
	mustTug(t, u, store, "build", "-t", "child", child)
	if got := runOut(t, u, store, "child", "cat", "/both"); got != "triggered\nfrom the child's context" {
		t.Fatalf("the child printed %q", got)
	}
	if got := strings.TrimSpace(mustTug(t, u, store, "inspect", "-f", "{{json .Config.OnBuild}}", "localhost/child").Stdout); got != "null" && got != "[]" {
		t.Fatalf("the child kept OnBuild: %s", got)
	}
}

// builder prune removes what no image uses (a builder stage's layers), -a
// everything including cache mounts; built images keep working.
func TestBuilderPrune(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + " AS builder\nRUN head -c 2000000 /dev/zero > /big && echo small > /small\n" +
			"FROM " + busybox + "\nCOPY --from=builder /small /small\nRUN --mount=type=cache,target=/c echo x > /c/x\nCMD [\"cat\", \"/small\"]\n",
	})
	mustTug(t, u, store, "build", "-t", "pruned", ctx)
	res := mustTug(t, u, store, "builder", "prune", "-f")
	if !strings.Contains(res.Stdout, "Total reclaimed space: 2") || !strings.Contains(res.Stdout, "MB") {
		t.Fatalf("builder prune did not reclaim the builder stage's 2 MB:\n%s", res.Stdout)
	}
	if got := runOut(t, u, store, "pruned"); got != "small" {
		t.Fatalf("after prune the image printed %q", got)
	}
	res = mustTug(t, u, store, "build", "-t", "pruned", ctx)
	if strings.Contains(res.Stderr, "[2/2] CACHED") || strings.Count(res.Stderr, "CACHED") != 3 {
		t.Fatalf("after prune, want the builder's RUN rebuilt and the image's steps cached:\n%s", res.Stderr)
	}
	mounts := filepath.Join(store[1], "tug-build-cache-mounts")
	if ents, _ := os.ReadDir(mounts); len(ents) == 0 {
		t.Fatal("no cache mount in the store before prune -a")
	}
	res = mustTug(t, u, store, "builder", "prune", "-a", "-f")
	if !strings.Contains(res.Stdout, "Total reclaimed space:") || strings.Contains(res.Stdout, "space: 0B") {
		t.Fatalf("builder prune -a:\n%s", res.Stdout)
	}
	if ents, _ := os.ReadDir(mounts); len(ents) != 0 {
		t.Fatalf("prune -a left cache mounts: %v", ents)
	}
	res = mustTug(t, u, store, "build", "-t", "pruned", ctx)
	if strings.Contains(res.Stderr, "CACHED") {
		t.Fatalf("after prune -a a build used the cache:\n%s", res.Stderr)
	}
	if res := mustTug(t, u, store, "builder", "prune", "-f"); !strings.Contains(res.Stdout, "Total reclaimed space: ") {
		t.Fatalf("second prune:\n%s", res.Stdout)
	}
	if got := runOut(t, u, store, "pruned"); got != "small" {
		t.Fatalf("after prune -a the image printed %q", got)
	}
}
