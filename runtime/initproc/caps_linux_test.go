package initproc

import (
	"fmt"
	"os"
	"os/exec"
	stdruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCapabilityTable(t *testing.T) {
	if len(capabilityNames) != unix.CAP_CHECKPOINT_RESTORE+1 {
		t.Fatalf("table has %d entries, want %d", len(capabilityNames), unix.CAP_CHECKPOINT_RESTORE+1)
	}
	for i, n := range capabilityNames {
		if !strings.HasPrefix(n, "CAP_") {
			t.Errorf("capability %d has name %q", i, n)
		}
		if c, ok := capabilityNumber(n); !ok || c != i {
			t.Errorf("capabilityNumber(%q) = %d, %v; want %d", n, c, ok, i)
		}
	}
	for _, n := range DefaultCapabilities {
		if _, ok := capabilityNumber(n); !ok {
			t.Errorf("default capability %q is not in the table", n)
		}
	}
	if got := capabilityName(63); got != "CAP_63" {
		t.Errorf("capabilityName(63) = %q", got)
	}
}

func TestResolveCapabilities(t *testing.T) {
	sorted := func(s ...string) []string {
		s = slices.Clone(s)
		slices.Sort(s)
		return s
	}
	defaults := sorted(DefaultCapabilities...)
	all := sorted(AllCapabilities()...)
	without := func(from []string, drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(from), func(c string) bool { return slices.Contains(drop, c) })
	}
	tests := []struct {
		name       string
		add, drop  []string
		privileged bool
		want       []string
		err        string
	}{
		{name: "defaults", want: defaults},
		{name: "add without prefix, any case", add: []string{"net_admin"}, want: sorted(append(slices.Clone(DefaultCapabilities), "CAP_NET_ADMIN")...)},
		{name: "add twice and one already there", add: []string{"CAP_SYS_ADMIN", "Sys_Admin", "cap_chown"}, want: sorted(append(slices.Clone(DefaultCapabilities), "CAP_SYS_ADMIN")...)},
		{name: "drop", drop: []string{"chown", "CAP_KILL", "cap_sys_admin"}, want: without(defaults, "CAP_CHOWN", "CAP_KILL")},
		{name: "drop all then add", add: []string{"chown", "NET_BIND_SERVICE"}, drop: []string{"all"}, want: []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE"}},
		{name: "drop all", drop: []string{"ALL"}, want: []string{}},
		{name: "add all minus drop", add: []string{"All"}, drop: []string{"sys_admin"}, want: without(all, "CAP_SYS_ADMIN")},
		{name: "add all wins over drop all", add: []string{"ALL"}, drop: []string{"ALL"}, want: all},
		{name: "privileged", privileged: true, drop: []string{"ALL"}, want: all},
		{name: "unknown add", add: []string{"foo"}, err: `unknown capability: "CAP_FOO"`},
		{name: "unknown drop", drop: []string{"Cap_Foo"}, err: `unknown capability: "CAP_FOO"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveCapabilities(tt.add, tt.drop, tt.privileged)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || !slices.Equal(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// AllCapabilities is what the kernel knows and this process's bounding set
// holds (CapBnd in /proc/self/status): root here lacks CAP_SYS_RESOURCE
// there, and --privileged asked for it (capset: operation not permitted).
func TestAllCapabilitiesFollowsKernel(t *testing.T) {
	last := LastCapability()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var bnd uint64
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			if bnd, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64); err != nil {
				t.Fatal(err)
			}
		}
	}
	var want []string
	for c := 0; c <= min(last, unix.CAP_CHECKPOINT_RESTORE); c++ {
		if bnd&(1<<c) != 0 {
			want = append(want, capabilityName(c))
		}
	}
	if got := AllCapabilities(); !slices.Equal(got, want) {
		t.Errorf("AllCapabilities = %q\nwant %q (cap_last_cap %d, CapBnd %x)", got, want, last, bnd)
	}
}

// capabilitiesHelperEnv selects what TestCapabilitiesHelperProcess does in
// the re-executed test binary.
const capabilitiesHelperEnv = "TUG_TEST_CAPABILITIES_HELPER"

// TestCapabilitiesHelperProcess is not a test: TestApplyCapabilities runs it
// in a child process, because ApplyCapabilities cannot be undone.
func TestCapabilitiesHelperProcess(t *testing.T) {
	mode := os.Getenv(capabilitiesHelperEnv)
	if mode == "" {
		t.Skip("helper process for TestApplyCapabilities")
	}
	stdruntime.LockOSThread()
	uid := uint32(0)
	switch mode {
	case "user", "user-without-keepcaps":
		uid = 1000
		if mode == "user" {
			if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
				fmt.Println("keepcaps:", err)
				os.Exit(2)
			}
		}
		if err := unix.Setresgid(1000, 1000, 1000); err != nil {
			fmt.Println("setresgid:", err)
			os.Exit(2)
		}
		if err := unix.Setresuid(1000, 1000, 1000); err != nil {
			fmt.Println("setresuid:", err)
			os.Exit(2)
		}
	}
	if err := ApplyCapabilities(DefaultCapabilities, uid); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	// /proc/self/status shows the main thread; this one is the one changed.
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	fmt.Print(string(b))
	os.Exit(0)
}

func runCapabilitiesHelper(t *testing.T, mode string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCapabilitiesHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), capabilitiesHelperEnv+"="+mode)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// statusCaps reads the Cap* lines of a /proc/PID/status.
func statusCaps(t *testing.T, status string) map[string]uint64 {
	t.Helper()
	caps := map[string]uint64{}
	for line := range strings.Lines(status) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(k, "Cap") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			t.Fatalf("parsing %q: %v", line, err)
		}
		caps[k] = n
	}
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		if _, ok := caps[k]; !ok {
			t.Fatalf("no %s in:\n%s", k, status)
		}
	}
	return caps
}

func TestApplyCapabilities(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	want, err := capabilityMask(DefaultCapabilities, LastCapability())
	if err != nil {
		t.Fatal(err)
	}
	t.Run("root", func(t *testing.T) {
		out, err := runCapabilitiesHelper(t, "root")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		caps := statusCaps(t, out)
		for k, w := range map[string]uint64{"CapEff": want, "CapPrm": want, "CapBnd": want, "CapInh": 0, "CapAmb": 0} {
			if caps[k] != w {
				t.Errorf("%s = %016x, want %016x", k, caps[k], w)
			}
		}
	})
	t.Run("user", func(t *testing.T) {
		out, err := runCapabilitiesHelper(t, "user")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		caps := statusCaps(t, out)
		for k, w := range map[string]uint64{"CapEff": 0, "CapPrm": 0, "CapBnd": want, "CapInh": 0, "CapAmb": 0} {
			if caps[k] != w {
				t.Errorf("%s = %016x, want %016x", k, caps[k], w)
			}
		}
	})
	t.Run("user without keepcaps", func(t *testing.T) {
		out, err := runCapabilitiesHelper(t, "user-without-keepcaps")
		if err == nil || !strings.Contains(out, "from the bounding set: operation not permitted (the thread lacks CAP_SETPCAP: set PR_SET_KEEPCAPS before switching to uid 1000)") {
			t.Fatalf("want the bounding-set error, got %v:\n%s", err, out)
		}
	})
}
