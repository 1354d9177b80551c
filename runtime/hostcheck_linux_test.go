package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/tugcli/tug/runtime/userns"
)

// fakeHost writes files (path relative to the fake root → content) into a
// temp dir and returns a hostEnv over it whose probes answer from the
// given maps instead of the kernel.
type fakeHost struct {
	files     map[string]string
	onPath    []string // programs lookPath finds, as /usr/bin/NAME
	userNSErr error
	readOnly  []string // paths (relative to the root) access refuses
	devErr    map[string]error
	fileCaps  []string
}

func (f fakeHost) env(t *testing.T, user string, uid int) hostEnv {
	t.Helper()
	root := t.TempDir()
	for p, body := range f.files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return hostEnv{
		root: root, uid: uid, gid: uid, user: user,
		lookPath: func(name string) (string, error) {
			for _, p := range f.onPath {
				if p == name {
					return "/usr/bin/" + name, nil
				}
			}
			return "", errors.New("not found")
		},
		tryUserNS: func() error { return f.userNSErr },
		access: func(p string) error {
			for _, ro := range f.readOnly {
				if p == filepath.Join(root, ro) {
					return syscall.EACCES
				}
			}
			return nil
		},
		openRW: func(p string) error {
			if err, ok := f.devErr[strings.TrimPrefix(p, root)]; ok {
				return err
			}
			return nil
		},
		hasFileCaps: func(p string) bool {
			for _, c := range f.fileCaps {
				if p == filepath.Join(root, c) {
					return true
				}
			}
			return false
		},
	}
}

const (
	initialUIDMap = "         0          0 4294967295\n"
	hybridMounts  = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	hybridSelf = "8:pids:/user.slice\n4:memory:/user.slice\n1:cpu:/user.slice\n0::/user.slice\n"
	v2Mounts   = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
	v2Self     = "0::/user.slice/user-1000.slice/user@1000.service/app.slice\n"
	v2Dir      = "sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice"
)

