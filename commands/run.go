package commands

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/profiles/seccomp"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/tugcli/tug/image"
	"github.com/tugcli/tug/remote"
	rt "github.com/tugcli/tug/runtime"
)

// RunCmd is `tug run`.
type RunCmd struct {
	Detach      bool     `short:"d" help:"Run the container in the background and print its ID."`
	Interactive bool     `short:"i" help:"Keep STDIN open."`
	TTY         bool     `short:"t" help:"Allocate a pseudo-TTY."`
	Rm          bool     `help:"Remove the container when it exits."`
	Restart     string   `default:"no" help:"Restart policy of a detached container: no, on-failure[:max-retries], always, unless-stopped."`
	StopSignal  string   `name:"stop-signal" help:"Signal to stop the container (default: the image's STOPSIGNAL, else SIGTERM)."`
	StopTimeout *int     `name:"stop-timeout" help:"Seconds stop waits before it kills the container (default 10)."`
	Name        string   `help:"Assign a name to the container."`
	Env         []string `short:"e" sep:"none" help:"Set environment variables (KEY=VALUE, or KEY to take it from here)."`
	EnvFile     []string `name:"env-file" sep:"none" help:"Read environment variables from a file." placeholder:"FILE"`
	Entrypoint  *string  `help:"Overwrite the default ENTRYPOINT of the image."`
	Workdir     string   `short:"w" help:"Working directory inside the container."`
	User        string   `short:"u" help:"Username or UID (format: <name|uid>[:<group|gid>])."`
	Hostname    string   `short:"h" help:"Container host name."`
	Network     string   `name:"network" aliases:"net" help:"Connect the container to a network: private (user-mode networking inside tug, the default unless the configuration file says otherwise), host, none (loopback only), pasta or slirp4netns."`
	Publish     []string `short:"p" sep:"none" help:"Publish a container's port to the host: [IP:][HOST-PORT:]CONTAINER-PORT[/tcp|udp]."`
	PublishAll  bool     `short:"P" name:"publish-all" help:"Publish all exposed ports to random ports."`
	DNS         []string `name:"dns" sep:"none" help:"Set custom DNS servers."`
	DNSSearch   []string `name:"dns-search" sep:"none" help:"Set custom DNS search domains."`
	AddHost     []string `name:"add-host" sep:"none" help:"Add a custom host-to-IP mapping (host:ip); the ip host-gateway is the host."`
	CapAdd      []string `name:"cap-add" help:"Add Linux capabilities."`
	CapDrop     []string `name:"cap-drop" help:"Drop Linux capabilities."`
	Privileged  bool     `help:"Give extended privileges: every capability, no seccomp filter, nothing masked."`
	SecurityOpt []string `name:"security-opt" sep:"none" help:"Security options: seccomp=unconfined|FILE, no-new-privileges."`
	Isolation   string   `help:"How the container is confined: auto (the strongest that works here, the default), rootless (namespaces) or chroot (root where no namespace can be made, as in a container: the host's network, processes and IPC)." placeholder:"auto|rootless|chroot"`
	ReadOnly    bool     `name:"read-only" help:"Mount the container's root filesystem as read only."`
	Ulimit      []string `sep:"none" help:"Ulimit options, e.g. nofile=1024:2048."`
	Volume      []string `short:"v" sep:"none" help:"Bind mount a volume: HOST-DIR:CONTAINER-DIR[:ro|rw] or NAME:CONTAINER-DIR."`
	Tmpfs       []string `sep:"none" help:"Mount a tmpfs directory: PATH[:OPTIONS]."`
	Mount       []string `sep:"none" help:"Attach a filesystem mount: type=bind|volume|tmpfs,source=...,target=...[,readonly]."`
	Init        bool     `help:"Run an init inside the container that forwards signals and reaps processes."`
	Pull        string   `default:"missing" enum:"always,missing,never" help:"Pull image before running: always, missing, never."`
	Quiet       bool     `short:"q" help:"Suppress the pull output."`
	ShmSize     string   `name:"shm-size" help:"Size of /dev/shm, e.g. 256m (default 64m)." placeholder:"BYTES"`
	CIDFile     string   `name:"cidfile" help:"Write the container ID to the file." placeholder:"FILE"`
	GroupAdd    []string `name:"group-add" help:"Add additional groups to join." placeholder:"GROUP"`
	// Docker's -l is the global --log-level here; the long form only.
	Label     []string `name:"label" sep:"none" help:"Set metadata on the container: KEY=VALUE." placeholder:"KEY=VALUE"`
	LabelFile []string `name:"label-file" sep:"none" help:"Read labels from a file of KEY=VALUE lines." placeholder:"FILE"`
	TLSVerify bool     `name:"tls-verify" default:"true" negatable:"" help:"Require HTTPS for non-loopback registries when pulling."`
	Image     string   `arg:"" name:"IMAGE" passthrough:"partial" help:"Image to run."`
	Command   []string `arg:"" optional:"" name:"COMMAND" passthrough:"all" help:"Command and arguments."`

	ResourceFlags // --memory, --cpus, ... (limits.go)

	create bool // tug create: prepare, do not start
	// anonymous are the volumes made for this container's -v DEST.
	anonymous []string
	// shmSize is --shm-size in bytes.
	shmSize int64
}

