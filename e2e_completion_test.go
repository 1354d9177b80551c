//go:build e2e

package main_test

import (
	"fmt"
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
