package initproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	stdruntime "runtime"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// The init's inherited descriptors (ExtraFiles of Run).
const (
	SpecFD  = 3
	ErrorFD = 4
)

// Role is argv[0] of a container's init that needs package runtime: tug
// as PID 1 (Config.Init), or chroot isolation. Package runtime registers
// it, with Hooks, for storage's reexec.Init in main. LeanRole is any other
// init, run by this package's own init function: before the packages tug
// needs for everything else are initialized (about 1 ms of a 4.3 ms start
// here).
// Either names itself Role in /proc/PID/comm.
const (
	Role     = "tug-init"
	LeanRole = "tug-init-lean"
)

func init() {
	if os.Args[0] == LeanRole {
		Main(Hooks{})
	}
}

// Report is what the init writes on its error pipe when setup or exec
// fails; nothing is written when exec succeeds.
type Report struct {
	Msg  string `json:"msg,omitempty"`
	Code int    `json:"code,omitempty"`
	// Note is not a failure: something the init did another way, for
	// --debug (several may come before the pipe closes).
	Note string `json:"note,omitempty"`
}

// Hooks are the parts of an init that package runtime adds (Role): nil
// in a LeanRole init, which fails if its Config needs them.
type Hooks struct {
	// Chroot enters the root file system with chroot isolation.
	Chroot func(root string) error
	// RunAsInit keeps tug as PID 1 (Config.Init) and starts the command
	// at path; it does not return.
	RunAsInit func(cfg *Config, path string, fail func(int, error))
}

