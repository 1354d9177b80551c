package commands

import (
	"testing"

	"golang.org/x/sys/unix"
)

// --tmpfs's options: mount flags are taken out of tmpfs's data, Docker's
// defaults apply, and what neither knows is refused by name.
func TestTmpfsMount(t *testing.T) {
	const defaults = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	for _, tc := range []struct {
		opts  string
		flags uintptr
		ro    bool
		data  string
		err   string
	}{
		{"", defaults, false, "mode=1777", ""},
		{"rw,noexec,nosuid,size=1m", defaults, false, "mode=1777,size=1m", ""},
		{"ro,exec", unix.MS_NOSUID | unix.MS_NODEV, true, "mode=1777", ""},
		{"suid,dev,exec,noatime", unix.MS_NOATIME, false, "mode=1777", ""},
		{"mode=700,uid=1000,gid=1000,nr_inodes=10", defaults, false, "mode=700,uid=1000,gid=1000,nr_inodes=10", ""},
		{"size=1m,bogus", 0, false, "", `unknown tmpfs option "bogus"`},
	} {
		m, err := tmpfsMount("/t", tc.opts)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %q", tc.opts, err, tc.err)
			}
			continue
		}
		if err != nil || m.Flags != tc.flags || m.ReadOnly != tc.ro || m.Data != tc.data || m.Type != "tmpfs" || m.Destination != "/t" {
			t.Errorf("%q: %+v, %v; want flags %#x, read-only %v, data %q", tc.opts, m, err, tc.flags, tc.ro, tc.data)
		}
	}
}
