//go:build e2e

package main_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tugcli/tug/fixture"
)

// A plain foreground container is forked by tug without its init (no tug
// exec'd in the container's namespaces, for speed); one with --init or -t
// still gets tug's init. What the command sees must be the same either
// way: its user and groups, directory, limits, capabilities, no_new_privs
// and seccomp, descriptors, masks and mounts.
func TestRunForkedLikeInit(t *testing.T) {
	const probe = `id; pwd; hostname | wc -c; ulimit -Sn; ulimit -Hn
grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status
ls /proc/self/fd | tr '\n' ' '; echo
ls -l /proc/kcore /proc/keys /proc/timer_list /sys/firmware 2>&1 | sed 's/ [A-Z][a-z][a-z] [ 0-9]* [0-9:]* / /'
touch /probe 2>&1 | sed 's/.*: //'; ip link 2>/dev/null | grep -c '^[0-9]'
sed -E 's/(lowerdir|upperdir|workdir)=[^,]*,?//g; s/uid=[0-9]*,gid=[0-9]*,?//' /proc/mounts | sort`
	// Paths of tug's store and run root differ between users, not modes.
	mountSource := regexp.MustCompile(`(?m)^/\S+ `)
	for mode, u := range users(t) {
		t.Run(mode, func(t *testing.T) {
			store := pulled(t, u)
			host := fixture.TempDirFor(t, u)
			sets := [][]string{
				nil,
				{"--read-only", "-w", "/a/b", "--tmpfs", "/t:size=1m", "-v", host + ":/v:ro", "--ulimit", "nofile=1000:2000", "--hostname", "h1"},
				{"--cap-drop", "chown", "--cap-add", "sys_ptrace", "--security-opt", "no-new-privileges", "--network", "host"},
				{"--security-opt", "seccomp=unconfined", "--cap-drop", "all"},
				{"--privileged"},
				{"--network", "private", "-i"},
			}
			if mode != "single-id" {
				sets = append(sets, []string{"-u", "1000:1000", "--group-add", "2000", "-w", "/home/u"})
			}
			for _, flags := range sets {
				run := func(extra ...string) string {
					args := append(append([]string{}, extra...), flags...)
					if !slices.Contains(flags, "--network") {
						args = append(args, "--network", "none")
					}
					args = append(args, busybox, "sh", "-c", probe)
					return mountSource.ReplaceAllString(runOut(t, u, store, args...), "SRC ")
				}
				forked, withInit := run(), run("--init")
				if forked != withInit {
					t.Errorf("flags %q: the forked container sees\n%s\nwith --init:\n%s\nlines that differ:\n%s", flags, forked, withInit, lineDiff(forked, withInit))
				}
				if !strings.Contains(forked, "Seccomp:") || !strings.Contains(forked, "proc /proc proc") {
					t.Errorf("flags %q: the probe did not run as meant:\n%s", flags, forked)
				}
			}
		})
	}
}

// lineDiff lists the lines of a missing from b ("-") and of b missing
// from a ("+").
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for _, l := range al {
		if !slices.Contains(bl, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range bl {
		if !slices.Contains(al, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}
