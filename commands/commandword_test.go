package commands

import "testing"

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
