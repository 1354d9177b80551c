package commands

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"go.podman.io/storage/pkg/archive"
	"golang.org/x/term"

	"github.com/tugcli/tug/build"
	"github.com/tugcli/tug/image"
	rt "github.com/tugcli/tug/runtime"
)

// BuildCmd is `tug build`.
type BuildCmd struct {
	Tag       []string `short:"t" sep:"none" help:"Name and optionally a tag (name:tag) for the image."`
	File      string   `short:"f" help:"Name of the Dockerfile (default: PATH/Dockerfile; - reads it from stdin)." placeholder:"FILE"`
	BuildArg  []string `name:"build-arg" sep:"none" help:"Set build-time variables (KEY=VALUE, or KEY to take it from here)."`
	Target    string   `help:"Set the target build stage to build."`
	NoCache   bool     `name:"no-cache" help:"Do not use cache when building the image."`
	Pull      bool     `help:"Always attempt to pull a newer version of the base images."`
	Quiet     bool     `short:"q" help:"Suppress the build output and print the image ID on success."`
	IIDFile   string   `name:"iidfile" help:"Write the image ID to the file." placeholder:"FILE"`
	Label     []string `sep:"none" help:"Set metadata for an image (KEY=VALUE)."`
	Secret    []string `sep:"none" help:"Secret for RUN --mount=type=secret: id=ID,src=PATH or id=ID,env=VAR." placeholder:"id=ID,src=PATH"`
	SSH       []string `name:"ssh" sep:"none" help:"SSH agent for RUN --mount=type=ssh (and ADD of git@ repositories): default (uses $SSH_AUTH_SOCK), or ID=SOCKET or ID=KEY[,KEY...]." placeholder:"default|ID[=SOCKET|KEY[,KEY]]"`
	Network   string   `help:"Networking mode for RUN instructions: private (user-mode networking inside tug, the default unless the configuration file says otherwise), none, host, pasta or slirp4netns."`
	Isolation string   `help:"How RUN instructions are confined: auto (the strongest that works here, the default), rootless (namespaces) or chroot (root where no namespace can be made, as in a container: the host's network, processes and IPC)." placeholder:"auto|rootless|chroot"`
	Timestamp *int64   `help:"Set every time in the image to this Unix time, for reproducible images (default: $SOURCE_DATE_EPOCH)."`
	Progress  string   `default:"auto" enum:"auto,plain,tty,quiet" help:"Type of progress output: auto, plain, tty, quiet."`
	TLSVerify bool     `name:"tls-verify" default:"true" negatable:"" help:"Require HTTPS for non-loopback registries when pulling base images."`
	Platform  string   `help:"Target platform; tug builds only for this host's (e.g. linux/amd64)." placeholder:"OS/ARCH"`
	Output    string   `short:"o" help:"Also write the result: its files (type=local,dest=DIR, type=tar,dest=FILE, a directory, or - for a tar on stdout) or the image as an archive (type=oci|docker,dest=FILE)." placeholder:"type=local,dest=DIR"`
	Context   string   `arg:"" name:"PATH" help:"Build context directory, or - for a tar archive (or a Dockerfile alone) on stdin."`
}

// Run builds the image and prints its id.
func (c *BuildCmd) Run(ctx context.Context, env *Env) error {
	err := c.run(ctx, env)
	if err == nil {
		return nil
	}
	if _, ok := err.(*ExitError); ok {
		return err
	}
	return &ExitError{Code: 1, Err: err}
}