// Run creates the container, runs it in the foreground, and exits with its
// status: 125 for a tug error, 126/127 when the command cannot be run.
func (c *RunCmd) Run(ctx context.Context, env *Env) error {
	err := c.run(ctx, env)
	var ee *ExitError
	var xe *rt.ExecError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		return err
	case errors.As(err, &xe):
		return &ExitError{Code: xe.Code, Err: err}
	}
	return &ExitError{Code: 125, Err: err}
}

func (c *RunCmd) run(ctx context.Context, env *Env) error {
	if _, err := parseRestart(c.Restart); err != nil {
		return err
	}
	if c.StopSignal != "" {
		if _, err := parseSignal(c.StopSignal); err != nil {
			return fmt.Errorf("invalid --stop-signal: %w", err)
		}
	}
	if c.Rm && c.Restart != "no" {
		return errors.New("conflicting options: --restart and --rm: a container removed when it exits cannot be restarted")
	}
	if c.Name != "" {
		if err := image.ValidateName(c.Name); err != nil {
			return err
		}
	}
	if c.ShmSize != "" {
		n, err := units.RAMInBytes(c.ShmSize)
		if err != nil || n < 0 {
			return fmt.Errorf("invalid --shm-size %q: want a size, e.g. 256m or 1g (0: the default, 64m)", c.ShmSize)
		}
		c.shmSize = n
	}
	// The kernel takes 64 bytes (HOST_NAME_MAX); checked here, a longer
	// one fails before anything is made, and says why.
	if len(c.Hostname) > 64 {
		return fmt.Errorf("invalid hostname %q: it has %d characters, the most a host name can have is 64", c.Hostname, len(c.Hostname))
	}
	if _, err := rt.ParseIsolation(c.Isolation); err != nil {
		return err
	}
	env.Isolation = c.Isolation
	err := env.EnterForMounts(ctx)
	if err != nil {
		return err
	}
	// Taken now, in the tug that makes the container, as Docker takes it
	// before creating: an existing file means another container may own
	// it. It goes again unless the container is made.
	var cidFile *os.File
	if c.CIDFile != "" {
		if cidFile, err = os.OpenFile(c.CIDFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); errors.Is(err, os.ErrExist) {
			return fmt.Errorf("container ID file found, make sure the other container isn't running or delete %s", c.CIDFile)
		} else if err != nil {
			return fmt.Errorf("opening the container ID file: %w", err)
		}
		defer func() {
			if cidFile != nil {
				cidFile.Close()
				os.Remove(c.CIDFile)
			}
		}()
	}
	// Inside tug's namespaces now, where the container's cgroup is made.
	if err := c.ResourceFlags.resolve(); err != nil {
		return err
	}
	if c.Network, err = env.networkMode(c.Network); err != nil {
		return err
	}
	id := image.NewContainerID()
	// A container run here and now gets its init started already: the
	// init's start overlaps making and mounting the container's layer.
	// With --init or chroot isolation it needs the mounted layer first
	// (see rt.Prestart).
	var init *rt.Prestarted
	if !c.create && !c.Detach && !c.Init && env.ChosenIsolation() != rt.IsolationChroot {
		if init, err = rt.Prestart(c.earlySpec(id, env), c.stdio()); err != nil {
			return err
		}
		defer init.Abandon()
	}
	store, err := env.MountingStore(ctx)
	if err != nil {
		return err
	}
	img, err := c.image(ctx, env, store)
	if err != nil {
		return err
	}
	args, err := c.argv(img)
	if err != nil {
		return err
	}
	labels, err := c.labels(img)
	if err != nil {
		return err
	}
	name := c.Name
	if name == "" {
		if name, err = store.UniqueName(); err != nil {
			return err
		}
	}
	if c.Rm && !c.create && !c.Detach {
		// Nothing this run writes from here on needs to survive a crash.
		image.SyncNothingMore()
	}
	ctr, err := store.CreateContainer(img, id, name, c.Rm)
	if err != nil {
		return err
	}
	if cidFile != nil {
		_, err := cidFile.WriteString(ctr.ID)
		if cerr := cidFile.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing the container ID file %s: %w", c.CIDFile, err)
		}
		cidFile = nil
	}
	state := &image.ContainerState{Labels: labels, ID: ctr.ID, Name: name, Image: c.Image, ImageID: img.ID, Command: args, Created: time.Now().UTC(), Status: image.StateCreated, AutoRemove: c.Rm, Restart: c.Restart, OpenStdin: c.Interactive, StopSignal: img.Config.Config.StopSignal, StopTimeout: c.StopTimeout}
	if c.StopSignal != "" {
		state.StopSignal = c.StopSignal
	}
	record := func() {
		var err error
		switch {
		case !c.Rm || c.create || c.Detach:
			err = store.SaveState(state)
		case state.Status == image.StateRunning:
			// Removed when it exits: a record that goes with it, so
			// that ps, stop, kill and wait find it meanwhile.
			err = store.SaveRunState(state)
		}
		if err != nil {
			fmt.Fprintf(env.Stderr, "WARNING: %v\n", err)
		}
	}
	record()
	code, runErr := func() (int, error) {
		rootfs, err := store.MountContainer(ctr.ID)
		if err != nil {
			return 0, err
		}
		if init != nil {
			// Its /proc, /dev and /sys go on while the spec is made.
			if err := init.Mounted(rootfs, c.Privileged); err != nil {
				return 0, err
			}
		}
		runDir, err := store.ContainerRunDir(ctr.ID)
		if err != nil {
			return 0, err
		}
		spec, err := c.spec(store, img, ctr, rootfs, runDir, args)
		if err != nil {
			return 0, err
		}
		spec.Isolation, spec.Debugf = env.ChosenIsolation(), logrus.Debugf
		state.Hostname, state.Env = spec.Hostname, spec.Env
		state.Network, state.Ports = c.networkMode(), portBindings(spec.Network)
		for _, m := range spec.Mounts {
			if name, ok := store.VolumeOf(m.Source); ok {
				state.Volumes = append(state.Volumes, name)
			}
		}
		state.AnonymousVolumes = c.anonymous
		if c.create || c.Detach {
			record()
		}
		if c.create {
			return 0, saveSpec(store, state.ID, spec)
		}
		if c.Detach {
			return 0, c.detach(env, store, state, spec)
		}
		spec.OnStart = func(pid int) {
			state.Status, state.Pid, state.TugPid, state.StartedAt = image.StateRunning, pid, os.Getpid(), time.Now().UTC()
			record()
		}
		// Signals go to the container; they must not cancel the run.
		if init != nil {
			return init.Run(context.WithoutCancel(ctx), spec)
		}
		return rt.Run(context.WithoutCancel(ctx), spec, c.stdio())
	}()
	// An init that was told the root file system but never got its spec
	// (the spec could not be made: a bad -u or -v) still shares this
	// mount namespace until it makes its own: end it before the layer is
	// unmounted, or it makes /proc and /dev in the bare mount point, which
	// storage then cannot remove (the container stayed, even `rm -f`
	// failed). After Run it has ended already.
	init.Abandon()
	if (c.Detach || c.create) && runErr == nil {
		// The monitor owns the container now.
		fmt.Fprintln(env.Stdout, ctr.ID)
		return nil
	}
	if c.Rm {
		if runErr == nil {
			// For wait and start -a, which may look once it has gone.
			if err := store.RecordExit(ctr.ID, code); err != nil {
				fmt.Fprintf(env.Stderr, "WARNING: %v\n", err)
			}
		}
		if err := store.DeleteContainer(ctr.ID); err != nil {
			if runErr == nil {
				runErr = err
			}
		} else {
			removeVolumes(env, store, c.anonymous)
		}
	} else {
		state.Status, state.ExitCode, state.FinishedAt, state.Pid = image.StateExited, code, time.Now().UTC(), 0
		if runErr != nil {
			state.ExitCode = 125
		}
		record()
	}
	if runErr != nil {
		return runErr
	}
	if code != 0 {
		return &ExitError{Code: code}
	}
	return nil
}

