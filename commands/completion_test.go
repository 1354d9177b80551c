package commands

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// testModel is tug's kong model, as parseArgs leaves it.
func testModel(t *testing.T) *kong.Node {
	t.Helper()
	var cli CLI
	p, err := kong.New(&cli, kong.Name("tug"), kong.Exit(func(int) { t.Fatal("kong exited") }))
	if err != nil {
		t.Fatal(err)
	}
	if p.Model.HelpFlag != nil {
		p.Model.HelpFlag.Short = 0
	}
	return p.Model.Node
}

// The completion engine, with a store that holds one image, two
// containers (one running) and a volume.
func TestCompleteWords(t *testing.T) {
	t.Parallel()
	root := testModel(t)
	store := map[string][]string{
		"image":     {"docker.io/library/busybox:latest", "busybox:latest", "127.0.0.1:5000/app:1"},
		"container": {"web", "job"},
		"volume":    {"data"},
	}
	for _, tc := range []struct {
		words []string
		want  []string // exactly these values, in order
		files bool
	}{
		{words: []string{"ru"}, want: []string{"run"}},
		{words: []string{"rm"}, want: []string{"rm", "rmi"}},
		{words: []string{"container", "l"}, want: []string{"logs", "ls"}},
		{words: []string{"run", "--netw"}, want: []string{"--network"}},
		{words: []string{"run", "--network", "p"}, want: []string{"pasta", "private"}},
		{words: []string{"run", "--network=s"}, want: []string{"--network=slirp4netns"}},
		{words: []string{"run", "--pull", ""}, want: []string{"always", "missing", "never"}},
		{words: []string{"run", "-it", "--rm", "b"}, want: []string{"busybox:latest"}},
		{words: []string{"run", "-e", "A=1", "--name", "x", "1"}, want: []string{"127.0.0.1:5000/app:1"}},
		{words: []string{"run", "busybox", ""}, want: nil},      // the container's command
		{words: []string{"run", "busybox", "--net"}, want: nil}, // likewise
		{words: []string{"exec", "-it", "w"}, want: []string{"web"}},
		{words: []string{"exec", "web", "--"}, want: nil},
		{words: []string{"rm", "-f", "web", ""}, want: []string{"job", "web"}},
		{words: []string{"inspect", ""}, want: []string{"127.0.0.1:5000/app:1", "busybox:latest", "docker.io/library/busybox:latest", "job", "web"}},
		{words: []string{"volume", "rm", "d"}, want: []string{"data"}},
		{words: []string{"image", "rm", "docker.io/"}, want: []string{"docker.io/library/busybox:latest"}},
		{words: []string{"completion", ""}, want: []string{"bash", "fish", "zsh"}},
		{words: []string{"--root", "/x", "--log-level", ""}, want: []string{"debug", "error", "info", "warn"}},
		{words: []string{"build", "-f", ""}, files: true},
		{words: []string{"build", ""}, files: true},
		{words: []string{"rm", "--", "-"}, want: nil}, // after --, no flags
	} {
		t.Run(strings.Join(tc.words, " "), func(t *testing.T) {
			st := walkLine(root, tc.words[:len(tc.words)-1])
			cands, files := st.candidates(tc.words[len(tc.words)-1], func(kind string) []string {
				return slices.Clone(store[kind])
			})
			var got []string
			for _, c := range cands {
				got = append(got, c.value)
			}
			if files != tc.files || !slices.Equal(got, tc.want) {
				t.Errorf("got %q (files %v), want %q (files %v)", got, files, tc.want, tc.files)
			}
		})
	}
}

// --root and friends on the line choose the store the names come from.
func TestCompleteLineValues(t *testing.T) {
	t.Parallel()
	st := walkLine(testModel(t), []string{"--root", "/r", "--runroot=/rr", "run", "-e", "X", "-w/tmp"})
	if st.values["root"] != "/r" || st.values["runroot"] != "/rr" || st.values["workdir"] != "/tmp" || st.node.Name != "run" {
		t.Fatalf("values %v, node %s", st.values, st.node.Name)
	}
}

// A store that is not there gives no names and no error, and is not made.
func TestCompleteMissingStore(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nostore")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"__complete", "--root", dir, "--runroot", dir + "-run", "rmi", ""}, &out, &errb)
	if code != 0 || out.String() != "" || errb.String() != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("completion created the store %s", dir)
	}
}

func TestCompletionScripts(t *testing.T) {
	t.Parallel()
	for _, sh := range []string{"bash", "zsh", "fish"} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{"completion", sh}, &out, &errb); code != 0 {
			t.Fatalf("completion %s: exit %d: %s", sh, code, errb.String())
		}
		if !strings.Contains(out.String(), "__complete") {
			t.Errorf("the %s script does not call tug __complete:\n%s", sh, out.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"completion", "tcsh"}, &out, &errb); code != 125 {
		t.Errorf("completion tcsh exited %d, want 125", code)
	}
}

// TestCompletionHelperProcess is tug itself when the bash test below runs
// this test binary as "tug".
func TestCompletionHelperProcess(t *testing.T) {
	if os.Getenv("TUG_COMPLETION_HELPER") != "1" {
		t.Skip("runs only as the bash completion test's tug")
	}
	args := os.Args
	if i := slices.Index(args, "--"); i >= 0 {
		args = args[i+1:]
	}
	os.Exit(Main(args))
}

// The bash script in a real bash: COMP_WORDS and COMP_CWORD as bash sets
// them (split at = and :), the completion function called, COMPREPLY
// printed. "tug" on PATH is this test binary.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	wrapper := fmt.Sprintf("#!/bin/sh\nTUG_COMPLETION_HELPER=1 exec %q -test.run='^TestCompletionHelperProcess$' -- \"$@\"\n", os.Args[0])
	if err := os.WriteFile(filepath.Join(dir, "tug"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	var script, errb bytes.Buffer
	if code := run(context.Background(), []string{"completion", "bash"}, &script, &errb); code != 0 {
		t.Fatalf("completion bash: %s", errb.String())
	}
	scriptPath := filepath.Join(dir, "tug.bash")
	if err := os.WriteFile(scriptPath, script.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		words string // COMP_WORDS, as bash splits the line; the last is completed
		want  []string
	}{
		{`tug ru`, []string{"run"}},
		{`tug run --netw`, []string{"--network"}},
		{`tug run --network = p`, []string{"pasta", "private"}},
		{`tug run --network =`, []string{"=host", "=none", "=pasta", "=private", "=slirp4netns"}},
		{`tug container l`, []string{"logs", "ls"}},
		{`tug completion ''`, []string{"bash", "fish", "zsh"}},
		{`tug --root /nonexistent rmi ''`, nil},
	} {
		t.Run(tc.words, func(t *testing.T) {
			n := len(strings.Fields(tc.words)) - 1
			cmd := exec.CommandContext(t.Context(), bash, "--noprofile", "--norc", "-c",
				fmt.Sprintf(`source %q && COMP_WORDS=(%s) && COMP_CWORD=%d && _tug && printf '%%s\n' "${COMPREPLY[@]}"`, scriptPath, tc.words, n))
			cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			got := strings.Fields(string(out))
			if !slices.Equal(got, tc.want) {
				t.Errorf("COMPREPLY = %q, want %q", got, tc.want)
			}
		})
	}
}
