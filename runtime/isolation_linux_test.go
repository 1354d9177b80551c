package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// What each host gets, for each --isolation, and the one error where
// nothing fits.
func TestChooseIsolation(t *testing.T) {
	t.Parallel()
	eperm := unix.EPERM
	caps := func(cs ...int) func(int) bool {
		return func(c int) bool {
			for _, x := range cs {
				if x == c {
					return true
				}
			}
			return false
		}
	}
	// clones says which clone flag sets succeed.
	clones := func(ok ...uintptr) func(uintptr) error {
		return func(f uintptr) error {
			for _, x := range ok {
				if x == f {
					return nil
				}
			}
			return eperm
		}
	}
	const (
		userns  = unix.CLONE_NEWUSER | containerFlags
		mountns = unix.CLONE_NEWNS
	)
	rootHost := isolationHost{euid: 0, user: "root", hasCap: caps(unix.CAP_SYS_ADMIN, unix.CAP_SYS_CHROOT), tryClone: clones(containerFlags, userns, mountns)}
	// Root in a container with Docker's defaults: no CAP_SYS_ADMIN, a
	// seccomp filter refusing every namespace.
	ciHost := isolationHost{euid: 0, user: "root", hasCap: caps(unix.CAP_SYS_CHROOT, unix.CAP_SETUID), tryClone: clones()}
	// The same with seccomp unconfined: a user namespace can be made.
	nestedHost := isolationHost{euid: 0, user: "root", hasCap: caps(unix.CAP_SYS_CHROOT), tryClone: clones(userns)}
	noChroot := ciHost
	noChroot.hasCap = caps()
	userHost := isolationHost{euid: 1000, user: "alice", hasCap: caps(), tryClone: clones(userns)}
	for _, tc := range []struct {
		name    string
		req     Isolation
		host    isolationHost
		want    Choice
		wantErr string
	}{
		{"root, auto", IsolationAuto, rootHost, Choice{IsolationRootless, "auto: root, and namespaces work here", EntryMountNamespace}, ""},
		{"root, rootless", IsolationRootless, rootHost, Choice{IsolationRootless, "chosen with --isolation=rootless; root: namespaces of tug's own", EntryMountNamespace}, ""},
		{"root, chroot", IsolationChroot, rootHost, Choice{IsolationChroot, "chosen with --isolation=chroot", EntryMountNamespace}, ""},
		{"container, auto", IsolationAuto, ciHost, Choice{IsolationChroot, "auto: no namespace can be made here (operation not permitted: BLOCKED); no mount namespace either: nothing is mounted for the command", EntryNone}, ""},
		{"container, empty is auto", "", ciHost, Choice{IsolationChroot, "auto: no namespace can be made here (operation not permitted: BLOCKED); no mount namespace either: nothing is mounted for the command", EntryNone}, ""},
		{"container, rootless", IsolationRootless, ciHost, Choice{}, "rootless isolation needs namespaces, and this process is root without CAP_SYS_ADMIN (as in a container) that cannot make a user namespace either (operation not permitted: BLOCKED); use --isolation=chroot"},
		{"nested, auto", IsolationAuto, nestedHost, Choice{IsolationRootless, "auto: root without CAP_SYS_ADMIN (as in a container): a user namespace of tug's own", EntryNestedUserNamespace}, ""},
		{"nested, chroot", IsolationChroot, nestedHost, Choice{IsolationChroot, "chosen with --isolation=chroot; no mount namespace either: nothing is mounted for the command", EntryNone}, ""},
		{"no CAP_SYS_CHROOT, auto", IsolationAuto, noChroot, Choice{}, "no isolation works here: namespaces cannot be made (operation not permitted: BLOCKED), and chroot isolation needs CAP_SYS_CHROOT, which this process lacks"},
		{"user, auto", IsolationAuto, userHost, Choice{IsolationRootless, "tug's user namespace, for user alice", EntryUserNamespace}, ""},
		{"user, chroot", IsolationChroot, userHost, Choice{}, "chroot isolation needs root: chroot(2) needs CAP_SYS_CHROOT, which uid 1000 (alice) does not have"},
		{"inherited", IsolationAuto, isolationHost{euid: 0, inherited: &Choice{Isolation: IsolationChroot, Why: "w"}}, Choice{IsolationChroot, "w", EntryNone}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.host
			h.blocker = func(error) string { return "BLOCKED" }
			got, err := chooseIsolation(tc.req, h)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseIsolation(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Isolation{"": IsolationAuto, "default": IsolationAuto, "auto": IsolationAuto, "rootless": IsolationRootless, "chroot": IsolationChroot} {
		if got, err := ParseIsolation(in); err != nil || got != want {
			t.Errorf("ParseIsolation(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseIsolation("oci"); err == nil || !strings.Contains(err.Error(), "use auto (the default), rootless or chroot") {
		t.Errorf("ParseIsolation(oci): %v", err)
	}
}

// The init's notes reach --debug; a failure after them is still the
// failure.
func TestReadInitReports(t *testing.T) {
	t.Parallel()
	var notes []string
	debugf := func(f string, a ...any) { notes = append(notes, f+":"+a[0].(string)) }
	err := readInitReports([]byte(`{"note":"a"}{"note":"b"}{"msg":"boom","code":127}`), debugf)
	var xe *ExecError
	if !errors.As(err, &xe) || xe.Msg != "boom" || xe.Code != 127 || strings.Join(notes, ",") != "%s:a,%s:b" {
		t.Fatalf("got %v, notes %q", err, notes)
	}
	if err := readInitReports([]byte(`{"note":"only"}`), debugf); err != nil {
		t.Fatalf("notes alone read as a failure: %v", err)
	}
	if err := readInitReports([]byte("not json"), debugf); err == nil || !strings.Contains(err.Error(), "not json") {
		t.Fatalf("garbage: %v", err)
	}
}

// Without a mount namespace, chroot isolation copies the spec's files
// into the root file system and makes /dev's nodes; undo leaves it as it
// was, down to the inode and times of what it set aside.
func TestPrepareChrootUndoes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod needs root")
	}
	root := t.TempDir()
	etc := filepath.Join(root, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	hosts := filepath.Join(etc, "hosts")
	if err := os.WriteFile(hosts, []byte("image's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var before, etcBefore unix.Stat_t
	unix.Stat(hosts, &before)
	unix.Stat(etc, &etcBefore)
	src := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(src, []byte("tug's\n"), 0o644)
	spec := &Spec{Config: Config{Rootfs: root, Mounts: []Mount{
		{Type: "bind", Source: src, Destination: "/etc/hosts", ReadOnly: true},
		{Type: "bind", Source: src, Destination: "/run/secrets/s", ReadOnly: true},
	}}}
	undo, err := prepareChroot(spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{hosts, filepath.Join(root, "run/secrets/s")} {
		if b, _ := os.ReadFile(p); string(b) != "tug's\n" {
			t.Errorf("%s holds %q during the run", p, b)
		}
	}
	var null unix.Stat_t
	if err := unix.Stat(filepath.Join(root, "dev/null"), &null); err != nil || null.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Errorf("/dev/null in the root: %v, mode %o", err, null.Mode)
	}
	undo()
	var after, etcAfter unix.Stat_t
	unix.Stat(hosts, &after)
	unix.Stat(etc, &etcAfter)
	if b, _ := os.ReadFile(hosts); string(b) != "image's\n" || after.Ino != before.Ino || after.Mtim != before.Mtim {
		t.Errorf("/etc/hosts after: %q, inode %d (was %d), mtime %v (was %v)", b, after.Ino, before.Ino, after.Mtim, before.Mtim)
	}
	if etcAfter.Mtim != etcBefore.Mtim {
		t.Errorf("/etc's mtime %v, was %v", etcAfter.Mtim, etcBefore.Mtim)
	}
	ents, _ := os.ReadDir(root)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "etc" {
		t.Errorf("the root holds %q after undo, want only etc", names)
	}

	// What only a mount can give is refused, and nothing is left behind.
	spec.Mounts = append(spec.Mounts, Mount{Type: "bind", Source: t.TempDir(), Destination: "/data"})
	if _, err := prepareChroot(spec); err == nil || !strings.Contains(err.Error(), "needs a mount") {
		t.Fatalf("a directory bind: %v", err)
	}
	if b, _ := os.ReadFile(hosts); string(b) != "image's\n" {
		t.Errorf("a refused prepare left /etc/hosts %q", b)
	}
	spec.Mounts, spec.ReadOnlyRootfs = nil, true
	if _, err := prepareChroot(spec); err == nil || !strings.Contains(err.Error(), "--read-only") {
		t.Fatalf("--read-only: %v", err)
	}
}