// stdio is what the container's standard streams are connected to.
func (c *RunCmd) stdio() rt.Stdio {
	stdio := rt.Stdio{Stdout: os.Stdout, Stderr: os.Stderr}
	if c.Interactive {
		stdio.Stdin = os.Stdin
	}
	return stdio
}

// earlySpec holds what the container's init is cloned with (see
// rt.Prestart); spec fills in the rest, the same for these fields.
func (c *RunCmd) earlySpec(id string, env *Env) *rt.Spec {
	return &rt.Spec{
		Config: rt.Config{
			Init:        c.Init,
			Tty:         c.TTY,
			HostNetwork: c.networkMode() == "host",
			Isolation:   env.ChosenIsolation(),
			ShmSize:     c.shmSize,
		},
		Resources: c.resources(id),
	}
}

// image finds the image, pulling it as --pull says.
func (c *RunCmd) image(ctx context.Context, env *Env, store *image.Store) (*image.Image, error) {
	if c.Pull != "always" {
		img, err := store.Lookup(c.Image)
		if err == nil {
			return img, nil
		}
		if !errors.Is(err, image.ErrNotFound) || c.Pull == "never" {
			return nil, err
		}
		// A reference that cannot be pulled is said to be one, as
		// Docker says it, without a word about looking for it.
		if _, err := remote.ParseReference(c.Image); err != nil {
			return nil, err
		}
		fmt.Fprintf(env.Stderr, "Unable to find image '%s' locally\n", c.Image)
	}
	// -q silences the pull's progress, not the line above (as Docker's).
	pull := &PullCmd{Quiet: c.Quiet, TLSVerify: c.TLSVerify, Ref: c.Image}
	res, err := pull.pull(ctx, env, store, env.Stderr)
	if err != nil {
		return nil, err
	}
	return res.Image, nil
}

