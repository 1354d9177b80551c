package runtime

import (
	"os"

	"github.com/tugcli/tug/runtime/initproc"
)

// Spec is everything the container's init needs, resolved by the caller:
// host paths, numeric ids, the final argv. runtime knows nothing of images.
type Spec struct {
	// The init's part: root file system, command, user, mounts,
	// confinement (see initproc.Config).
	initproc.Config
	// Network wires the container's own network namespace to the outside
	// (set up by the caller before the command starts); nil leaves it with
	// loopback only. Ignored with HostNetwork.
	Network *Network `json:",omitempty"`
	// Resources are the container's cgroup limits; nil means no cgroup
	// of its own.
	Resources *Resources `json:",omitempty"`
	// Debugf, if set, receives what the runtime had to leave out or do
	// another way (a /proc it could not mount, ...), for --debug.
	Debugf func(format string, args ...any) `json:"-"`
	// ExecListener is the listening socket for exec requests, made by the
	// caller where `tug exec` can reach it.
	ExecListener *os.File `json:"-"`
	// OnStart, if set, is called with the init's pid once it runs.
	OnStart func(pid int) `json:"-"`
}

// The init's types, used in Spec.
type (
	Config        = initproc.Config
	Mount         = initproc.Mount
	Rlimit        = initproc.Rlimit
	SeccompFilter = initproc.SeccompFilter
)

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
