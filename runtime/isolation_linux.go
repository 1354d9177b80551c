package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/tugcli/tug/runtime/initproc"
	"github.com/tugcli/tug/runtime/userns"
)

// Isolation is how tug confines the processes of a container or of a
// build's RUN step (see initproc.Isolation).
type Isolation = initproc.Isolation

const (
	IsolationAuto     = initproc.IsolationAuto
	IsolationRootless = initproc.IsolationRootless
	IsolationChroot   = initproc.IsolationChroot
)

// ParseIsolation reads --isolation: auto (or empty, or Docker's
// "default"), rootless or chroot.
func ParseIsolation(s string) (Isolation, error) {
	switch Isolation(s) {
	case "", "default", IsolationAuto:
		return IsolationAuto, nil
	case IsolationRootless, IsolationChroot:
		return Isolation(s), nil
	}
	return "", fmt.Errorf("unknown isolation %q: use auto (the default), rootless or chroot", s)
}

// Entry is what a tug process does, before it opens the store, to get
// where its isolation needs it to be.
type Entry int

const (
	// EntryNone: it is there already.
	EntryNone Entry = iota
	// EntryMountNamespace: root re-executes tug in a mount namespace of
	// its own (commands that mount only; see RunInMountNamespace).
	EntryMountNamespace
	// EntryUserNamespace: an unprivileged user re-executes tug in a user
	// namespace (PlanUserNamespace).
	EntryUserNamespace
	// EntryNestedUserNamespace: uid 0 that may not mount (root in a
	// container without CAP_SYS_ADMIN) re-executes tug in a user namespace
	// that maps every id it has (PlanNestedUserNamespace).
	EntryNestedUserNamespace
)

// Choice is the isolation settled for a tug process: what its containers
// get, why (for --debug), and how the process gets there.
type Choice struct {
	Isolation Isolation
	Why       string
	Entry     Entry
}

// UserNamespace reports whether the choice re-executes tug in a user
// namespace of its own.
func (c Choice) UserNamespace() bool {
	return c.Entry == EntryUserNamespace || c.Entry == EntryNestedUserNamespace
}

// PlanUserNamespace is the user namespace the choice enters.
func (c Choice) PlanUserNamespace() (*UserNamespace, error) {
	var ns *UserNamespace
	var err error
	switch c.Entry {
	case EntryUserNamespace:
		ns, err = PlanUserNamespace()
	case EntryNestedUserNamespace:
		ns, err = PlanNestedUserNamespace()
	default:
		return nil, errors.New("this isolation enters no user namespace")
	}
	if err != nil {
		return nil, err
	}
	ns.Choice = c
	return ns, nil
}

// environ passes the choice to the tug re-executed to enter it, which
// must not choose again (it would find itself able to make namespaces).
func (c Choice) environ() []string {
	if c.Isolation == "" {
		return nil
	}
	return []string{envIsolation + "=" + string(c.Isolation), envIsolationWhy + "=" + c.Why}
}

const (
	envIsolation    = "_TUG_ISOLATION"
	envIsolationWhy = "_TUG_ISOLATION_WHY"
)

// containerFlags are the namespaces every container gets with rootless
// isolation (the network's comes on top unless it shares the host's).
const containerFlags = unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC

// chrootFlags are the namespaces chroot isolation gives a command where
// they can be made, as Buildah's chroot does: mounts and host name of its
// own; the host's network, PIDs, IPC and cgroups.
const chrootFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS

// isolationHost is what ChooseIsolation looks at; tests fake it.
type isolationHost struct {
	euid int
	user string
	// inherited is the choice of the tug that re-executed this one.
	inherited *Choice
	hasCap    func(c int) bool
	tryClone  func(flags uintptr) error
	// blocker names what refuses a namespace that failed with err.
	blocker func(err error) string
}