// Main is the container's first process. It runs in the new namespaces
// as uid 0, sets the container up step by step, and execs the command;
// any failure goes to the parent on the error pipe. It does not return.
func Main(h Hooks) {
	// Capabilities, no_new_privs and seccomp are per thread: everything
	// from here to exec happens on this one.
	stdruntime.LockOSThread()
	// One P (GOMAXPROCS=1 in its environment, see Prestart) keeps its
	// threads few: they count against --pids-limit.
	errPipe := os.NewFile(ErrorFD, "init-error")
	// No descriptor this process inherited, from tug or from whoever
	// started tug, survives into the container (runc CVE-2024-21626).
	if err := unix.CloseRange(ErrorFD, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		for fd := ErrorFD; fd < 1024; fd++ {
			unix.CloseOnExec(fd)
		}
	}
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	// Started from a memfd, the process is named after its fd number.
	_ = os.WriteFile("/proc/self/comm", []byte(Role), 0)
	fail := func(code int, err error) {
		b, _ := json.Marshal(Report{Msg: err.Error(), Code: code})
		errPipe.Write(b)
		os.Exit(code)
	}
	// Notes go to tug's --debug, on the same pipe, before any failure.
	note := func(format string, args ...any) {
		b, _ := json.Marshal(Report{Note: fmt.Sprintf(format, args...)})
		errPipe.Write(b)
	}

	var spec Config
	specFile := os.NewFile(SpecFD, "init-spec")
	specs := json.NewDecoder(specFile)
	if err := specs.Decode(&spec); err != nil {
		fail(125, fmt.Errorf("reading the container spec: %w", err))
	}
	// A partial spec first (see Prestarted.Mounted): the base mounts go
	// on the root file system while the rest of the spec is worked out.
	partial := spec.Partial
	if !partial {
		specFile.Close()
	}
	// The spec comes once this process sits in the container's cgroup. On
	// cgroup v1 it was moved there after the clone, in a cgroup namespace
	// rooted at tug's cgroup: one made now shows the container's as "/"
	// (as runc does).
	// Chroot isolation keeps the host's cgroup namespace.
	chroot := spec.Isolation == IsolationChroot
	if (chroot && h.Chroot == nil) || (spec.Init && h.RunAsInit == nil) {
		fail(125, errors.New("internal error: the container's init was started without what its spec needs (tug as PID 1, or chroot isolation)"))
	}
	if !chroot {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			fail(125, &os.SyscallError{Syscall: "unshare(CLONE_NEWCGROUP)", Err: err})
		}
	}

	if spec.UnshareMountNamespace {
		// Cloned before its root file system was mounted (see
		// Prestart): this thread, which execs the command, leaves the
		// caller's mount namespace now.
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			fail(125, &os.SyscallError{Syscall: "unshare(CLONE_NEWNS)", Err: err})
		}
	}
	if spec.NoMountNamespace {
		// Chroot isolation where nothing can be mounted: tug prepared the
		// root file system; the terminal comes from tug's /dev/pts, as the
		// container has none.
		if spec.Tty {
			if err := setupConsole(spec.UID); err != nil {
				fail(125, err)
			}
		}
		if err := h.Chroot(spec.Rootfs); err != nil {
			fail(125, err)
		}
	} else {
		if err := mountBase(&spec, note); err != nil {
			fail(125, err)
		}
		if partial {
			first := spec
			spec = Config{}
			if err := specs.Decode(&spec); err != nil {
				fail(125, fmt.Errorf("reading the container spec: %w", err))
			}
			specFile.Close()
			if spec.Partial || spec.Rootfs != first.Rootfs || spec.Privileged != first.Privileged || spec.HostNetwork != first.HostNetwork || spec.ShmSize != first.ShmSize ||
				spec.Isolation != first.Isolation || spec.UnshareMountNamespace != first.UnshareMountNamespace || spec.NoMountNamespace {
				fail(125, errors.New("internal error: the container's spec differs from the partial one its mounts were made for"))
			}
		}
		if err := mountRest(&spec); err != nil {
			fail(125, err)
		}
		if spec.Tty {
			if err := setupConsole(spec.UID); err != nil {
				fail(125, err)
			}
		}
	}
	// Without a UTS namespace (chroot isolation, nothing mountable) the
	// host name is the host's.
	if !spec.NoMountNamespace {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			fail(125, &os.SyscallError{Syscall: "sethostname", Err: err})
		}
	}
	if chroot {
		// Without a PID namespace of its own, this process reaps what
		// its command leaves (with --init); and no chroot(2) for the
		// command, which could leave the new root with it.
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
		spec.Capabilities = slices.DeleteFunc(spec.Capabilities, func(c string) bool { return c == "CAP_SYS_CHROOT" })
	}
	if !spec.HostNetwork {
		if err := loopbackUp(); err != nil {
			fail(125, err)
		}
	}
	for _, rl := range withNofile(spec.Rlimits) {
		if err := unix.Setrlimit(rl.Type, &unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}); err != nil {
			fail(125, fmt.Errorf("setting rlimit %d to %d:%d: %w", rl.Type, rl.Soft, rl.Hard, err))
		}
	}
	// The working directory is resolved only now, inside the new root,
	// with no host descriptor open (runc CVE-2024-21626).
	cwd := spec.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		fail(125, fmt.Errorf("creating working directory %s: %w", cwd, err))
	}
	if spec.ReadOnlyRootfs && !spec.NoMountNamespace {
		if err := remountReadOnly("/"); err != nil {
			fail(125, err)
		}
	}
	// Find the command with the container's PATH before dropping privileges.
	path, err := LookPath(spec.Args[0], spec.Env)
	if err != nil {
		code := 127
		if errors.Is(err, os.ErrPermission) {
			code = 126
		}
		fail(code, err)
	}
	// Keep capabilities across the switch to a non-root user, so that
	// ApplyCapabilities can still drop from the bounding set.
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		fail(125, &os.SyscallError{Syscall: "prctl(PR_SET_KEEPCAPS)", Err: err})
	}
	// The working directory is entered before the switch to the
	// container's user, as runc does (the command keeps a directory only
	// root could enter), and where root may not, again after it.
	chdirErr := unix.Chdir(cwd)
	if chdirErr != nil && !errors.Is(chdirErr, os.ErrPermission) {
		fail(125, fmt.Errorf("entering working directory %s: %w", cwd, chdirErr))
	}
	// With tug as PID 1, the init stays root (with the container's
	// capabilities and filter) and starts every process, the command and
	// those of exec, with its user through ForkExec's credentials.
	initUID := spec.UID
	if spec.Init {
		initUID = 0
		// The command, as root, keeps these (see credential in package
		// runtime): root's groups from the image, as without --init.
		if err := setGroups(spec.AdditionalGIDs); err != nil {
			fail(125, err)
		}
	} else if err := setCredentials(&spec); err != nil {
		fail(125, err)
	}
	if chdirErr != nil {
		if err := unix.Chdir(cwd); err != nil {
			fail(125, fmt.Errorf("entering working directory %s: %w", cwd, err))
		}
	}
	// Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: load
	// it before the capabilities are dropped (as runc does). With it, load
	// it last, so its rules need not allow what setup does.
	if spec.Seccomp != nil && !spec.NoNewPrivileges {
		if err := LoadSeccomp(spec.Seccomp); err != nil {
			fail(125, err)
		}
	}
	if err := ApplyCapabilities(spec.Capabilities, initUID); err != nil {
		fail(125, err)
	}
	if spec.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			fail(125, &os.SyscallError{Syscall: "prctl(PR_SET_NO_NEW_PRIVS)", Err: err})
		}
		if spec.Seccomp != nil {
			if err := LoadSeccomp(spec.Seccomp); err != nil {
				fail(125, err)
			}
		}
	}
	if spec.Init {
		h.RunAsInit(&spec, path, fail)
		return
	}
	err = unix.Exec(path, spec.Args, spec.Env)
	code := 126
	if errors.Is(err, unix.ENOENT) {
		code = 127
	}
	fail(code, fmt.Errorf("exec %s: %w", spec.Args[0], err))
}

