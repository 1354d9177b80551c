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
// exec'd in the container's namespaces, for speed); one with --init still
// gets tug's init. What the command sees must be the same either
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
				{"-t"},
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

// A step that fails in the forked child is reported as tug's init reports
// it: the same exit code and message.
func TestRunForkedFailsLikeInit(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-w", "/etc/passwd/x", busybox, "true"}, 125, "creating working directory /etc/passwd/x"},
		{[]string{"--ulimit", "nofile=99999999:99999999", busybox, "true"}, 125, "setting rlimit 7 to 99999999:99999999: operation not permitted"},
		// Entered as root first, as runc does: the user keeps it.
		{[]string{"-u", "1000", "-w", "/root", busybox, "pwd"}, 0, ""},
		{[]string{busybox, "/nosuch"}, 127, `"/nosuch"`},
		{[]string{busybox, "nosuch"}, 127, `"nosuch": executable file not found in $PATH`},
		{[]string{"-u", "1000", busybox, "/root"}, 126, `"/root"`},
	} {
		var got [2]fixture.Result
		for i, extra := range [][]string{nil, {"--init"}} {
			got[i] = tug(t, u, store, append(append([]string{"run", "--rm", "--network", "none"}, extra...), tc.args...)...)
			if got[i].Code != tc.code || !strings.Contains(got[i].Stderr, tc.msg) {
				t.Errorf("run %v %v: exit %d, stderr %q; want %d and %q", extra, tc.args, got[i].Code, got[i].Stderr, tc.code, tc.msg)
			}
		}
		if lastLine(got[0].Stderr) != lastLine(got[1].Stderr) || got[0].Stdout != got[1].Stdout {
			t.Errorf("run %v: forked says %q, %q; with --init %q, %q", tc.args, got[0].Stdout, lastLine(got[0].Stderr), got[1].Stdout, lastLine(got[1].Stderr))
		}
	}
}