func TestCheckHost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		host     fakeHost
		user     string
		uid      int
		rootless bool
		check    func(t *testing.T, h *HostCheck)
		want     map[string]string // finding name → substring of its line
	}{
		{
			name: "friendly v2 host with a range",
			host: fakeHost{
				files: map[string]string{
					"proc/sys/kernel/osrelease":         "6.8.0\n",
					"proc/sys/user/max_user_namespaces": "63000\n",
					"proc/self/uid_map":                 initialUIDMap,
					"proc/self/status":                  "Name:\ttug\nNoNewPrivs:\t0\nSeccomp:\t0\nSeccomp_filters:\t0\n",
					"proc/self/mountinfo":               v2Mounts,
					"proc/self/cgroup":                  v2Self,
					v2Dir + "/cgroup.controllers":       "cpu memory pids\n",
					"etc/subuid":                        "other:100000:65536\nalice:200000:65536\n",
					"etc/subgid":                        "1000:200000:65536\n",
					"usr/bin/newuidmap":                 "",
					"usr/bin/newgidmap":                 "",
				},
				onPath:   []string{"newuidmap", "newgidmap", "pasta"},
				fileCaps: []string{"usr/bin/newuidmap", "usr/bin/newgidmap"},
			},
			user: "alice", uid: 1000, rootless: true,
			check: func(t *testing.T, h *HostCheck) {
				if h.Kernel != "6.8.0" || h.UserNS.Nested || h.UserNS.MaxUserNamespaces != 63000 || h.UserNS.UnprivilegedClone != -1 {
					t.Errorf("kernel %q userns %+v", h.Kernel, h.UserNS)
				}
				if !reflect.DeepEqual(h.SubUIDs, []IDRange{{Start: 200000, Count: 65536}}) || !reflect.DeepEqual(h.SubGIDs, []IDRange{{Start: 200000, Count: 65536}}) {
					t.Errorf("sub ids %v %v, want the range by name and by uid", h.SubUIDs, h.SubGIDs)
				}
				if h.Cgroups.Version != "v2" || !h.Cgroups.Delegated || strings.Join(h.Cgroups.Controllers, " ") != "cpu memory pids" {
					t.Errorf("cgroups %+v", h.Cgroups)
				}
				if p := h.SubIDProblem(); p != "" {
					t.Errorf("SubIDProblem = %q", p)
				}
			},
			want: map[string]string{
				"user namespaces": "user namespaces: allowed (initial namespace)",
				"id mapping":      "subordinate range 200000:65536 (/usr/bin/newuidmap, file capabilities)",
				"cgroups":         "cgroups: v2, rootless, writable: cpu memory pids",
				"network":         "/dev/net/tun usable, pasta on PATH",
				"seccomp":         "seccomp: none on tug itself, no_new_privs not set",
			},
		},
		{
			name: "hybrid v1, no range, tun closed",
			host: fakeHost{
				files: map[string]string{
					"proc/self/uid_map":   initialUIDMap,
					"proc/self/mountinfo": hybridMounts,
					"proc/self/cgroup":    hybridSelf,
					"etc/subuid":          "bob:100000:65536\n",
				},
				onPath:   []string{"newuidmap", "newgidmap"},
				fileCaps: []string{"usr/bin/newuidmap", "usr/bin/newgidmap"},
				readOnly: []string{"sys/fs/cgroup/memory/user.slice", "sys/fs/cgroup/cpu/user.slice", "sys/fs/cgroup/pids/user.slice"},
				devErr:   map[string]error{"/dev/net/tun": syscall.EACCES, "/dev/fuse": syscall.EACCES},
			},
			user: "alice", uid: 1000, rootless: true,
			check: func(t *testing.T, h *HostCheck) {
				if h.Cgroups.Version != "v1 hybrid" || h.Cgroups.Delegated || h.Cgroups.Path != "/user.slice" {
					t.Errorf("cgroups %+v", h.Cgroups)
				}
				if h.FuseProblem() == "" {
					t.Error("fuse reported usable without fuse-overlayfs and /dev/fuse")
				}
			},
			want: map[string]string{
				"id mapping": "id mapping: single id (no range for alice in /etc/subuid or /etc/subgid): every file of a pulled image is owned by you, and chown to another id in a RUN step fails",
				"cgroups":    "cgroups: v1 hybrid, rootless, nothing delegated (/user.slice is not writable): resource limit flags are refused",
				"network":    "network: /dev/net/tun: permission denied: the default network",
			},
		},
		{
			name: "CI container: nested, seccomp filter, no_new_privs",
			host: fakeHost{
				files: map[string]string{
					"proc/self/uid_map":   "0 1000 1\n1 100000 65536\n",
					"proc/self/status":    "NoNewPrivs:\t1\nSeccomp:\t2\n",
					"proc/self/mountinfo": v2Mounts,
					"proc/self/cgroup":    "0::/\n",
					"etc/subuid":          "alice:100000:65536\n",
					"etc/subgid":          "alice:100000:65536\n",
				},
				onPath:    []string{"newuidmap", "newgidmap"},
				fileCaps:  []string{"usr/bin/newuidmap", "usr/bin/newgidmap"},
				userNSErr: syscall.EPERM,
				readOnly:  []string{"sys/fs/cgroup"},
			},
			user: "alice", uid: 1000, rootless: true,
			check: func(t *testing.T, h *HostCheck) {
				if !h.UserNS.Nested || h.UserNS.UIDMap != "0 1000 1, 1 100000 65536" {
					t.Errorf("userns %+v", h.UserNS)
				}
				if !strings.Contains(h.UserNSBlocker(), "seccomp") {
					t.Errorf("blocker %q does not name seccomp", h.UserNSBlocker())
				}
				if !strings.Contains(h.SubIDProblem(), "no_new_privs") {
					t.Errorf("SubIDProblem %q does not name no_new_privs", h.SubIDProblem())
				}
			},
			want: map[string]string{
				"user namespaces": "refused (operation not permitted; a seccomp filter",
				"seccomp":         "seccomp: filtered (tug runs under a seccomp filter), no_new_privs set: setuid newuidmap cannot work",
			},
		},
		{
			name: "sysctls off",
			host: fakeHost{
				files: map[string]string{
					"proc/sys/user/max_user_namespaces":         "15000\n",
					"proc/sys/kernel/unprivileged_userns_clone": "0\n",
					"proc/self/uid_map":                         initialUIDMap,
				},
				userNSErr: syscall.EPERM,
			},
			user: "alice", uid: 1000, rootless: true,
			check: func(t *testing.T, h *HostCheck) {
				if b := h.UserNSBlocker(); !strings.Contains(b, "kernel.unprivileged_userns_clone is 0") {
					t.Errorf("blocker %q", b)
				}
				if h.Cgroups.Version != "none" {
					t.Errorf("cgroups without mountinfo: %+v", h.Cgroups)
				}
			},
			want: map[string]string{
				"user namespaces": "rootless tug cannot run here",
				"id mapping":      "newuidmap not found",
			},
		},
		{
			name: "root on hybrid",
			host: fakeHost{
				files: map[string]string{
					"proc/self/uid_map":   initialUIDMap,
					"proc/self/mountinfo": hybridMounts,
					"proc/self/cgroup":    hybridSelf,
				},
			},
			user: "root", uid: 0,
			want: map[string]string{
				"user namespaces": "allowed, not needed as root",
				"id mapping":      "none needed (root)",
				"cgroups":         "cgroups: v1 hybrid, root, writable: memory cpu pids",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := checkHost(tc.host.env(t, tc.user, tc.uid))
			if tc.check != nil {
				tc.check(t, h)
			}
			got := map[string]string{}
			for _, f := range h.Findings(tc.rootless) {
				got[f.Name] = f.String()
			}
			for name, want := range tc.want {
				if !strings.Contains(got[name], want) {
					t.Errorf("finding %q = %q, want it to contain %q", name, got[name], want)
				}
			}
		})
	}
}

// On this machine, whatever it is: CheckHost runs, and its attempt agrees
// with whether tug could make a namespace.
func TestCheckHostHere(t *testing.T) {
	t.Parallel()
	h := CheckHost()
	if h.UID != os.Getuid() || h.Kernel == "" {
		t.Fatalf("CheckHost: uid %d kernel %q", h.UID, h.Kernel)
	}
	for _, f := range h.Findings(os.Getuid() != 0) {
		t.Log(f)
	}
}

func TestUserNamespaceHint(t *testing.T) {
	t.Parallel()
	status, _ := os.ReadFile("/proc/self/status")
	seccomp, _ := userns.ParseStatus(string(status))
	if h := userNamespaceHint(syscall.CLONE_NEWNS, syscall.EPERM); (h != "") != (seccomp == 2) {
		t.Fatalf("hint for a mount namespace under seccomp mode %d: %q", seccomp, h)
	}
	if h := userNamespaceHint(syscall.CLONE_NEWUSER, syscall.ENOENT); h != "" {
		t.Fatalf("hint for ENOENT: %q", h)
	}
	if h := userNamespaceHint(syscall.CLONE_NEWUSER|syscall.CLONE_NEWNS, syscall.EPERM); !strings.Contains(h, "needs a user namespace") {
		t.Fatalf("hint for EPERM: %q", h)
	}
}

// What CheckHost costs: it runs for `tug info` and when a namespace
// cannot be made, so it has no cache.
func BenchmarkCheckHost(b *testing.B) {
	for b.Loop() {
		CheckHost()
	}
}
