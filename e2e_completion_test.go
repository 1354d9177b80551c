//go:build e2e

package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tugcli/tug/fixture"
)

// Shell completion against a real store, as a rootless user: bash sources
// `tug completion bash`, sets COMP_WORDS and COMP_CWORD as it would for
// the line, calls the completion function and prints COMPREPLY. Image
// and container names come from the store, through tug's user namespace.
func TestBashCompletionNames(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := isolated(t, u)
	mustTug(t, u, store, "pull", "-q", busybox)
	mustTug(t, u, store, "tag", busybox, "docker.io/library/compl:v1")
	mustTug(t, u, store, "create", "--name", "compl-web", busybox, "true")

	host, _, _ := strings.Cut(registry.Addr, ":")
	port := strings.TrimPrefix(registry.Addr, host+":")
	line := func(words ...string) string {
		// tug's path, the isolated store's flags, then the words.
		return strings.Join(append(append([]string{tugBin}, store...), words...), " ")
	}
	for _, tc := range []struct {
		name  string
		words string // COMP_WORDS as bash splits the line (at = and :)
		want  []string
	}{
		{"command", line("ru"), []string{"run"}},
		{"flag", line("run", "--netw"), []string{"--network"}},
		{"image, docker.io short name", line("run", "--rm", "-it", "comp"), []string{"compl:v1"}},
		{"image, whole name", line("run", "docker.io/library/c"), []string{"docker.io/library/compl:v1"}},
		{"image after a colon", line("run", host, ":", port+"/bu"), []string{port + "/busybox:latest"}},
		{"stopped container for start", line("start", "compl"), []string{"compl-web"}},
		{"no running container for stop", line("stop", "compl"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(strings.Fields(tc.words)) - 1
			script := fmt.Sprintf(`source <(%q completion bash) && COMP_WORDS=(%s) && COMP_CWORD=%d && _tug && printf '%%s\n' "${COMPREPLY[@]}"`, tugBin, tc.words, n)
			res := fixture.MustRun(t, u, "bash", "--noprofile", "--norc", "-c", script)
			if got := strings.Fields(res.Stdout); !slices.Equal(got, tc.want) {
				t.Errorf("COMPREPLY = %q, want %q (stderr %q)", got, tc.want, res.Stderr)
			}
		})
	}

	// tug __complete itself prints nothing on stderr, with a store or without.
	for _, args := range [][]string{
		append(append([]string{"__complete"}, store...), "rmi", ""),
		{"__complete", "--root", "/nonexistent/tug-e2e", "--runroot", "/nonexistent/tug-e2e-run", "rmi", ""},
	} {
		res := fixture.Run(t, u, tugBin, args...)
		if res.Code != 0 || res.Stderr != "" {
			t.Errorf("tug %s: exit %d, stderr %q", strings.Join(args, " "), res.Code, res.Stderr)
		}
	}
}

// zsh and fish load the scripts `tug completion zsh|fish` prints and
// complete commands, flags, their values, and images and containers from
// a real store, as bash does above. zsh runs on a pseudo-terminal
// (zpty): TAB is typed after the line, and compadd is wrapped to print
// what zsh would offer after its own matching
// (testdata/completion/capture.zsh). fish prints what it would offer for
// a line with complete -C. Each shell is skipped only where it is not
// installed.
func TestZshFishCompletion(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := isolated(t, u)
	mustTug(t, u, store, "pull", "-q", busybox)
	mustTug(t, u, store, "tag", busybox, "docker.io/library/compl:v1")
	mustTug(t, u, store, "create", "--name", "compl-web", busybox, "true")
	files := fixture.TempDirFor(t, u)
	if err := os.WriteFile(filepath.Join(files, "Dockerfile.compl"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	line := func(words ...string) string {
		// tug's path, the isolated store's flags, then the words.
		return strings.Join(append(append([]string{tugBin}, store...), words...), " ")
	}
	cases := []struct {
		name string
		line string   // as typed; the completion is for its last word
		want []string // exactly these, sorted; for a file, the name's end
	}{
		{"command", line("ru"), []string{"run"}},
		{"subcommand", line("container", "l"), []string{"logs", "ls"}},
		{"flag", line("run", "--netw"), []string{"--network"}},
		{"flag value", line("run", "--network", "p"), []string{"pasta", "private"}},
		{"flag=value", line("run", "--network=s"), []string{"--network=slirp4netns"}},
		{"an open quote", line("completion", "'z"), []string{"zsh"}},
		{"image, docker.io short name", line("run", "--rm", "-it", "comp"), []string{"compl:v1"}},
		{"image, whole name", line("run", "docker.io/library/c"), []string{"docker.io/library/compl:v1"}},
		{"image, registry with a port", line("image", "rm", registry.Addr+"/bu"), []string{registry.Addr + "/busybox:latest"}},
		{"stopped container for start", line("start", "compl"), []string{"compl-web"}},
		{"no running container for stop", line("stop", "compl"), nil},
		{"a file for build -f", line("build", "-f", filepath.Join(files, "Dockerf")), []string{"Dockerfile.compl"}},
	}
	check := func(t *testing.T, got, want []string, out fixture.Result) {
		t.Helper()
		slices.Sort(got)
		if len(want) == 1 && strings.HasSuffix(want[0], ".compl") && len(got) == 1 && strings.HasSuffix(got[0], want[0]) {
			return // a file name, with the directory (fish) or without (zsh)
		}
		if !slices.Equal(got, want) {
			t.Errorf("candidates %q, want %q (stderr %q)", got, want, out.Stderr)
		}
	}

	t.Run("zsh", func(t *testing.T) {
		if _, err := exec.LookPath("zsh"); err != nil {
			t.Skip("zsh is not installed")
		}
		dir := fixture.TempDirFor(t, u)
		script := filepath.Join(dir, "tug.zsh")
		writeCompletionFile(t, script, mustTug(t, u, store, "completion", "zsh").Stdout)
		harness, err := os.ReadFile("testdata/completion/capture.zsh")
		if err != nil {
			t.Fatal(err)
		}
		writeCompletionFile(t, filepath.Join(dir, "capture.zsh"), string(harness))
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				res := fixture.MustRun(t, u, "timeout", "60", "zsh", "-f", filepath.Join(dir, "capture.zsh"), script, tc.line)
				check(t, strings.Fields(res.Stdout), tc.want, res)
			})
		}
		// Saved as _tug in a directory of $fpath instead, as the script
		// says it may be: compinit finds it.
		for _, tc := range []int{0, 6} {
			t.Run("from fpath: "+cases[tc].name, func(t *testing.T) {
				res := fixture.MustRun(t, u, "timeout", "60", "zsh", "-f", filepath.Join(dir, "capture.zsh"), script, cases[tc].line, "fpath")
				check(t, strings.Fields(res.Stdout), cases[tc].want, res)
			})
		}
	})

	t.Run("fish", func(t *testing.T) {
		if _, err := exec.LookPath("fish"); err != nil {
			t.Skip("fish is not installed")
		}
		script := filepath.Join(fixture.TempDirFor(t, u), "tug.fish")
		writeCompletionFile(t, script, mustTug(t, u, store, "completion", "fish").Stdout)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				res := fixture.MustRun(t, u, "timeout", "60", "fish", "--no-config", "-c", "source $argv[1]; and complete -C $argv[2]", script, tc.line)
				var got []string
				for _, l := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
					if v, _, _ := strings.Cut(l, "\t"); v != "" {
						got = append(got, v)
					}
				}
				check(t, got, tc.want, res)
			})
		}
	})
}

func writeCompletionFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