// argv applies Docker's rules: --entrypoint replaces the image's and drops
// its CMD; a COMMAND replaces CMD.
func (c *RunCmd) argv(img *image.Image) ([]string, error) {
	entry, cmd := img.Config.Config.Entrypoint, img.Config.Config.Cmd
	if c.Entrypoint != nil {
		entry, cmd = nil, nil
		if *c.Entrypoint != "" {
			entry = []string{*c.Entrypoint}
		}
	}
	if len(c.Command) > 0 {
		cmd = c.Command
	}
	args := append(append([]string{}, entry...), cmd...)
	if len(args) == 0 {
		return nil, fmt.Errorf("no command specified: the image %s has no CMD or ENTRYPOINT; give one after the image name", c.Image)
	}
	return args, nil
}

func (c *RunCmd) spec(store *image.Store, img *image.Image, ctr *image.Container, rootfs, runDir string, args []string) (*rt.Spec, error) {
	userSpec := c.User
	if userSpec == "" {
		userSpec = img.Config.Config.User
	}
	user, err := rt.ResolveUser(rootfs, userSpec)
	if err != nil {
		return nil, err
	}
	if len(c.GroupAdd) > 0 && rt.SingleIDMapping() {
		return nil, errors.New("--group-add needs more ids than your own in tug's user namespace: add a subordinate id range to /etc/subuid and /etc/subgid")
	}
	if err := rt.AddGroups(rootfs, user, c.GroupAdd); err != nil {
		return nil, err
	}
	hostname := c.Hostname
	if hostname == "" {
		hostname = ctr.ID[:12]
	}
	envv, err := c.environment(img, hostname, user.Home)
	if err != nil {
		return nil, err
	}
	cwd := c.Workdir
	if cwd == "" {
		cwd = img.Config.Config.WorkingDir
	}
	if cwd != "" && !filepath.IsAbs(cwd) {
		return nil, fmt.Errorf("the working directory %q is invalid: it needs to be an absolute path", cwd)
	}
	spec := &rt.Spec{
		Config: rt.Config{
			Rootfs:         rootfs,
			Args:           args,
			Env:            envv,
			Cwd:            cwd,
			UID:            user.UID,
			GID:            user.GID,
			AdditionalGIDs: user.AdditionalGIDs,
			Hostname:       hostname,
			ReadOnlyRootfs: c.ReadOnly,
			ShmSize:        c.shmSize,
			MaskedPaths:    rt.DefaultMaskedPaths,
			ReadonlyPaths:  rt.DefaultReadonlyPaths,
			Init:           c.Init,
			Privileged:     c.Privileged,
			Tty:            c.TTY,
		},
		Resources: c.resources(ctr.ID),
	}
	if spec.Capabilities, err = rt.ResolveCapabilities(c.CapAdd, c.CapDrop, c.Privileged); err != nil {
		return nil, err
	}
	if err := c.security(spec); err != nil {
		return nil, err
	}
	for _, u := range c.Ulimit {
		rl, err := parseUlimit(u)
		if err != nil {
			return nil, err
		}
		spec.Rlimits = append(spec.Rlimits, rl)
	}
	etc, err := c.network(spec, img)
	if err != nil {
		return nil, err
	}
	files, err := rt.EtcFiles(runDir, etc)
	if err != nil {
		return nil, err
	}
	spec.Mounts = append(spec.Mounts, files...)
	mounts, copyUp, err := c.mounts(store)
	if err != nil {
		return nil, err
	}
	// The image's VOLUMEs that no mount of the command line covers get
	// anonymous volumes, as Docker gives them, mounted first.
	var vols []rt.Mount
	for _, v := range slices.Sorted(maps.Keys(img.Config.Config.Volumes)) {
		v = filepath.Clean(v)
		if !filepath.IsAbs(v) || slices.ContainsFunc(mounts, func(m rt.Mount) bool { return filepath.Clean(m.Destination) == v }) {
			continue
		}
		m, _, anonymous, err := parseVolume(store, v)
		if err != nil {
			return nil, fmt.Errorf("the image's VOLUME %s: %w", v, err)
		}
		c.anonymous = append(c.anonymous, anonymous)
		vols = append(vols, m)
	}
	mounts, copyUp = slices.Concat(vols, mounts), slices.Concat(vols, copyUp)
	// A named volume that is empty gets what the image has at its
	// destination, as Docker and Podman fill it (nocopy keeps it empty).
	for _, m := range copyUp {
		if err := rt.CopyUp(rootfs, m.Destination, m.Source); err != nil {
			return nil, fmt.Errorf("volume at %s: %w", m.Destination, err)
		}
	}
	// A mount goes on after those above its destination, whatever the
	// order given (Docker sorts them so): -v a:/x/y -v b:/x would
	// otherwise hide the first under the second. Stable, so that of two
	// at one destination the later still wins. tug's /etc files stay
	// first: their mount points are made as they mount, which a
	// read-only volume over /etc (-v /etc:ro) would refuse.
	slices.SortStableFunc(mounts, func(a, b rt.Mount) int {
		return cmp.Compare(mountDepth(a.Destination), mountDepth(b.Destination))
	})
	spec.Mounts = append(spec.Mounts, mounts...)
	return spec, nil
}