// defaultNofileSoft is the soft RLIMIT_NOFILE of a container's command
// unless --ulimit sets one: systemd's default, which Docker's containers
// get too (containerd 2), capped by the hard limit. tug's own soft limit
// is no guide: Go raises it to the hard one as a program starts.
const defaultNofileSoft = 1024

// withNofile is rls with the default RLIMIT_NOFILE added unless rls has
// one: the soft limit above, the hard limit tug's own.
func withNofile(rls []Rlimit) []Rlimit {
	for _, rl := range rls {
		if rl.Type == unix.RLIMIT_NOFILE {
			return rls
		}
	}
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		return rls
	}
	return append(slices.Clone(rls), Rlimit{Type: unix.RLIMIT_NOFILE, Soft: min(defaultNofileSoft, cur.Max), Hard: cur.Max})
}

// LookPath finds file in the container's PATH as the shell would.
func LookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		if err := executable(file); err != nil {
			return "", fmt.Errorf("%q: %w", file, err)
		}
		return file, nil
	}
	var denied error
	for _, p := range pathCandidates(file, env) {
		err := executable(p)
		if err == nil {
			return p, nil
		}
		if errors.Is(err, os.ErrPermission) && denied == nil {
			denied = fmt.Errorf("%q: %w", p, err)
		}
	}
	if denied != nil {
		return "", denied
	}
	return "", fmt.Errorf("%q: executable file not found in $PATH", file)
}

// pathCandidates lists where file is looked for, in order: file itself
// where it has a slash, else file in each directory of the container's
// PATH (Docker's default where its environment has none).
func pathCandidates(file string, env []string) []string {
	if strings.Contains(file, "/") {
		return []string{file}
	}
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	var out []string
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		out = append(out, filepath.Join(dir, file))
	}
	return out
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("is a directory: %w", os.ErrPermission)
	}
	if fi.Mode()&0o111 == 0 {
		return os.ErrPermission
	}
	return nil
}

// setCredentials switches to the container's user and groups.
func setCredentials(spec *Config) error {
	switchIDs, err := credentialSwitch(spec)
	if err != nil || !switchIDs {
		return err
	}
	if err := applyGroups(spec.AdditionalGIDs); err != nil {
		return err
	}
	if err := unix.Setresgid(int(spec.GID), int(spec.GID), int(spec.GID)); err != nil {
		return fmt.Errorf("switching to group %d: %w (is it mapped in the user namespace?)", spec.GID, err)
	}
	if err := unix.Setresuid(int(spec.UID), int(spec.UID), int(spec.UID)); err != nil {
		return fmt.Errorf("switching to user %d: %w (is it mapped in the user namespace?)", spec.UID, err)
	}
	return nil
}

// credentialSwitch says whether the command's groups and ids are switched
// to spec's: not where only one id is mapped (setgroups is denied), where
// root stays as it is and any other id is an error.
func credentialSwitch(spec *Config) (bool, error) {
	if !setgroupsDenied() {
		return true, nil
	}
	if spec.UID != 0 || spec.GID != 0 {
		return false, fmt.Errorf("cannot switch to user %d:%d: only your own id is mapped in tug's user namespace (add a subordinate id range to /etc/subuid and /etc/subgid)", spec.UID, spec.GID)
	}
	return false, nil
}

// setgroupsDenied says whether this user namespace denies setgroups: one
// mapped id, written by tug itself.
func setgroupsDenied() bool {
	b, err := os.ReadFile("/proc/self/setgroups")
	return err == nil && strings.TrimSpace(string(b)) == "deny"
}

// setGroups sets the supplementary groups, unless setgroups is denied
// (only one id is mapped).
func setGroups(groups []uint32) error {
	if setgroupsDenied() {
		return nil
	}
	return applyGroups(groups)
}

func applyGroups(groups []uint32) error {
	gids := make([]int, len(groups))
	for i, g := range groups {
		gids[i] = int(g)
	}
	if err := unix.Setgroups(gids); err != nil {
		return &os.SyscallError{Syscall: "setgroups", Err: err}
	}
	return nil
}

// loopbackUp brings up lo in the container's new network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return &os.SyscallError{Syscall: "socket", Err: err}
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("reading flags of lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	return nil
}

// InRoot resolves a container path under rootfs without letting symlinks
// in the image lead outside it.
func InRoot(rootfs, p string) (string, error) {
	t, err := securejoin.SecureJoin(rootfs, p)
	if err != nil {
		return "", fmt.Errorf("resolving %s in the container: %w", p, err)
	}
	return t, nil
}
