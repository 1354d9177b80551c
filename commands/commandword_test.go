package commands

import (
	"testing"

	"github.com/alecthomas/kong"
)

// commandWord skips the global flags and the values of those that take
// one, however they are written.
func TestCommandWord(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "img"}, "run"},
		{[]string{"--root", "/x", "--runroot", "/y", "images"}, "images"},
		{[]string{"--storage-driver", "vfs", "ps"}, "ps"},
		{[]string{"--log-level", "info", "info"}, "info"},
		{[]string{"-l", "debug", "pull", "x"}, "pull"},
		{[]string{"-Dl", "debug", "rm"}, "rm"},
		{[]string{"--root=/x", "-D", "--debug", "build", "."}, "build"},
		{[]string{"--", "run"}, ""},
		{[]string{"--debug"}, ""},
	} {
		if got := commandWord(tc.args); got != tc.want {
			t.Errorf("commandWord(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// speculate assumes the globals plainGlobals reads: where it reads a line
// at all, kong's parse gives the same, and lines with other globals (or a
// value it cannot be sure of) are not read.
func TestPlainGlobalsAgreeWithKong(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"run", "img"}, true},
		{[]string{"--root", "/x", "--runroot", "/y", "run", "--rm", "img", "true"}, true},
		{[]string{"--root=/x", "--runroot=/y", "--storage-driver", "vfs", "run", "img"}, true},
		{[]string{"--storage-driver=overlay", "--root", "/a b", "run", "-e", "A=--root", "img"}, true},
		{[]string{"--root", "/x", "--root", "/z", "run", "img"}, true},
		{[]string{"--root=", "run", "img"}, true},
		{[]string{"--debug", "run", "img"}, false},
		{[]string{"-D", "run", "img"}, false},
		{[]string{"--log-level", "info", "run", "img"}, false},
		{[]string{"-l", "info", "run", "img"}, false},
		{[]string{"--root", "--runroot", "/y", "run", "img"}, false},
		{[]string{"--root"}, false},
		{[]string{"images", "run"}, false},
	} {
		g, ok := plainGlobals(tc.args)
		if ok != tc.ok {
			t.Errorf("plainGlobals(%q): ok %v, want %v", tc.args, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		var cli CLI
		parser, err := kong.New(&cli, kong.Name("tug"), kong.Exit(func(int) { t.Fatalf("kong exited on %q", tc.args) }))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parser.Parse(tc.args); err != nil {
			t.Fatalf("kong: %q: %v", tc.args, err)
		}
		if *g != cli.Globals {
			t.Errorf("plainGlobals(%q) = %+v, kong parses %+v", tc.args, *g, cli.Globals)
		}
	}
}