// mountDepth is how many directories deep a mount's destination is.
func mountDepth(dest string) int {
	return strings.Count(filepath.Clean("/"+dest), "/")
}

// security applies --privileged and --security-opt to the seccomp filter
// and no_new_privs.
func (c *RunCmd) security(spec *rt.Spec) error {
	spec.NoNewPrivileges = !c.Privileged
	profile := "default"
	if c.Privileged {
		profile = "unconfined"
	}
	for _, opt := range c.SecurityOpt {
		k, v, _ := strings.Cut(opt, "=")
		if k != "seccomp" && strings.Contains(opt, ":") && !strings.Contains(opt, "=") {
			k, v, _ = strings.Cut(opt, ":")
		}
		switch k {
		case "seccomp":
			profile = v
		case "no-new-privileges":
			spec.NoNewPrivileges = v == "" || v == "true"
		case "label", "apparmor":
			// No SELinux or AppArmor confinement in tug: accepted and ignored.
		default:
			return fmt.Errorf("invalid --security-opt %q: tug knows seccomp=unconfined|FILE and no-new-privileges", opt)
		}
	}
	var p *seccomp.Seccomp
	var err error
	switch profile {
	case "unconfined":
		return nil
	case "default", "":
		p = rt.DefaultSeccompProfile()
	default:
		if p, err = rt.LoadSeccompProfile(profile); err != nil {
			return err
		}
	}
	spec.Seccomp, err = rt.CompileSeccomp(p, spec.Capabilities, goruntime.GOARCH)
	return err
}

// environment is the image's Env with Docker's additions and -e/--env-file
// overrides.
func (c *RunCmd) environment(img *image.Image, hostname, home string) ([]string, error) {
	var order []string
	vals := map[string]string{}
	set := func(kv string) {
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	set("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	set("HOSTNAME=" + hostname)
	if c.TTY {
		set("TERM=xterm")
	}
	for _, kv := range img.Config.Config.Env {
		set(kv)
	}
	var extra []string
	for _, f := range c.EnvFile {
		lines, err := readEnvFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading env file: %w", err)
		}
		extra = append(extra, lines...)
	}
	extra = append(extra, c.Env...)
	for _, kv := range extra {
		if strings.HasPrefix(kv, "=") {
			return nil, fmt.Errorf("invalid environment variable: %s", kv)
		}
		if !strings.Contains(kv, "=") {
			v, ok := os.LookupEnv(kv)
			if !ok {
				continue
			}
			kv += "=" + v
		}
		set(kv)
	}
	if _, ok := vals["HOME"]; !ok {
		set("HOME=" + home)
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vals[k])
	}
	return out, nil
}

