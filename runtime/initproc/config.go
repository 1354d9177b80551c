package initproc

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"

	"golang.org/x/sys/unix"
)

// Config is the part of a container's spec its init reads: what it
// mounts, who it runs the command as, and how it is confined. Package
// runtime's Spec embeds it, so a Spec in JSON is a Config with more fields,
// which the init ignores.
type Config struct {
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
	// ReadOnlyRootfs remounts / read-only after the mounts are made and
	// the working directory is created (as Docker creates it first).
	ReadOnlyRootfs bool
	// ShmSize is /dev/shm's size in bytes (--shm-size); 0 is Docker's
	// default, 64 MiB.
	ShmSize int64 `json:",omitempty"`
	// MaskedPaths are hidden (an empty read-only tmpfs over a directory,
	// /dev/null over a file); ReadonlyPaths are bound read-only.
	MaskedPaths   []string
	ReadonlyPaths []string

	// Capabilities is the capability set (canonical CAP_ names).
	Capabilities []string
	// Seccomp is a compiled filter; nil means unconfined.
	Seccomp SeccompFilter
	// NoNewPrivileges sets PR_SET_NO_NEW_PRIVS.
	NoNewPrivileges bool
	Rlimits         []Rlimit

	// HostNetwork keeps the caller's network namespace.
	HostNetwork bool
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
	// NoMountNamespace is set by Run for chroot isolation where no mount
	// namespace can be made: the init then mounts nothing, and Run has
	// put what the command needs into Rootfs itself.
	NoMountNamespace bool `json:",omitempty"`
	// UnshareMountNamespace is set by Prestart for an init cloned in the
	// caller's mount namespace (before the root file system was mounted
	// there): the init makes its own before it mounts anything.
	UnshareMountNamespace bool `json:",omitempty"`
	// Partial marks the first of the two specs an init gets after
	// Prestarted.Mounted: Rootfs, Isolation, Privileged, HostNetwork and
	// UnshareMountNamespace only, for the mounts of /proc, /dev and /sys.
	Partial bool `json:",omitempty"`
	// Tty gives the command a pseudo-terminal made inside the container.
	Tty bool
	// Exec keeps tug as PID 1 (as Init) and serves `tug exec` on the
	// socket given to Run in ExecListener.
	Exec bool
	// SpareThreads is set by Run for tug as PID 1 (Init) under a pids
	// limit: the init starts the threads it may need before the command
	// runs, so that the limit cannot keep it from serving the container.
	SpareThreads bool `json:",omitempty"`
}

// Isolation is how tug confines the processes of a container or of a
// build's RUN step (--isolation, as Buildah's).
type Isolation string

const (
	// IsolationAuto is the strongest of the others that works here.
	IsolationAuto Isolation = "auto"
	// IsolationRootless is tug's usual confinement: PID, mount, UTS, IPC,
	// cgroup and network namespaces and pivot_root, inside a user
	// namespace unless tug runs as root that may make namespaces.
	IsolationRootless Isolation = "rootless"
	// IsolationChroot is for root that can make no namespace, as a CI job
	// in a container started with Docker's defaults: chroot(2) into the
	// root filesystem, with the host's network, PID, IPC and cgroup
	// namespaces, and mount and UTS namespaces of its own only where they
	// can be made (Buildah's chroot isolation, one step weaker).
	IsolationChroot Isolation = "chroot"
)

// Mount is one mount in the container.
type Mount struct {
	// Type is "bind" or "tmpfs".
	Type        string
	Source      string // host path, for bind
	Destination string // path inside the container
	ReadOnly    bool
	// Data is mount data for tmpfs, e.g. "size=64m,mode=1777".
	Data string
	// Flags are a tmpfs's MS_* mount flags (MS_RDONLY comes from
	// ReadOnly).
	Flags uintptr `json:",omitempty"`
}

// Rlimit is one resource limit (RLIMIT_NOFILE, ...).
type Rlimit struct {
	Type       int
	Soft, Hard uint64
}

// SeccompFilter is a compiled seccomp program. In JSON it is the program's
// bytes in base64: the init decodes its spec before anything else, and the
// same filter as an array of objects costs it about a millisecond. An array
// (what an older tug saved for a created container) is read too.
type SeccompFilter []unix.SockFilter

const sockFilterSize = 8 // u16 code, u8 jt, u8 jf, u32 k

// MarshalJSON encodes the program as base64 of its instructions.
func (f SeccompFilter) MarshalJSON() ([]byte, error) {
	if f == nil {
		return []byte("null"), nil
	}
	raw := make([]byte, 0, len(f)*sockFilterSize)
	for _, ins := range f {
		raw = binary.LittleEndian.AppendUint16(raw, ins.Code)
		raw = append(raw, ins.Jt, ins.Jf)
		raw = binary.LittleEndian.AppendUint32(raw, ins.K)
	}
	return json.Marshal(base64.StdEncoding.EncodeToString(raw))
}

// UnmarshalJSON reads what MarshalJSON writes, or an array of instructions.
func (f *SeccompFilter) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '[' {
		var ins []unix.SockFilter
		if err := json.Unmarshal(b, &ins); err != nil {
			return err
		}
		*f = ins
		return nil
	}
	var s *string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s == nil {
		*f = nil
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(*s)
	if err != nil {
		return err
	}
	if len(raw)%sockFilterSize != 0 {
		return errors.New("seccomp filter: length is not a whole number of instructions")
	}
	out := make(SeccompFilter, 0, len(raw)/sockFilterSize)
	for i := 0; i < len(raw); i += sockFilterSize {
		out = append(out, unix.SockFilter{
			Code: binary.LittleEndian.Uint16(raw[i:]),
			Jt:   raw[i+2],
			Jf:   raw[i+3],
			K:    binary.LittleEndian.Uint32(raw[i+4:]),
		})
	}
	*f = out
	return nil
}
