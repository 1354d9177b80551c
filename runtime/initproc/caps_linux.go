package initproc

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultCapabilities is Docker's default capability set for a container
// (moby daemon/pkg/oci/caps/defaults.go).
var DefaultCapabilities = []string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_FSETID",
	"CAP_FOWNER",
	"CAP_MKNOD",
	"CAP_NET_RAW",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETFCAP",
	"CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT",
	"CAP_KILL",
	"CAP_AUDIT_WRITE",
}

// capabilityNames maps each capability number (linux/capability.h) to its
// canonical name.
var capabilityNames = [...]string{
	unix.CAP_CHOWN:              "CAP_CHOWN",
	unix.CAP_DAC_OVERRIDE:       "CAP_DAC_OVERRIDE",
	unix.CAP_DAC_READ_SEARCH:    "CAP_DAC_READ_SEARCH",
	unix.CAP_FOWNER:             "CAP_FOWNER",
	unix.CAP_FSETID:             "CAP_FSETID",
	unix.CAP_KILL:               "CAP_KILL",
	unix.CAP_SETGID:             "CAP_SETGID",
	unix.CAP_SETUID:             "CAP_SETUID",
	unix.CAP_SETPCAP:            "CAP_SETPCAP",
	unix.CAP_LINUX_IMMUTABLE:    "CAP_LINUX_IMMUTABLE",
	unix.CAP_NET_BIND_SERVICE:   "CAP_NET_BIND_SERVICE",
	unix.CAP_NET_BROADCAST:      "CAP_NET_BROADCAST",
	unix.CAP_NET_ADMIN:          "CAP_NET_ADMIN",
	unix.CAP_NET_RAW:            "CAP_NET_RAW",
	unix.CAP_IPC_LOCK:           "CAP_IPC_LOCK",
	unix.CAP_IPC_OWNER:          "CAP_IPC_OWNER",
	unix.CAP_SYS_MODULE:         "CAP_SYS_MODULE",
	unix.CAP_SYS_RAWIO:          "CAP_SYS_RAWIO",
	unix.CAP_SYS_CHROOT:         "CAP_SYS_CHROOT",
	unix.CAP_SYS_PTRACE:         "CAP_SYS_PTRACE",
	unix.CAP_SYS_PACCT:          "CAP_SYS_PACCT",
	unix.CAP_SYS_ADMIN:          "CAP_SYS_ADMIN",
	unix.CAP_SYS_BOOT:           "CAP_SYS_BOOT",
	unix.CAP_SYS_NICE:           "CAP_SYS_NICE",
	unix.CAP_SYS_RESOURCE:       "CAP_SYS_RESOURCE",
	unix.CAP_SYS_TIME:           "CAP_SYS_TIME",
	unix.CAP_SYS_TTY_CONFIG:     "CAP_SYS_TTY_CONFIG",
	unix.CAP_MKNOD:              "CAP_MKNOD",
	unix.CAP_LEASE:              "CAP_LEASE",
	unix.CAP_AUDIT_WRITE:        "CAP_AUDIT_WRITE",
	unix.CAP_AUDIT_CONTROL:      "CAP_AUDIT_CONTROL",
	unix.CAP_SETFCAP:            "CAP_SETFCAP",
	unix.CAP_MAC_OVERRIDE:       "CAP_MAC_OVERRIDE",
	unix.CAP_MAC_ADMIN:          "CAP_MAC_ADMIN",
	unix.CAP_SYSLOG:             "CAP_SYSLOG",
	unix.CAP_WAKE_ALARM:         "CAP_WAKE_ALARM",
	unix.CAP_BLOCK_SUSPEND:      "CAP_BLOCK_SUSPEND",
	unix.CAP_AUDIT_READ:         "CAP_AUDIT_READ",
	unix.CAP_PERFMON:            "CAP_PERFMON",
	unix.CAP_BPF:                "CAP_BPF",
	unix.CAP_CHECKPOINT_RESTORE: "CAP_CHECKPOINT_RESTORE",
}

// capabilityNumber returns the number of a canonical capability name.
func capabilityNumber(name string) (int, bool) {
	i := slices.Index(capabilityNames[:], name)
	return i, i >= 0
}

// capabilityName names capability number c, also past the table's end.
func capabilityName(c int) string {
	if c >= 0 && c < len(capabilityNames) {
		return capabilityNames[c]
	}
	return "CAP_" + strconv.Itoa(c)
}

// LastCapability is the highest capability number the running kernel knows,
// from /proc/sys/kernel/cap_last_cap; x/sys's CAP_LAST_CAP when it can't be
// read (no /proc).
func LastCapability() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= 0 {
			return n
		}
	}
	return unix.CAP_LAST_CAP
}

// AllCapabilities lists, in number order, every capability the kernel and
// capabilityNames know that tug's bounding set holds: what Docker gives
// --privileged and --cap-add ALL ("all capabilities available in the
// current environment"). Root in a container started without some (a CI
// job's) has fewer; a new user namespace starts with them all.
func AllCapabilities() []string {
	last := min(LastCapability(), len(capabilityNames)-1)
	caps := make([]string, 0, last+1)
	for c := 0; c <= last; c++ {
		if held, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); err == nil && held == 0 {
			continue
		}
		caps = append(caps, capabilityNames[c])
	}
	return caps
}

// normalizeCapabilities turns --cap-add/--cap-drop values into canonical
// names as Docker does: case-insensitive, CAP_ prefix optional, "ALL" kept.
func normalizeCapabilities(names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	for _, n := range names {
		n = strings.ToUpper(strings.TrimSpace(n))
		if n != "ALL" {
			if !strings.HasPrefix(n, "CAP_") {
				n = "CAP_" + n
			}
			if _, ok := capabilityNumber(n); !ok {
				return nil, fmt.Errorf("unknown capability: %q", n)
			}
		}
		out = append(out, n)
	}
	return out, nil
}