// labels are the image's labels with --label-file's, then --label's, over
// them, as Docker merges them; a KEY alone has an empty value.
func (c *RunCmd) labels(img *image.Image) (map[string]string, error) {
	out := maps.Clone(img.Config.Config.Labels)
	kvs := []string{}
	for _, f := range c.LabelFile {
		lines, err := readEnvFile(f)
		if err != nil {
			return nil, fmt.Errorf("--label-file: %w", err)
		}
		kvs = append(kvs, lines...)
	}
	for _, kv := range append(kvs, c.Label...) {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid label %q: the key is empty", kv)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out, nil
}

func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	return out, sc.Err()
}

// mounts turns -v, --tmpfs and --mount into runtime mounts.
func (c *RunCmd) mounts(store *image.Store) (out, copyUp []rt.Mount, err error) {
	// add keeps a -v or --mount: an anonymous volume to go with the
	// container, a named one to be filled from the image.
	add := func(m rt.Mount, nocopy bool, anonymous string) {
		if anonymous != "" {
			c.anonymous = append(c.anonymous, anonymous)
		}
		out = append(out, m)
		if _, named := store.VolumeOf(m.Source); named && !nocopy {
			copyUp = append(copyUp, m)
		}
	}
	for _, v := range c.Volume {
		m, nocopy, anonymous, err := parseVolume(store, v)
		if err != nil {
			return nil, nil, err
		}
		add(m, nocopy, anonymous)
	}
	for _, t := range c.Tmpfs {
		dest, opts, _ := strings.Cut(t, ":")
		if !filepath.IsAbs(dest) {
			return nil, nil, fmt.Errorf("invalid --tmpfs %q: the path must be absolute", t)
		}
		m, err := tmpfsMount(dest, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid --tmpfs %q: %w", t, err)
		}
		out = append(out, m)
	}
	for _, spec := range c.Mount {
		m, nocopy, anonymous, err := parseMount(store, spec)
		if err != nil {
			return nil, nil, err
		}
		add(m, nocopy, anonymous)
	}
	return out, copyUp, nil
}

// removeVolumes removes a removed container's anonymous volumes, saying
// on stderr what could not be.
func removeVolumes(env *Env, store *image.Store, names []string) {
	for _, n := range names {
		if err := store.RemoveVolume(n); err != nil {
			fmt.Fprintf(env.Stderr, "WARNING: %v\n", err)
		}
	}
}

// parseVolume reads -v SOURCE:DEST[:OPTS]; a source that is a path is a
// bind mount (created as a directory when missing, as Docker does), any
// other source names a volume; without a source, -v DEST[:OPTS] makes an
// anonymous volume, named in anonymous. nocopy: the option that keeps a
// new volume from being filled from the image.
func parseVolume(store *image.Store, v string) (m rt.Mount, nocopy bool, anonymous string, err error) {
	parts := strings.Split(v, ":")
	var src, dest, opts string
	switch {
	case len(parts) == 1 || len(parts) == 2 && filepath.IsAbs(parts[0]) && !filepath.IsAbs(parts[1]):
		// DEST[:OPTS]: an anonymous volume, made now with a random name
		// as Docker names one.
		dest = parts[0]
		if len(parts) == 2 {
			opts = parts[1]
		}
	case len(parts) == 2:
		src, dest = parts[0], parts[1]
	case len(parts) == 3:
		src, dest, opts = parts[0], parts[1], parts[2]
	default:
		return rt.Mount{}, false, "", fmt.Errorf("invalid volume specification %q", v)
	}
	if !filepath.IsAbs(dest) {
		return rt.Mount{}, false, "", fmt.Errorf("invalid volume %q: the destination must be an absolute path", v)
	}
	m = rt.Mount{Type: "bind", Destination: dest}
	for _, o := range strings.Split(opts, ",") {
		switch o {
		// Propagation modes tug does not change (its mounts are private
		// to the container), SELinux relabelling it does not do, and the
		// consistency modes Docker also ignores on Linux (compose files
		// written for Docker Desktop carry :cached).
		case "", "rw", "z", "Z", "rprivate", "private", "rslave", "slave", "cached", "delegated", "consistent":
		case "ro":
			m.ReadOnly = true
		case "nocopy":
			nocopy = true
		default:
			return rt.Mount{}, false, "", fmt.Errorf("invalid volume option %q in %q", o, v)
		}
	}
	if src == "" {
		if m.Source, anonymous, err = anonymousVolume(store); err != nil {
			return rt.Mount{}, false, "", fmt.Errorf("invalid volume %q: %w", v, err)
		}
		return m, nocopy, anonymous, nil
	}
	if m.Source, err = volumeSource(store, src, true); err != nil {
		return rt.Mount{}, false, "", fmt.Errorf("invalid volume %q: %w", v, err)
	}
	return m, nocopy, "", nil
}

