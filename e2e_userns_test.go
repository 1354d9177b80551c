//go:build e2e

package main_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tugcli/tug/fixture"
)

// A rootless tug's user-namespace child waits for its id maps in the
// host's /bin/sh and then execs tug; TUG_USERNS_STAGE1=tug makes tug wait
// itself, as it must on a host without /bin/sh. Both give the container
// the subordinate mapping, uid 0 and no file descriptor of tug's.
func TestUsernsFirstStage(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	for _, stage := range []string{"sh", "tug"} {
		v := u
		if stage == "tug" {
			v.Env = append(append([]string{}, u.Env...), "TUG_USERNS_STAGE1=tug")
		}
		got := mustTug(t, v, store, "run", "--rm", "--network", "none", busybox, "sh", "-c", "id -u; cat /proc/self/uid_map; ls /proc/self/fd").Stdout
		want := fmt.Sprintf("0 0 %d 1 1 300000 65536 0 1 2 3", u.UID)
		if f := strings.Join(strings.Fields(got), " "); f != want {
			t.Errorf("first stage %s: the container printed %q, want %q", stage, f, want)
		}
		if res := tug(t, v, store, "run", "--rm", "--network", "none", busybox, "sh", "-c", "exit 7"); res.Code != 7 {
			t.Errorf("first stage %s: exit %d, want 7\n%s", stage, res.Code, res.Stderr)
		}
	}
}

// Under no_new_privs (a CI container's no-new-privileges, systemd's
// NoNewPrivileges=) newuidmap cannot gain its privileges: tug says so
// once, maps the user's own id, and runs, as with no subordinate range.
func TestUsernsNoNewPrivs(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	res := fixture.Run(t, u, "setpriv", append([]string{"--no-new-privs", tugBin}, append(store, "run", "--rm", "--network", "none", busybox, "sh", "-c", "id -u; cat /proc/self/uid_map")...)...)
	want := fmt.Sprintf("0 0 %d 1", u.UID)
	if got := strings.Join(strings.Fields(res.Stdout), " "); res.Code != 0 || got != want {
		t.Fatalf("under no_new_privs: exit %d, printed %q (want %q)\n%s", res.Code, got, want, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "no_new_privs is set on this process") || strings.Count(res.Stderr, "WARNING") != 1 {
		t.Errorf("under no_new_privs, stderr:\n%s", res.Stderr)
	}
}