func (c *BuildCmd) run(ctx context.Context, env *Env) error {
	if _, err := rt.ParseIsolation(c.Isolation); err != nil {
		return err
	}
	env.Isolation = c.Isolation
	// The store first: for an unprivileged user this re-executes tug in
	// its user namespace, and only that process may read stdin.
	store, err := env.MountingStore(ctx)
	if err != nil {
		return err
	}
	if c.Context == "-" {
		dir, err := c.contextFromStdin()
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	dockerfile, name, err := c.dockerfile()
	if err != nil {
		return err
	}
	bctx, err := build.OpenContext(c.Context, name)
	if err != nil {
		return err
	}
	out := env.Stderr
	quiet := c.Quiet || c.Progress == "quiet"
	if quiet {
		out = io.Discard
	}
	o := build.Options{
		Dockerfile:     dockerfile,
		DockerfileName: filepath.Base(name),
		Context:        bctx,
		Tags:           c.Tag,
		BuildArgs:      map[string]string{},
		Target:         c.Target,
		NoCache:        c.NoCache,
		Pull:           c.Pull,
		Labels:         map[string]string{},
		Network:        c.Network,
		Output:         out,
		Progress:       stepPrinter(out),
		PullImage: func(ctx context.Context, ref string) (*image.Image, error) {
			pull := &PullCmd{Quiet: quiet, TLSVerify: c.TLSVerify, Ref: ref}
			res, err := pull.pull(ctx, env, store, out)
			if err != nil {
				return nil, err
			}
			return res.Image, nil
		},
	}
	o.Isolation, o.Debugf = env.ChosenIsolation(), logrus.Debugf
	if o.Network, err = env.networkMode(o.Network); err != nil {
		return err
	}
	switch o.Network {
	case "default", "bridge":
		o.Network = "private"
	case "private", "none", "host", "pasta", "slirp4netns":
	default:
		return fmt.Errorf("unknown network %q for build: use private (the default), none, host, pasta or slirp4netns", o.Network)
	}
	for _, kv := range c.BuildArg {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			if v, ok = os.LookupEnv(k); !ok {
				continue
			}
		}
		o.BuildArgs[k] = v
	}
	for _, spec := range c.Secret {
		id, sec, err := build.ParseSecret(spec)
		if err != nil {
			return err
		}
		if o.Secrets == nil {
			o.Secrets = map[string]build.Secret{}
		}
		o.Secrets[id] = sec
	}
	for _, spec := range c.SSH {
		id, a, err := build.ParseSSH(spec)
		if err != nil {
			return err
		}
		if o.SSH == nil {
			o.SSH = map[string]*build.SSHAgent{}
		}
		o.SSH[id] = a
	}
	for _, kv := range c.Label {
		k, v, _ := strings.Cut(kv, "=")
		o.Labels[k] = v
	}
	ts := c.Timestamp
	if ts == nil {
		if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a Unix time", s)
			}
			ts = &n
		}
	}
	if ts != nil {
		t := time.Unix(*ts, 0).UTC()
		o.Timestamp = &t
	}
	if c.Platform != "" && c.Platform != goruntime.GOOS+"/"+goruntime.GOARCH {
		return fmt.Errorf("--platform %s: tug builds only for this host's platform, %s/%s (no emulation)", c.Platform, goruntime.GOOS, goruntime.GOARCH)
	}
	exp, err := parseOutput(c.Output)
	if err != nil {
		return err
	}
	// On a terminal, a live view of the running steps; in a pipe (or with
	// --progress plain) plain lines.
	var view *ttyView
	if !quiet && (c.Progress == "tty" || (c.Progress == "auto" && ttyFile(env.Stderr) && os.Getenv("TERM") != "dumb")) {
		width := 80
		if f, ok := env.Stderr.(*os.File); ok {
			if w, _, err := term.GetSize(int(f.Fd())); err == nil {
				width = w
			}
		}
		view = newTTYView(env.Stderr, width)
		o.Output, o.Progress = view, view.step
	}
	res, err := build.Build(ctx, store, o)
	if view != nil {
		view.close()
	}
	if err != nil {
		return err
	}
	if exp != nil {
		if err := exp.export(ctx, store, res.Image, env.Stdout); err != nil {
			return err
		}
		if exp.dest == "-" {
			return nil // stdout carries the archive
		}
	}
	id := "sha256:" + res.Image.ID
	if c.IIDFile != "" {
		if err := os.WriteFile(c.IIDFile, []byte(id), 0o644); err != nil {
			return fmt.Errorf("writing --iidfile: %w", err)
		}
	}
	if !quiet {
		fmt.Fprintf(out, "Successfully built %s\n", res.Image.ID[:12])
		for _, n := range res.Names {
			fmt.Fprintf(out, "Successfully tagged %s\n", n)
		}
	}
	fmt.Fprintln(env.Stdout, id)
	return nil
}

// dockerfile reads the Dockerfile: -f FILE, - for stdin, or PATH/Dockerfile.
// contextFromStdin reads `tug build -`: a tar archive (compressed or
// not) is the context, with the Dockerfile (or -f) inside it; anything
// else is the Dockerfile, with an empty context, as docker build reads
// it. It sets c.Context (and c.File) and returns the directory to remove.
func (c *BuildCmd) contextFromStdin() (string, error) {
	if c.File == "-" {
		return "", errors.New("the context and the Dockerfile cannot both come from stdin (-)")
	}
	tmp, err := os.MkdirTemp("", "tug-build-stdin-")
	if err != nil {
		return "", err
	}
	raw := filepath.Join(tmp, "stdin")
	f, err := os.Create(raw)
	if err == nil {
		_, err = io.Copy(f, os.Stdin)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("reading the build context from stdin: %w", err)
	}
	ctxDir := filepath.Join(tmp, "context")
	if err := os.Mkdir(ctxDir, 0o755); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	c.Context = ctxDir
	if build.IsArchive(raw) {
		f, err := os.Open(raw)
		if err != nil {
			os.RemoveAll(tmp)
			return "", err
		}
		defer f.Close()
		r, err := archive.DecompressStream(bufio.NewReader(f))
		if err == nil {
			err = extractOnHost(ctxDir, r)
			r.Close()
		}
		if err != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("unpacking the build context from stdin: %w", err)
		}
		if c.File != "" {
			c.File = filepath.Join(ctxDir, filepath.Clean("/"+c.File))
		}
		return tmp, nil
	}
	if c.File == "" {
		c.File = raw
	}
	return tmp, nil
}

func (c *BuildCmd) dockerfile() ([]byte, string, error) {
	name := c.File
	switch {
	case name == "-":
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return nil, "", fmt.Errorf("reading the Dockerfile from stdin: %w", err)
		}
		return b, "-", nil
	case name == "":
		name = filepath.Join(c.Context, "Dockerfile")
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, "", fmt.Errorf("reading the Dockerfile: %w", err)
	}
	return b, name, nil
}

// stepPrinter prints build steps as plain lines: the step when it starts,
// and CACHED or DONE with its time when it ends.
func stepPrinter(w io.Writer) func(build.Step) {
	return func(s build.Step) {
		prefix := fmt.Sprintf("[%d/%d]", s.Index, s.Total)
		if s.Stage > 0 {
			prefix = fmt.Sprintf("[stage-%d %d/%d]", s.Stage, s.Index, s.Total)
		}
		switch {
		case !s.Done:
			fmt.Fprintf(w, "%s %s\n", prefix, s.Text)
		case s.Index == 1:
			fmt.Fprintf(w, "%s %s\n", prefix, s.Text)
		case s.Cached:
			fmt.Fprintf(w, "%s CACHED\n", prefix)
		default:
			fmt.Fprintf(w, "%s DONE %.1fs\n", prefix, s.Elapsed.Seconds())
		}
	}
}
