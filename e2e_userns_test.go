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