// anonymousVolume makes a volume with a random 64-hex name, as Docker
// names an anonymous one, and returns where it is and its name.
func anonymousVolume(store *image.Store) (dir, name string, err error) {
	vol, err := store.CreateVolume(image.NewContainerID())
	if err != nil {
		return "", "", err
	}
	return vol.Mountpoint, vol.Name, nil
}

// volumeSource resolves a bind source (absolute or ./relative path) or a
// volume name to a host path. create makes a missing path a directory.
func volumeSource(store *image.Store, src string, create bool) (string, error) {
	if strings.HasPrefix(src, "/") || strings.HasPrefix(src, ".") {
		abs, err := filepath.Abs(src)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(abs); os.IsNotExist(err) && create {
			if err := os.MkdirAll(abs, 0o755); err != nil {
				return "", fmt.Errorf("creating bind source %s: %w", abs, err)
			}
		} else if err != nil {
			return "", fmt.Errorf("bind source %s: %w", abs, err)
		}
		return abs, nil
	}
	if strings.ContainsAny(src, "/") || src == "" {
		return "", fmt.Errorf("%q is neither an absolute path nor a volume name", src)
	}
	v, err := store.CreateVolume(src)
	if err != nil {
		return "", err
	}
	return v.Mountpoint, nil
}

// parseMount reads --mount type=...,source=...,target=...[,readonly]; a
// volume without a source is an anonymous one, named in anonymous.
func parseMount(store *image.Store, s string) (m rt.Mount, nocopy bool, anonymous string, err error) {
	m = rt.Mount{Type: "volume"}
	var src string
	var tmpfsOpts []string
	for _, kv := range strings.Split(s, ",") {
		k, v, hasV := strings.Cut(kv, "=")
		switch k {
		case "type":
			m.Type = v
		case "source", "src":
			src = v
		case "target", "destination", "dst":
			m.Destination = v
		case "readonly", "ro":
			m.ReadOnly = !hasV || v == "true" || v == "1"
		case "tmpfs-size":
			tmpfsOpts = append(tmpfsOpts, "size="+v)
		case "tmpfs-mode":
			tmpfsOpts = append(tmpfsOpts, "mode="+v)
		case "volume-nocopy":
			nocopy = !hasV || v == "true" || v == "1"
		case "bind-propagation", "consistency":
		default:
			return rt.Mount{}, false, "", fmt.Errorf("invalid --mount %q: unknown field %q", s, k)
		}
	}
	if !filepath.IsAbs(m.Destination) {
		return rt.Mount{}, false, "", fmt.Errorf("invalid --mount %q: target must be an absolute path", s)
	}
	switch m.Type {
	case "bind":
		abs, err := filepath.Abs(src)
		if err != nil || src == "" {
			return rt.Mount{}, false, "", fmt.Errorf("invalid --mount %q: a bind mount needs a source", s)
		}
		// Unlike -v, --mount does not create a missing source (as Docker).
		if _, err := os.Stat(abs); err != nil {
			return rt.Mount{}, false, "", fmt.Errorf("invalid --mount %q: bind source path does not exist: %s", s, abs)
		}
		m.Source = abs
	case "volume":
		if src == "" {
			m.Type = "bind"
			if m.Source, anonymous, err = anonymousVolume(store); err != nil {
				return rt.Mount{}, false, "", fmt.Errorf("invalid --mount %q: %w", s, err)
			}
			return m, nocopy, anonymous, nil
		}
		dir, err := volumeSource(store, src, true)
		if err != nil {
			return rt.Mount{}, false, "", fmt.Errorf("invalid --mount %q: %w", s, err)
		}
		m.Type, m.Source = "bind", dir
	case "tmpfs":
		ro := m.ReadOnly
		if m, err = tmpfsMount(m.Destination, strings.Join(tmpfsOpts, ",")); err != nil {
			return rt.Mount{}, false, "", fmt.Errorf("invalid --mount %q: %w", s, err)
		}
		m.ReadOnly = m.ReadOnly || ro
	default:
		return rt.Mount{}, false, "", fmt.Errorf("invalid --mount %q: type must be bind, volume or tmpfs", s)
	}
	return m, nocopy, "", nil
}

