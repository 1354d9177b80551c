package runtime

import (
	"os"

	"golang.org/x/sys/unix"
)

// Spec is everything the container's init needs, resolved by the caller:
// host paths, numeric ids, the final argv. runtime knows nothing of images.
type Spec struct {
	// Rootfs is the container's root filesystem, already mounted.
	Rootfs string
	Args   []string
	Env    []string
	// Cwd is the working directory inside the container, created if missing.
	Cwd string

	UID, GID       uint32
	AdditionalGIDs []uint32

	Hostname string
	// Mounts are made in order, after /proc, /dev and /sys.
	Mounts []Mount
	// ReadOnlyRootfs remounts / read-only after the mounts are made.
	ReadOnlyRootfs bool
	// MaskedPaths are hidden (an empty read-only tmpfs over a directory,
	// /dev/null over a file); ReadonlyPaths are bound read-only.
	MaskedPaths   []string
	ReadonlyPaths []string

	// Capabilities is the capability set (canonical CAP_ names).
	Capabilities []string
	// Seccomp is a compiled filter; nil means unconfined.
	Seccomp []unix.SockFilter
	// NoNewPrivileges sets PR_SET_NO_NEW_PRIVS.
	NoNewPrivileges bool
	Rlimits         []Rlimit

	// HostNetwork keeps the caller's network namespace.
	HostNetwork bool
	// Network wires the container's own network namespace to the outside
	// (set up by the caller before the command starts); nil leaves it with
	// loopback only. Ignored with HostNetwork.
	Network *Network `json:",omitempty"`
	// Resources are the container's cgroup limits; nil means no cgroup
	// of its own.
	Resources *Resources `json:",omitempty"`
	// Init makes tug the container's PID 1: it starts Args as its child,
	// reaps zombies and forwards signals.
	Init bool
	// Privileged keeps host devices and /sys writable as Docker does.
	Privileged bool
	// Isolation is how the command is confined: IsolationRootless (the
	// default: namespaces and pivot_root) or IsolationChroot (chroot(2)
	// into Rootfs, with the host's network, PID, IPC and cgroup
	// namespaces, and its own mount and UTS namespaces only where they can
	// be made; see ChooseIsolation).
	Isolation Isolation `json:",omitempty"`
	// Debugf, if set, receives what the runtime had to leave out or do
	// another way (a /proc it could not mount, ...), for --debug.
	Debugf func(format string, args ...any) `json:"-"`
	// NoMountNamespace is set by Run for chroot isolation where no mount
	// namespace can be made: the init then mounts nothing, and Run has
	// put what the command needs into Rootfs itself.
	NoMountNamespace bool `json:",omitempty"`
	// Tty gives the command a pseudo-terminal made inside the container.
	Tty bool
	// Exec keeps tug as PID 1 (as Init) and serves `tug exec` on the
	// socket given to Run in ExecListener.
	Exec bool
	// ExecListener is the listening socket for exec requests, made by the
	// caller where `tug exec` can reach it.
	ExecListener *os.File `json:"-"`
	// OnStart, if set, is called with the init's pid once it runs.
	OnStart func(pid int) `json:"-"`
}

// Mount is one mount in the container.
type Mount struct {
	// Type is "bind" or "tmpfs".
	Type        string
	Source      string // host path, for bind
	Destination string // path inside the container
	ReadOnly    bool
	// Data is mount data for tmpfs, e.g. "size=64m,mode=1777".
	Data string
}

// Rlimit is one resource limit (RLIMIT_NOFILE, ...).
type Rlimit struct {
	Type       int
	Soft, Hard uint64
}

// DefaultMaskedPaths and DefaultReadonlyPaths are the /proc and /sys paths
// runc and Docker hide or make read-only by default.
var (
	DefaultMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	DefaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)