// ChooseIsolation settles req for this tug process. In a tug re-executed
// to enter its namespaces it returns what the first one chose.
//
//   - An unprivileged user gets rootless (tug's user namespace); chroot
//     needs root and is refused in one error that says so.
//   - Root with CAP_SYS_ADMIN gets rootless through a mount namespace of
//     its own, as before --isolation existed.
//   - Root without CAP_SYS_ADMIN (in a container) gets rootless through a
//     user namespace of its own where one can be made (a container with
//     seccomp unconfined), else, with auto or chroot, chroot.
//   - Where neither works, the error names what is missing.
func ChooseIsolation(req Isolation) (Choice, error) {
	euid := effectiveUID()
	name := strconv.Itoa(euid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	return chooseIsolation(req, isolationHost{
		euid:      euid,
		user:      name,
		inherited: inheritedIsolation(),
		hasCap:    hasEffectiveCap,
		tryClone:  tryClone,
		blocker:   namespaceBlocker,
	})
}

func chooseIsolation(req Isolation, h isolationHost) (Choice, error) {
	if h.inherited != nil {
		return *h.inherited, nil
	}
	if req == "" {
		req = IsolationAuto
	}
	if h.euid != 0 {
		if req == IsolationChroot {
			return Choice{}, fmt.Errorf("chroot isolation needs root: chroot(2) needs CAP_SYS_CHROOT, which uid %d (%s) does not have; leave --isolation out (or use rootless) to run in tug's user namespace", h.euid, h.user)
		}
		return Choice{Isolation: IsolationRootless, Why: "tug's user namespace, for user " + h.user, Entry: EntryUserNamespace}, nil
	}
	sysAdmin := h.hasCap(unix.CAP_SYS_ADMIN)
	nested := func() (Choice, error) {
		if err := h.tryClone(unix.CLONE_NEWUSER | containerFlags); err != nil {
			return Choice{}, fmt.Errorf("%w: %s", err, h.blocker(err))
		}
		return Choice{Isolation: IsolationRootless, Why: "root without CAP_SYS_ADMIN (as in a container): a user namespace of tug's own", Entry: EntryNestedUserNamespace}, nil
	}
	switch req {
	case IsolationRootless:
		if sysAdmin {
			return Choice{Isolation: IsolationRootless, Why: "chosen with --isolation=rootless; root: namespaces of tug's own", Entry: EntryMountNamespace}, nil
		}
		c, err := nested()
		if err != nil {
			return Choice{}, fmt.Errorf("rootless isolation needs namespaces, and this process is root without CAP_SYS_ADMIN (as in a container) that cannot make a user namespace either (%v); use --isolation=chroot", err)
		}
		c.Why = "chosen with --isolation=rootless; " + c.Why
		return c, nil
	case IsolationChroot:
		return chrootChoice(h, "chosen with --isolation=chroot")
	}
	// auto: the strongest that works.
	var nsErr error
	if sysAdmin {
		if nsErr = h.tryClone(containerFlags); nsErr == nil {
			return Choice{Isolation: IsolationRootless, Why: "auto: root, and namespaces work here", Entry: EntryMountNamespace}, nil
		}
		nsErr = fmt.Errorf("%w: %s", nsErr, h.blocker(nsErr))
	}
	c, err := nested()
	if err == nil {
		c.Why = "auto: " + c.Why
		return c, nil
	}
	if nsErr == nil {
		nsErr = err
	}
	c, err = chrootChoice(h, fmt.Sprintf("auto: no namespace can be made here (%v)", nsErr))
	if err != nil {
		return Choice{}, fmt.Errorf("no isolation works here: namespaces cannot be made (%v), and %w", nsErr, err)
	}
	return c, nil
}

// chrootChoice is chroot isolation for root, with a mount namespace for
// tug where one can be made.
func chrootChoice(h isolationHost, why string) (Choice, error) {
	if !h.hasCap(unix.CAP_SYS_CHROOT) {
		return Choice{}, errors.New("chroot isolation needs CAP_SYS_CHROOT, which this process lacks (start its container with --cap-add SYS_CHROOT, or with --security-opt seccomp=unconfined for a user namespace)")
	}
	c := Choice{Isolation: IsolationChroot, Why: why}
	if h.tryClone(unix.CLONE_NEWNS) == nil {
		c.Entry = EntryMountNamespace
	} else {
		c.Why += "; no mount namespace either: nothing is mounted for the command"
	}
	return c, nil
}

// inheritedIsolation is the choice passed down by the tug that started
// this one to enter its namespaces, nil in the tug the user started.
func inheritedIsolation() *Choice {
	if iso := os.Getenv(envIsolation); iso != "" {
		return &Choice{Isolation: Isolation(iso), Why: os.Getenv(envIsolationWhy)}
	}
	// A namespace child of a tug that predates the variables.
	if InUserNamespace() || (os.Geteuid() == 0 && os.Getenv(envPrivateMounts) != "") {
		return &Choice{Isolation: IsolationRootless, Why: "inside tug's namespaces"}
	}
	return nil
}

// hasEffectiveCap reports whether the calling thread has capability c in
// its effective set.
func hasEffectiveCap(c int) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	eff := uint64(data[0].Effective) | uint64(data[1].Effective)<<32
	return eff&(1<<c) != 0
}

// namespaceBlocker names what most likely refused root a namespace.
func namespaceBlocker(err error) string {
	status, _ := os.ReadFile("/proc/self/status")
	if sc, _ := userns.ParseStatus(string(status)); sc == 2 && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS)) {
		return "a seccomp filter on this process (Seccomp: 2 in /proc/self/status) forbids new namespaces, as Docker's default profile does without CAP_SYS_ADMIN"
	}
	return CheckHost().UserNSBlocker()
}