// tmpfsFlags are the --tmpfs options that are mount flags, not tmpfs's
// own: set (true) or cleared.
var tmpfsFlags = map[string]struct {
	flag uintptr
	set  bool
}{
	"nosuid": {unix.MS_NOSUID, true}, "suid": {unix.MS_NOSUID, false},
	"nodev": {unix.MS_NODEV, true}, "dev": {unix.MS_NODEV, false},
	"noexec": {unix.MS_NOEXEC, true}, "exec": {unix.MS_NOEXEC, false},
	"sync": {unix.MS_SYNCHRONOUS, true}, "async": {unix.MS_SYNCHRONOUS, false},
	"dirsync": {unix.MS_DIRSYNC, true},
	"noatime": {unix.MS_NOATIME, true}, "atime": {unix.MS_NOATIME, false},
	"nodiratime": {unix.MS_NODIRATIME, true}, "diratime": {unix.MS_NODIRATIME, false},
	"relatime": {unix.MS_RELATIME, true}, "norelatime": {unix.MS_RELATIME, false},
	"strictatime": {unix.MS_STRICTATIME, true}, "nostrictatime": {unix.MS_STRICTATIME, false},
}

// tmpfsMount is a tmpfs at dest with Docker's defaults (rw, nosuid, nodev,
// noexec, mode 1777) changed by opts, --tmpfs's comma-separated options:
// ro/rw and the mount flags above; the rest (size=, mode=, uid=, gid=,
// nr_inodes=, ...) go to tmpfs, which refuses what it does not know.
func tmpfsMount(dest, opts string) (rt.Mount, error) {
	m := rt.Mount{Type: "tmpfs", Destination: dest, Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC}
	data := []string{"mode=1777"}
	for _, o := range strings.Split(opts, ",") {
		switch f, ok := tmpfsFlags[o]; {
		case o == "":
		case o == "ro" || o == "rw":
			m.ReadOnly = o == "ro"
		case ok && f.set:
			m.Flags |= f.flag
		case ok:
			m.Flags &^= f.flag
		case strings.HasPrefix(o, "mode="):
			data[0] = o
		case strings.Contains(o, "="):
			data = append(data, o)
		default:
			return rt.Mount{}, fmt.Errorf("unknown tmpfs option %q", o)
		}
	}
	m.Data = strings.Join(data, ",")
	return m, nil
}

var ulimitNames = map[string]int{
	"core": 4, "cpu": 0, "data": 2, "fsize": 1, "locks": 10, "memlock": 8, "msgqueue": 12,
	"nice": 13, "nofile": 7, "nproc": 6, "rss": 5, "rtprio": 14, "rttime": 15, "sigpending": 11, "stack": 3,
}

// parseUlimit reads NAME=SOFT[:HARD] as Docker does.
func parseUlimit(s string) (rt.Rlimit, error) {
	name, val, ok := strings.Cut(s, "=")
	typ, known := ulimitNames[name]
	if !ok || !known {
		return rt.Rlimit{}, fmt.Errorf("invalid ulimit %q: want NAME=SOFT[:HARD] with NAME one of core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack", s)
	}
	softS, hardS, hasHard := strings.Cut(val, ":")
	parse := func(v string) (uint64, error) {
		if v == "-1" || v == "unlimited" {
			return ^uint64(0), nil
		}
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			return n, nil
		}
		n, err := units.RAMInBytes(v)
		return uint64(n), err
	}
	soft, err := parse(softS)
	if err != nil {
		return rt.Rlimit{}, fmt.Errorf("invalid ulimit %q: %w", s, err)
	}
	hard := soft
	if hasHard {
		if hard, err = parse(hardS); err != nil {
			return rt.Rlimit{}, fmt.Errorf("invalid ulimit %q: %w", s, err)
		}
	}
	if soft > hard {
		return rt.Rlimit{}, fmt.Errorf("invalid ulimit %q: soft limit is above the hard limit", s)
	}
	return rt.Rlimit{Type: typ, Soft: soft, Hard: hard}, nil
}