// ResolveCapabilities computes a container's capability set from
// DefaultCapabilities and --cap-add/--cap-drop, with Docker's rules
// (moby daemon/pkg/oci/caps TweakCapabilities): privileged gets every
// capability the kernel knows; "ALL" in add means every capability minus the
// dropped ones; "ALL" in drop means only the added ones; otherwise the
// defaults minus drop plus add. Names are case-insensitive and may omit the
// CAP_ prefix. The result is canonical names ("CAP_CHOWN"), sorted, without
// duplicates.
func ResolveCapabilities(add, drop []string, privileged bool) ([]string, error) {
	if privileged {
		caps := AllCapabilities()
		slices.Sort(caps)
		return caps, nil
	}
	add, err := normalizeCapabilities(add)
	if err != nil {
		return nil, err
	}
	drop, err = normalizeCapabilities(drop)
	if err != nil {
		return nil, err
	}
	var caps []string
	switch {
	case slices.Contains(add, "ALL"):
		for _, c := range AllCapabilities() {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
	case slices.Contains(drop, "ALL"):
		caps = add
	default:
		for _, c := range DefaultCapabilities {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
		caps = append(caps, add...)
	}
	caps = append([]string{}, caps...)
	slices.Sort(caps)
	return slices.Compact(caps), nil
}

// capabilityMask is the bitmask of caps; names the kernel does not know
// (numbers past cap_last_cap) are left out, as runc does.
func capabilityMask(caps []string, last int) (uint64, error) {
	var mask uint64
	for _, name := range caps {
		c, ok := capabilityNumber(strings.ToUpper(name))
		if !ok {
			return 0, fmt.Errorf("unknown capability: %q", name)
		}
		if c <= last {
			mask |= 1 << c
		}
	}
	return mask, nil
}

// ApplyCapabilities gives the calling thread the capabilities caps, as runc
// does for a Docker container. The caller must have locked the goroutine to
// its OS thread (capabilities are per thread) and should exec soon after.
//
// Call it after switching to the container's user: every capability not in
// caps is dropped from the bounding set, the ambient and inheritable sets are
// emptied (Docker leaves inheritable empty since CVE-2022-24769), and the
// permitted and effective sets become caps for uid 0 and empty for any other
// uid, as Docker's are. Dropping from the bounding set needs CAP_SETPCAP, so
// for a non-zero uid the caller sets PR_SET_KEEPCAPS before setresuid (the
// switch away from uid 0 otherwise clears the permitted set);
// ApplyCapabilities turns PR_SET_KEEPCAPS off again.
func ApplyCapabilities(caps []string, uid uint32) error {
	last := LastCapability()
	keep, err := capabilityMask(caps, last)
	if err != nil {
		return err
	}
	// Raise the effective set to the permitted one: a setresuid with
	// PR_SET_KEEPCAPS keeps permitted but clears effective, and dropping
	// from the bounding set needs CAP_SETPCAP effective.
	held, err := capabilitiesHeld()
	if err != nil {
		return err
	}
	if err := setCapabilities(held); err != nil {
		return fmt.Errorf("raising the effective capabilities: %w", err)
	}
	// The bounding set limits what any later execve can grant, file
	// capabilities and setuid-root binaries included. 64 covers
	// capabilities newer than the table; the kernel says EINVAL past its own.
	for c := range 64 {
		if keep&(1<<c) != 0 {
			continue
		}
		has, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if errors.Is(err, unix.EINVAL) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading %s from the bounding set: %w", capabilityName(c), err)
		}
		if has == 0 {
			continue // already gone: dropping it again would need CAP_SETPCAP
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if errors.Is(err, unix.EPERM) && held&(1<<unix.CAP_SETPCAP) == 0 {
				return fmt.Errorf("dropping %s from the bounding set: %w (the thread lacks CAP_SETPCAP: set PR_SET_KEEPCAPS before switching to uid %d)", capabilityName(c), err, uid)
			}
			return fmt.Errorf("dropping %s from the bounding set: %w", capabilityName(c), err)
		}
	}
	// Ambient capabilities survive execve for non-root users: none.
	// EINVAL: a kernel older than 4.3 has no ambient set.
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clearing the ambient capability set: %w", err)
	}
	set := keep
	if uid != 0 {
		set = 0
	}
	if err := setCapabilities(set); err != nil {
		if errors.Is(err, unix.EPERM) && set&^held != 0 {
			return fmt.Errorf("setting the permitted and effective capabilities: %w (the thread does not hold %s)", err, strings.Join(capabilityList(set&^held), ", "))
		}
		return fmt.Errorf("setting the permitted and effective capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing PR_SET_KEEPCAPS: %w", err)
	}
	return nil
}

// capabilitiesHeld is the calling thread's permitted set.
func capabilitiesHeld() (uint64, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, fmt.Errorf("reading the thread's capabilities: %w", err)
	}
	return uint64(data[0].Permitted) | uint64(data[1].Permitted)<<32, nil
}

// setCapabilities makes mask the calling thread's permitted and effective
// sets and empties its inheritable set (capset with the v3 header: two
// 32-bit words per set).
func setCapabilities(mask uint64) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(mask), Permitted: uint32(mask)},
		{Effective: uint32(mask >> 32), Permitted: uint32(mask >> 32)},
	}
	return unix.Capset(&hdr, &data[0])
}

// capabilityList names the capabilities in mask, in number order.
func capabilityList(mask uint64) []string {
	var names []string
	for c := range 64 {
		if mask&(1<<c) != 0 {
			names = append(names, capabilityName(c))
		}
	}
	return names
}
