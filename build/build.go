// Package build turns a Dockerfile and a context into an image in the
// store: the Dockerfile is parsed by BuildKit's own parser, every RUN runs
// through tug's runtime with run's isolation, every COPY is written as a
// layer straight from the context, and each step is cached locally.
package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/patternmatcher"
	"golang.org/x/sys/unix"

	"github.com/tugcli/tug/image"
	rt "github.com/tugcli/tug/runtime"
)

// Options describe one build.
type Options struct {
	// Dockerfile is the Dockerfile's text; DockerfileName names it in errors.
	Dockerfile     []byte
	DockerfileName string
	Context        *Context
	Tags           []string
	BuildArgs      map[string]string
	Target         string
	NoCache        bool
	Labels         map[string]string
	// Secrets are what RUN --mount=type=secret may read, by id.
	Secrets map[string]Secret
	// SSH are the agents RUN --mount=type=ssh reaches, by id ("default"
	// also serves ADD of git repositories over ssh).
	SSH map[string]*SSHAgent
	// Network is "private" (the default, as for run), "none", "host",
	// "pasta" or "slirp4netns".
	Network string
	// Isolation is how RUN steps are confined (rt.IsolationRootless when
	// empty); with rt.IsolationChroot every step has the host's network.
	Isolation rt.Isolation
	// Debugf, if set, receives the runtime's notes for --debug.
	Debugf func(format string, args ...any)
	// Timestamp, if set, fixes every time in the image (SOURCE_DATE_EPOCH).
	Timestamp *time.Time
	// Pull gets a base image from its registry even when it is stored.
	Pull bool
	// PullImage fetches a base image that is missing (or always, with Pull).
	PullImage func(ctx context.Context, ref string) (*image.Image, error)
	// Output receives step headers and RUN output; Progress step events.
	Output   io.Writer
	Progress func(Step)
}

// Step is a progress event: a step starting, or finishing (Done), cached
// or not.
type Step struct {
	Stage, Index, Total int
	Text                string
	Cached              bool
	Done                bool
	Elapsed             time.Duration
}

// Result is the built image.
type Result struct {
	Image *image.Image
	Names []string
}

// ParseError is a Dockerfile error with its place: FILE:LINE: message.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// stageState is what a stage has built so far.
type stageState struct {
	cfg   v1.ConfigFile
	top   string // top layer id; "" for scratch
	key   string // cache chain key
	shell []string
	args  map[string]string
	// argOrder lists the stage's ARGs as declared (with those of the
	// stage it is based on first), for RUN's history text.
	argOrder []string
	// cmdSet: CMD was set in this stage (ENTRYPOINT then keeps it).
	cmdSet bool
	// onbuild are the base's ONBUILD triggers, run right after FROM.
	onbuild []string
}

// Build runs the build and stores the image.
func Build(ctx context.Context, store *image.Store, o Options) (*Result, error) {
	if o.DockerfileName == "" {
		o.DockerfileName = "Dockerfile"
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	if o.Progress == nil {
		o.Progress = func(Step) {}
	}
	lex, stages, metaArgs, err := parse(o.DockerfileName, o.Dockerfile)
	if err != nil {
		return nil, err
	}
	// A prune waits for no build: it keeps the cache while one runs.
	lock, err := lockBuilds(store, unix.LOCK_SH)
	if err != nil {
		return nil, fmt.Errorf("locking the build cache: %w", err)
	}
	defer lock.Close()
	if syntax, _, _, ok := parser.DetectSyntax(o.Dockerfile); ok {
		fmt.Fprintf(o.Output, "NOTICE: %s: # syntax=%s is noted and otherwise ignored: tug parses Dockerfiles with the BuildKit parser it is built with\n", o.DockerfileName, syntax)
	}
	b := &builder{store: store, o: o, lex: lex, runs: map[int]*stageRun{}}
	defer b.releaseImages() // last: after the stages and the commit
	b.meta = b.metaArgs(metaArgs)

	target := len(stages) - 1
	if o.Target != "" {
		found := false
		for i, s := range stages {
			if strings.EqualFold(s.Name, o.Target) {
				target, found = i, true
			}
		}
		if !found {
			return nil, fmt.Errorf("target stage %q could not be found in %s", o.Target, o.DockerfileName)
		}
	}
	b.stages = stages[:target+1]
	// The stages the target needs start at once, side by side; the first
	// failure cancels the rest, and none is left running on return.
	ctx, cancel := context.WithCancel(ctx)
	defer b.wg.Wait()
	defer cancel()
	for _, j := range b.dependencies(target) {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			if _, err := b.stage(ctx, j); err != nil {
				b.fail(err)
				cancel()
			}
		}()
	}
	st, err := b.stage(ctx, target)
	if err != nil {
		// Report the failure that stopped the build, not the
		// cancellation it caused elsewhere.
		b.fail(err)
		b.mu.Lock()
		err = b.firstErr
		b.mu.Unlock()
		return nil, err
	}
	cfg := st.cfg
	if len(o.Labels) > 0 {
		if cfg.Config.Labels == nil {
			cfg.Config.Labels = map[string]string{}
		}
		for k, v := range o.Labels {
			cfg.Config.Labels[k] = v
		}
	}
	// The image is as old as its last step: a fully cached rebuild gives
	// the same image.
	created := b.now()
	if n := len(cfg.History); n > 0 && b.o.Timestamp == nil {
		created = cfg.History[n-1].Created.Time
	}
	cfg.Created = v1.Time{Time: created}
	img, err := store.CommitImage(&cfg, st.top, o.Tags, created)
	if err != nil {
		return nil, err
	}
	return &Result{Image: img, Names: img.Names}, nil
}

// parse parses a Dockerfile into its stages and the ARGs before the first
// FROM; errors are *ParseError.
func parse(name string, dockerfile []byte) (*shell.Lex, []instructions.Stage, []instructions.ArgCommand, error) {
	res, err := parser.Parse(bytes.NewReader(dockerfile))
	if err != nil {
		return nil, nil, nil, locate(name, err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, nil, nil, locate(name, err)
	}
	if len(stages) == 0 {
		return nil, nil, nil, &ParseError{File: name, Msg: "no build stage in current context"}
	}
	return shell.NewLex(res.EscapeToken), stages, metaArgs, nil
}

// locate turns a parser error into FILE:LINE: message.
func locate(file string, err error) error {
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		return &ParseError{File: file, Line: le.Locations[0][0].Start.Line, Msg: strings.TrimPrefix(errors.Unwrap(err).Error(), "dockerfile parse error on line ")}
	}
	msg := err.Error()
	if i := strings.Index(msg, "dockerfile parse error on line "); i >= 0 {
		rest := msg[i+len("dockerfile parse error on line "):]
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(n); err == nil {
				return &ParseError{File: file, Line: line, Msg: after}
			}
		}
	}
	return &ParseError{File: file, Msg: msg}
}

type builder struct {
	store  *image.Store
	o      Options
	lex    *shell.Lex // only through processWord
	lexMu  sync.Mutex
	stages []instructions.Stage
	meta   map[string]string

	mu       sync.Mutex
	runs     map[int]*stageRun // each stage is built once, by whoever asks first
	wg       sync.WaitGroup    // stages started ahead, in parallel
	firstErr error             // the first failure other than a cancellation
	holds    map[string]func() // images in use, by id, and their release
}

// processWord expands word with the Dockerfile's lexer. BuildKit's
// shell.Lex keeps its working state in the Lex itself, so stages built
// side by side must not use it at once: unlocked, they garbled each
// other's words (a FROM of "scratc\xff", a COPY --from of "").
func (b *builder) processWord(word string, env shell.EnvGetter) (string, map[string]struct{}, error) {
	b.lexMu.Lock()
	defer b.lexMu.Unlock()
	return b.lex.ProcessWord(word, env)
}

// fail records err as the build's failure unless one came first; a
// cancellation counts only when nothing else failed.
func (b *builder) fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.firstErr == nil || (errors.Is(b.firstErr, context.Canceled) && !errors.Is(err, context.Canceled)) {
		b.firstErr = err
	}
}

// stageRun is one stage's build, which later askers wait for.
type stageRun struct {
	done chan struct{}
	st   *stageState
	err  error
}

func (b *builder) now() time.Time {
	if b.o.Timestamp != nil {
		return b.o.Timestamp.UTC()
	}
	return time.Now().UTC()
}

// builtinArgs are the predefined platform args BuildKit supplies.
func builtinArgs() map[string]string {
	p := goruntime.GOOS + "/" + goruntime.GOARCH
	return map[string]string{
		"TARGETPLATFORM": p, "TARGETOS": goruntime.GOOS, "TARGETARCH": goruntime.GOARCH, "TARGETVARIANT": "",
		"BUILDPLATFORM": p, "BUILDOS": goruntime.GOOS, "BUILDARCH": goruntime.GOARCH, "BUILDVARIANT": "",
	}
}

// proxyArgs may be passed with --build-arg without being declared.
var proxyArgs = []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}

// metaArgs evaluates the ARGs before the first FROM.
func (b *builder) metaArgs(args []instructions.ArgCommand) map[string]string {
	vals := builtinArgs()
	for _, a := range args {
		for _, kv := range a.Args {
			v, ok := b.o.BuildArgs[kv.Key]
			if !ok && kv.Value != nil {
				v, _, _ = b.processWord(*kv.Value, mapEnv(vals))
				ok = true
			}
			if ok {
				vals[kv.Key] = v
			}
		}
	}
	return vals
}

type mapEnv map[string]string

func (m mapEnv) Get(k string) (string, bool) { v, ok := m[k]; return v, ok }
func (m mapEnv) Keys() []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// stage builds stage i (and, first, what it depends on), once: a second
// caller waits for the first one's result.
func (b *builder) stage(ctx context.Context, i int) (*stageState, error) {
	b.mu.Lock()
	if r, ok := b.runs[i]; ok {
		b.mu.Unlock()
		select {
		case <-r.done:
			return r.st, r.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	r := &stageRun{done: make(chan struct{})}
	b.runs[i] = r
	b.mu.Unlock()
	r.st, r.err = b.buildStage(ctx, i)
	close(r.done)
	return r.st, r.err
}

// dependencies are the earlier stages stage i needs, directly or not:
// its FROM, COPY --from and RUN --mount from= that name a stage.
func (b *builder) dependencies(i int) []int {
	seen := map[int]bool{}
	var visit func(int)
	visit = func(i int) {
		s := b.stages[i]
		var refs []string
		if base, _, err := b.processWord(s.BaseName, mapEnv(b.meta)); err == nil {
			refs = append(refs, base)
		}
		for _, cmd := range s.Commands {
			switch c := cmd.(type) {
			case *instructions.CopyCommand:
				refs = append(refs, c.From)
			case *instructions.RunCommand:
				for _, m := range instructions.GetMounts(c) {
					refs = append(refs, m.From)
				}
			}
		}
		for _, ref := range refs {
			if ref == "" {
				continue
			}
			for j := 0; j < i; j++ {
				if (b.stages[j].Name != "" && strings.EqualFold(b.stages[j].Name, ref)) || strconv.Itoa(j) == ref {
					if !seen[j] {
						seen[j] = true
						visit(j)
					}
				}
			}
		}
	}
	visit(i)
	out := make([]int, 0, len(seen))
	for j := range seen {
		out = append(out, j)
	}
	sort.Ints(out)
	return out
}

// buildStage builds stage i.
func (b *builder) buildStage(ctx context.Context, i int) (*stageState, error) {
	s := b.stages[i]
	base, _, err := b.processWord(s.BaseName, mapEnv(b.meta))
	if err != nil {
		return nil, fmt.Errorf("%s: FROM %s: %w", b.o.DockerfileName, s.BaseName, err)
	}
	if s.Platform != "" {
		p, _, _ := b.processWord(s.Platform, mapEnv(b.meta))
		if p != goruntime.GOOS+"/"+goruntime.GOARCH {
			return nil, fmt.Errorf("%s: FROM --platform=%s: tug builds only for this host's platform, %s/%s", b.o.DockerfileName, p, goruntime.GOOS, goruntime.GOARCH)
		}
	}
	st, err := b.from(ctx, i, base)
	if err != nil {
		return nil, err
	}
	cmds := s.Commands
	if len(st.onbuild) > 0 {
		triggers, err := b.triggers(base, st.onbuild)
		if err != nil {
			return nil, err
		}
		cmds = append(triggers, cmds...)
		st.onbuild = nil
	}
	total := len(cmds) + 1
	b.o.Progress(Step{Stage: i, Index: 1, Total: total, Text: "FROM " + base, Done: true})
	for n, cmd := range cmds {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := b.step(ctx, i, n+2, total, st, cmd); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// from starts a stage: from an earlier stage, from scratch, or from an image.
func (b *builder) from(ctx context.Context, i int, base string) (*stageState, error) {
	st := &stageState{shell: []string{"/bin/sh", "-c"}, args: map[string]string{}}
	for j := 0; j < i; j++ {
		if b.stages[j].Name != "" && strings.EqualFold(b.stages[j].Name, base) {
			prev, err := b.stage(ctx, j)
			if err != nil {
				return nil, err
			}
			st.cfg, st.top, st.key = cloneConfig(prev.cfg), prev.top, prev.key
			if len(prev.cfg.Config.Shell) > 0 {
				st.shell = prev.cfg.Config.Shell
			}
			// A stage keeps the ARGs of the stage it starts from, as in
			// BuildKit.
			for k, v := range prev.args {
				st.args[k] = v
			}
			st.argOrder = append([]string{}, prev.argOrder...)
			st.takeTriggers()
			return st, nil
		}
	}
	if strings.EqualFold(base, "scratch") {
		st.cfg = v1.ConfigFile{OS: goruntime.GOOS, Architecture: goruntime.GOARCH, RootFS: v1.RootFS{Type: "layers"}}
		st.cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
		st.key = keyOf("scratch")
		return st, nil
	}
	img, err := b.baseImage(ctx, base)
	if err != nil {
		return nil, err
	}
	st.cfg = cloneConfig(img.Config)
	st.top = img.TopLayer
	st.key = keyOf("image", img.ID)
	if len(st.cfg.Config.Shell) > 0 {
		st.shell = st.cfg.Config.Shell
	}
	st.takeTriggers()
	return st, nil
}

// takeTriggers moves the base's ONBUILD triggers out of the config: they
// run in this build and are not inherited further, as in Docker.
func (st *stageState) takeTriggers() {
	st.onbuild = st.cfg.Config.OnBuild
	st.cfg.Config.OnBuild = nil
}

// triggers parses ONBUILD trigger lines into instructions.
func (b *builder) triggers(base string, lines []string) ([]instructions.Command, error) {
	var out []instructions.Command
	for _, line := range lines {
		res, err := parser.Parse(strings.NewReader("FROM scratch\n" + line + "\n"))
		if err != nil {
			return nil, fmt.Errorf("ONBUILD trigger %q of %s: %v", line, base, err)
		}
		stages, _, err := instructions.Parse(res.AST, nil)
		if err != nil {
			return nil, fmt.Errorf("ONBUILD trigger %q of %s: %v", line, base, err)
		}
		if len(stages) != 1 || len(stages[0].Commands) != 1 {
			return nil, fmt.Errorf("ONBUILD trigger %q of %s: not one instruction", line, base)
		}
		switch stages[0].Commands[0].(type) {
		case *instructions.OnbuildCommand, *instructions.MaintainerCommand:
			return nil, fmt.Errorf("ONBUILD trigger %q of %s: %s is not allowed as an ONBUILD trigger", line, base, stages[0].Commands[0].Name())
		}
		out = append(out, stages[0].Commands[0])
	}
	return out, nil
}

// baseImage finds (or pulls) an image the build uses, FROM or --from,
// and holds it until the build ends: tug rmi and image prune refuse to
// remove it meanwhile. If it goes between the lookup and the hold, it is
// looked up (or pulled) again.
func (b *builder) baseImage(ctx context.Context, ref string) (*image.Image, error) {
	for try := 0; ; try++ {
		img, err := b.findImage(ctx, ref)
		if err != nil {
			return nil, err
		}
		b.mu.Lock()
		_, held := b.holds[img.ID]
		b.mu.Unlock()
		if held {
			return img, nil
		}
		release, err := b.store.UseImage(img.ID)
		if errors.Is(err, image.ErrNotFound) && try < 2 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("base image %s: %w", ref, err)
		}
		b.mu.Lock()
		if b.holds == nil {
			b.holds = map[string]func(){}
		}
		if _, held := b.holds[img.ID]; held {
			release() // another stage took it meanwhile
		} else {
			b.holds[img.ID] = release
		}
		b.mu.Unlock()
		return img, nil
	}
}

// releaseImages lets the images the build held be removed again.
func (b *builder) releaseImages() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, release := range b.holds {
		release()
		delete(b.holds, id)
	}
}

func (b *builder) findImage(ctx context.Context, ref string) (*image.Image, error) {
	if !b.o.Pull {
		img, err := b.store.Lookup(ref)
		if err == nil {
			return img, nil
		}
		if !errors.Is(err, image.ErrNotFound) {
			return nil, err
		}
	}
	if b.o.PullImage == nil {
		return nil, fmt.Errorf("base image %s: %w", ref, image.ErrNotFound)
	}
	return b.o.PullImage(ctx, ref)
}

func cloneConfig(c v1.ConfigFile) v1.ConfigFile {
	raw, _ := json.Marshal(c)
	var out v1.ConfigFile
	_ = json.Unmarshal(raw, &out)
	return out
}

func keyOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// env is what word expansion sees in a step: the stage's ARGs, then its
// ENV (which wins).
func (st *stageState) env() mapEnv {
	m := mapEnv{}
	for k, v := range st.args {
		m[k] = v
	}
	for _, kv := range st.cfg.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func (st *stageState) setEnv(k, v string) {
	for i, kv := range st.cfg.Config.Env {
		if strings.HasPrefix(kv, k+"=") {
			st.cfg.Config.Env[i] = k + "=" + v
			return
		}
	}
	st.cfg.Config.Env = append(st.cfg.Config.Env, k+"="+v)
}

// step runs one instruction of stage si.
func (b *builder) step(ctx context.Context, si, index, total int, st *stageState, cmd instructions.Command) error {
	if err := b.expand(st, cmd); err != nil {
		return err
	}
	text := fmt.Sprint(cmd)
	start := time.Now()
	b.o.Progress(Step{Stage: si, Index: index, Total: total, Text: text})
	cached := false
	var err error
	switch c := cmd.(type) {
	case *instructions.RunCommand:
		cached, err = b.run(ctx, st, c)
	case *instructions.CopyCommand:
		cached, err = b.copy(ctx, st, copyArgs{sd: c.SourcesAndDest, from: c.From, chown: c.Chown, chmod: c.Chmod, exclude: c.ExcludePatterns, parents: c.Parents, text: text})
	case *instructions.AddCommand:
		cached, err = b.copy(ctx, st, copyArgs{sd: c.SourcesAndDest, chown: c.Chown, chmod: c.Chmod, exclude: c.ExcludePatterns, isAdd: true, checksum: c.Checksum, keepGitDir: c.KeepGitDir, text: text})
	case *instructions.ArgCommand:
		// The ARGs' values are part of the key: the history entry (and
		// so the image) is reused while they stay the same.
		b.setArgs(st, c)
		hist := b.argHistory(st, c)
		key := keyOf(st.key, "ARG", argsKey(st.args), hist)
		if cached = b.useCache(st, key); !cached {
			st.cfg.History = append(st.cfg.History, v1.History{Created: v1.Time{Time: b.now()}, CreatedBy: hist, Comment: "buildkit.dockerfile.v0", EmptyLayer: true})
			st.key = key
			b.remember(key, cacheRecord{Top: st.top, Cfg: st.cfg})
		}
	default:
		// Config-only steps are cached too, so that a rebuild gives the
		// same history times and so the same image id.
		key := keyOf(st.key, "CONFIG", text)
		if cached = b.useCache(st, key); !cached {
			if err = b.configStep(st, cmd); err == nil {
				st.key = key
				b.remember(key, cacheRecord{Top: st.top, Cfg: st.cfg})
			}
		}
	}
	if err != nil {
		return err
	}
	b.o.Progress(Step{Stage: si, Index: index, Total: total, Text: text, Cached: cached, Done: true, Elapsed: time.Since(start)})
	return nil
}

// expand expands the variables in cmd's words with the stage's ARGs and
// ENV at this point.
func (b *builder) expand(st *stageState, cmd instructions.Command) error {
	if e, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		env := st.env()
		if err := e.Expand(func(word string) (string, error) {
			out, _, err := b.processWord(word, env)
			return out, err
		}); err != nil {
			return fmt.Errorf("%s: %s: %w", b.o.DockerfileName, cmd.Name(), err)
		}
	}
	if e, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		// Heredoc contents: variables only, quotes kept (BuildKit's rule).
		env := st.env()
		lex := shell.NewLex('\\')
		lex.SkipProcessQuotes = true
		if err := e.ExpandRaw(func(word string) (string, error) {
			out, _, err := lex.ProcessWord(word, env)
			return out, err
		}); err != nil {
			return fmt.Errorf("%s: %s: %w", b.o.DockerfileName, cmd.Name(), err)
		}
	}
	return nil
}

// configStep applies an instruction that only changes the config.
func (b *builder) configStep(st *stageState, cmd instructions.Command) error {
	c := &st.cfg.Config
	switch x := cmd.(type) {
	case *instructions.EnvCommand:
		for _, kv := range x.Env {
			st.setEnv(kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for _, kv := range x.Labels {
			c.Labels[kv.Key] = kv.Value
		}
	case *instructions.MaintainerCommand:
		st.cfg.Author = x.Maintainer
	case *instructions.WorkdirCommand:
		p := x.Path
		if !path.IsAbs(p) {
			p = path.Join("/", c.WorkingDir, p)
		}
		c.WorkingDir = path.Clean(p)
	case *instructions.UserCommand:
		c.User = x.User
	case *instructions.CmdCommand:
		c.Cmd = b.commandLine(st, x.ShellDependantCmdLine)
		st.cmdSet = true
	case *instructions.EntrypointCommand:
		c.Entrypoint = b.commandLine(st, x.ShellDependantCmdLine)
		if !st.cmdSet {
			c.Cmd = nil
		}
	case *instructions.ExposeCommand:
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range x.Ports {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			c.ExposedPorts[p] = struct{}{}
		}
	case *instructions.VolumeCommand:
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		for _, v := range x.Volumes {
			c.Volumes[v] = struct{}{}
		}
	case *instructions.StopSignalCommand:
		c.StopSignal = x.Signal
	case *instructions.ShellCommand:
		c.Shell = x.Shell
		st.shell = x.Shell
	case *instructions.HealthCheckCommand:
		if x.Health != nil {
			c.Healthcheck = &v1.HealthConfig{Test: x.Health.Test, Interval: x.Health.Interval, Timeout: x.Health.Timeout, StartPeriod: x.Health.StartPeriod, Retries: x.Health.Retries}
		}
	case *instructions.OnbuildCommand:
		c.OnBuild = append(c.OnBuild, x.Expression)
		return nil // BuildKit records no history entry for ONBUILD
	default:
		return fmt.Errorf("%s: %s is not supported by tug yet", b.o.DockerfileName, strings.ToUpper(cmd.Name()))
	}
	st.cfg.History = append(st.cfg.History, v1.History{Created: v1.Time{Time: b.now()}, CreatedBy: configHistory(st, cmd), Comment: "buildkit.dockerfile.v0", EmptyLayer: true})
	return nil
}

// setArgs applies an ARG: each value comes from --build-arg, else its
// default, else the ARG of the same name before the first FROM.
func (b *builder) setArgs(st *stageState, c *instructions.ArgCommand) {
	for _, kv := range c.Args {
		v, ok := b.o.BuildArgs[kv.Key]
		if !ok && kv.Value != nil {
			v, ok = *kv.Value, true
		}
		if !ok {
			v, ok = b.meta[kv.Key]
		}
		if ok {
			st.args[kv.Key] = v
		} else {
			st.args[kv.Key] = ""
		}
		st.argOrder = append(st.argOrder, kv.Key)
	}
}

// argHistory is an ARG's history text, as BuildKit writes it: each name
// with the value it took, or the name alone when it has none.
func (b *builder) argHistory(st *stageState, c *instructions.ArgCommand) string {
	parts := make([]string, 0, len(c.Args))
	for _, kv := range c.Args {
		_, given := b.o.BuildArgs[kv.Key]
		_, global := b.meta[kv.Key]
		if given || kv.Value != nil || global {
			parts = append(parts, kv.Key+"="+st.args[kv.Key])
		} else {
			parts = append(parts, kv.Key)
		}
	}
	return "ARG " + strings.Join(parts, " ")
}

// configHistory is a config step's history text, as BuildKit writes it
// (dockerfile2llb's dispatch functions): the instruction with its
// variables expanded, without the " # buildkit" mark that only steps
// that run or copy get.
func configHistory(st *stageState, cmd instructions.Command) string {
	c := &st.cfg.Config
	switch x := cmd.(type) {
	case *instructions.EnvCommand:
		return "ENV" + kvText(x.Env)
	case *instructions.LabelCommand:
		return "LABEL" + kvText(x.Labels)
	case *instructions.MaintainerCommand:
		return "MAINTAINER " + x.Maintainer
	case *instructions.WorkdirCommand:
		return "WORKDIR " + c.WorkingDir
	case *instructions.UserCommand:
		return "USER " + x.User
	case *instructions.CmdCommand:
		return fmt.Sprintf("CMD %q", c.Cmd)
	case *instructions.EntrypointCommand:
		return fmt.Sprintf("ENTRYPOINT %q", c.Entrypoint)
	case *instructions.ExposeCommand:
		ports := make([]string, 0, len(x.Ports))
		for _, p := range x.Ports {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			ports = append(ports, p)
		}
		return fmt.Sprintf("EXPOSE %v", ports)
	case *instructions.VolumeCommand:
		return fmt.Sprintf("VOLUME %v", x.Volumes)
	case *instructions.StopSignalCommand:
		return "STOPSIGNAL " + x.Signal
	case *instructions.ShellCommand:
		return fmt.Sprintf("SHELL %v", x.Shell)
	case *instructions.HealthCheckCommand:
		if x.Health != nil {
			return fmt.Sprintf("HEALTHCHECK %+v", *x.Health)
		}
	}
	return fmt.Sprint(cmd)
}

func kvText(kvs instructions.KeyValuePairs) string {
	var sb strings.Builder
	for _, kv := range kvs {
		sb.WriteString(" " + kv.Key + "=" + kv.Value)
	}
	return sb.String()
}

// runHistory is a RUN's history text as BuildKit writes it: the ARGs the
// stage declared with their values (`|2 A=1 B=2`), then the command's
// argv joined by spaces.
func runHistory(st *stageState, args []string) string {
	env := st.env()
	var pairs []string
	at := map[string]int{}
	for _, k := range st.argOrder {
		kv := k + "=" + env[k]
		if i, ok := at[k]; ok {
			pairs[i] = kv
			continue
		}
		at[k] = len(pairs)
		pairs = append(pairs, kv)
	}
	if len(pairs) > 0 {
		pairs = append([]string{"|" + strconv.Itoa(len(pairs))}, pairs...)
	}
	return "RUN " + strings.Join(append(pairs, args...), " ")
}

// copyHistory is a COPY's or ADD's history text as BuildKit writes it:
// --parents, --chown and --chmod, the sources (heredocs as <<NAME) and
// the destination, expanded; --from, --link and --exclude are left out.
func copyHistory(a copyArgs) string {
	var sb strings.Builder
	if a.isAdd {
		sb.WriteString("ADD")
	} else {
		sb.WriteString("COPY")
	}
	if a.parents {
		sb.WriteString(" --parents")
	}
	if a.chown != "" {
		sb.WriteString(" --chown=" + a.chown)
	}
	if a.chmod != "" {
		sb.WriteString(" --chmod=" + a.chmod)
	}
	for _, src := range a.sd.SourcePaths {
		sb.WriteString(" " + src)
	}
	for _, sc := range a.sd.SourceContents {
		sb.WriteString(" <<" + sc.Path)
	}
	sb.WriteString(" " + a.sd.DestPath + " # buildkit")
	return sb.String()
}

func argsKey(args map[string]string) string {
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + args[k] + "\x00")
	}
	return b.String()
}

// commandLine is the argv of a CMD, ENTRYPOINT or RUN: the exec form as
// written, the shell form through SHELL. A RUN of one heredoc runs its
// text as the shell command; with several, or with more on the line, the
// text is put back together for the shell (BuildKit's dispatchRun).
func (b *builder) commandLine(st *stageState, c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return append([]string{}, c.CmdLine...)
	}
	line := strings.Join(c.CmdLine, " ")
	if len(c.Files) > 0 {
		if h := singleHeredoc(c); h != nil {
			line = heredocData(h)
		} else {
			var sb strings.Builder
			sb.WriteString(line)
			for _, f := range c.Files {
				sb.WriteString("\n" + f.Data + f.Name)
			}
			line = sb.String()
		}
	}
	return append(append([]string{}, st.shell...), line)
}

// singleHeredoc is the heredoc of `RUN <<EOF` alone on its line.
func singleHeredoc(c instructions.ShellDependantCmdLine) *instructions.ShellInlineFile {
	if len(c.Files) != 1 || len(c.CmdLine) != 1 {
		return nil
	}
	if h := parser.MustParseHeredoc(c.CmdLine[0]); h != nil && h.Name == c.Files[0].Name {
		return &c.Files[0]
	}
	return nil
}

// heredocData is a heredoc's text, with leading tabs removed for <<-.
func heredocData(h *instructions.ShellInlineFile) string {
	if h.Chomp {
		return parser.ChompHeredocContent(h.Data)
	}
	return h.Data
}

// cacheRecord is what a cached step produced.
type cacheRecord struct {
	Top string
	Cfg v1.ConfigFile
}

func (b *builder) cacheDir() string { return filepath.Join(b.store.GraphRoot(), "tug-build-cache") }

func (b *builder) cached(key string) (*cacheRecord, bool) {
	if b.o.NoCache {
		return nil, false
	}
	raw, err := os.ReadFile(filepath.Join(b.cacheDir(), key))
	if err != nil {
		return nil, false
	}
	var r cacheRecord
	if json.Unmarshal(raw, &r) != nil || (r.Top != "" && !b.store.HasLayer(r.Top)) {
		return nil, false
	}
	return &r, true
}

func (b *builder) remember(key string, r cacheRecord) {
	raw, err := json.Marshal(r)
	if err != nil {
		return
	}
	dir := b.cacheDir()
	if os.MkdirAll(dir, 0o700) != nil {
		return
	}
	// Stages build side by side: two may remember the same step.
	f, err := os.CreateTemp(dir, key+".tmp*")
	if err != nil {
		return
	}
	_, err = f.Write(raw)
	if cerr := f.Close(); err == nil && cerr == nil {
		_ = os.Rename(f.Name(), filepath.Join(dir, key))
	} else {
		_ = os.Remove(f.Name())
	}
}

// layerStep finishes a step that made a layer: history, diff id, key.
func (b *builder) layerStep(st *stageState, key, top string, diffID v1.Hash, createdBy string) {
	st.top = top
	st.cfg.RootFS.Type = "layers"
	st.cfg.RootFS.DiffIDs = append(st.cfg.RootFS.DiffIDs, diffID)
	st.cfg.History = append(st.cfg.History, v1.History{Created: v1.Time{Time: b.now()}, CreatedBy: createdBy, Comment: "buildkit.dockerfile.v0"})
	st.key = key
	b.remember(key, cacheRecord{Top: top, Cfg: st.cfg})
}

func (b *builder) useCache(st *stageState, key string) bool {
	r, ok := b.cached(key)
	if !ok {
		return false
	}
	st.top, st.cfg, st.key = r.Top, r.Cfg, key
	return true
}

// run executes a RUN step in a writable layer on the stage's top, with
// its --mount mounts; the mount points the runtime had to create are
// removed before the layer is taken, so no mount leaves a trace in it.
func (b *builder) run(ctx context.Context, st *stageState, c *instructions.RunCommand) (bool, error) {
	if instructions.GetSecurity(c) == instructions.SecurityInsecure {
		// BuildKit's entitlement check (CVE-2024-23653 was its bypass):
		// tug grants a step no privilege beyond the default.
		return false, fmt.Errorf("%s: RUN --security=insecure is not allowed: tug runs every build step with the default capabilities and seccomp filter", b.o.DockerfileName)
	}
	mounts := instructions.GetMounts(c)
	args := b.commandLine(st, c.ShellDependantCmdLine)
	// A heredoc script with #! is written to a file, bound at
	// /dev/pipes/NAME, and run by the shell, as BuildKit does.
	var script *instructions.ShellInlineFile
	if h := singleHeredoc(c.ShellDependantCmdLine); h != nil && strings.HasPrefix(heredocData(h), "#!") {
		script = h
		args = append(append([]string{}, st.shell...), "/dev/pipes/"+path.Base(h.Name))
	}
	env := append([]string{}, st.cfg.Config.Env...)
	for _, k := range sortedKeys(st.args) {
		if !hasEnv(env, k) {
			env = append(env, k+"="+st.args[k])
		}
	}
	network := b.o.Network
	if n := instructions.GetNetwork(c); n != "" && n != "default" {
		network = n
	}
	rawArgs, _ := json.Marshal(args)
	parts := []string{st.key, "RUN", string(rawArgs), argsKey(st.args), network}
	if script != nil {
		parts = append(parts, heredocData(script))
	}
	if len(mounts) > 0 {
		mk, err := b.mountsKey(ctx, st, mounts)
		if err != nil {
			return false, err
		}
		parts = append(parts, "MOUNTS", mk)
	}
	key := keyOf(parts...)
	if b.useCache(st, key) {
		return true, nil
	}
	w, err := b.store.NewWorkLayer(st.top)
	if err != nil {
		return false, err
	}
	keep := false
	defer func() {
		if !keep {
			_ = b.store.Discard(w)
		}
	}()
	user, err := rt.ResolveUser(w.Path, st.cfg.Config.User)
	if err != nil {
		return false, err
	}
	runDir, err := os.MkdirTemp("", "tug-build-run-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(runDir)
	rm, err := b.prepareMounts(ctx, st, mounts, runDir)
	defer rm.release()
	if err != nil {
		return false, err
	}
	if script != nil {
		f := filepath.Join(runDir, "heredoc-script")
		if err := os.WriteFile(f, []byte(heredocData(script)), 0o755); err != nil {
			return false, err
		}
		rm.mounts = append(rm.mounts, rt.Mount{Type: "bind", Source: f, Destination: args[len(args)-1], ReadOnly: true})
	}
	created := mountPoints(w.Path, append(append([]string{}, runtimeMountPoints...), rm.targets...))
	spec := &rt.Spec{
		Config: rt.Config{
			Rootfs:         w.Path,
			Args:           args,
			Env:            append(withDefault(env, "HOME", user.Home), rm.env...),
			Cwd:            st.cfg.Config.WorkingDir,
			UID:            user.UID,
			GID:            user.GID,
			AdditionalGIDs: user.AdditionalGIDs,
			Hostname:       "buildkitsandbox",
			MaskedPaths:    rt.DefaultMaskedPaths,
			ReadonlyPaths:  rt.DefaultReadonlyPaths,
			HostNetwork:    network == "host",
			Isolation:      b.o.Isolation,
		},
		Debugf: b.o.Debugf,
	}
	if b.o.Isolation == rt.IsolationChroot && !spec.HostNetwork {
		return false, fmt.Errorf("RUN --network=%s needs a network namespace, which chroot isolation does not make: leave it out (the host's network) or build with another --isolation", network)
	}
	if err := rt.DefaultConfinement(spec); err != nil {
		return false, err
	}
	etc := rt.EtcOptions{Hostname: spec.Hostname, HostNetwork: spec.HostNetwork}
	switch network {
	case "", "default", rt.NetPrivate, rt.NetPasta, rt.NetSlirp:
		if network == "" || network == "default" {
			network = rt.NetPrivate
		}
		spec.Network = &rt.Network{Mode: network}
		etc.Network = spec.Network
	}
	files, err := rt.EtcFiles(runDir, etc)
	if err != nil {
		return false, err
	}
	spec.Mounts = append(files, rm.mounts...)
	tail := &tailWriter{w: b.o.Output}
	code, err := rt.Run(ctx, spec, rt.Stdio{Stdout: tail, Stderr: tail})
	if err != nil {
		return false, fmt.Errorf("RUN %s: %w", strings.Join(c.CmdLine, " "), err)
	}
	if code != 0 {
		return false, &RunError{Command: strings.Join(c.CmdLine, " "), Code: code, Tail: tail.lines()}
	}
	removeMountPoints(w.Path, created)
	var clamp func(io.Reader) io.Reader
	if b.o.Timestamp != nil {
		t := *b.o.Timestamp
		clamp = func(r io.Reader) io.Reader { return clampTimes(r, t) }
	}
	top, diffID, err := b.store.Commit(w, clamp)
	keep = true // Commit discarded it
	if err != nil {
		return false, err
	}
	b.layerStep(st, key, top, diffID, runHistory(st, args)+" # buildkit")
	return false, nil
}

// RunError is a RUN step that exited non-zero.
type RunError struct {
	Command string
	Code    int
	Tail    []string
}

func (e *RunError) Error() string {
	msg := fmt.Sprintf("RUN %s: exit code %d", e.Command, e.Code)
	if len(e.Tail) > 0 {
		msg += "; last output: " + strings.Join(e.Tail, " | ")
	}
	return msg
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func hasEnv(env []string, k string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, k+"=") {
			return true
		}
	}
	return false
}

func withDefault(env []string, k, v string) []string {
	if hasEnv(env, k) {
		return env
	}
	return append(env, k+"="+v)
}

// copyArgs are a COPY's or ADD's flags and operands, expanded.
type copyArgs struct {
	sd                 instructions.SourcesAndDest
	from, chown, chmod string
	exclude            []string
	parents, isAdd     bool
	checksum           string // ADD --checksum
	keepGitDir         *bool  // ADD --keep-git-dir
	text               string // the instruction as written, for the cache key
}

// copy runs COPY or ADD: the sources become one layer, written straight
// from the context (or another stage) as a tar.
func (b *builder) copy(ctx context.Context, st *stageState, a copyArgs) (bool, error) {
	sd, from, chown, chmod, exclude, parents, isAdd, wantSum, text := a.sd, a.from, a.chown, a.chmod, a.exclude, a.parents, a.isAdd, a.checksum, a.text
	history := copyHistory(a)
	root := b.o.Context.Dir
	ignore := b.o.Context.excluded
	if from != "" {
		top, err := b.fromSource(ctx, from)
		if err != nil {
			return false, err
		}
		if top != "" {
			p, err := b.store.MountLayer(top)
			if err != nil {
				return false, err
			}
			defer b.store.UnmountLayer(top)
			root = p
		} else {
			root = "/nonexistent-scratch"
		}
		ignore = nil
	}
	var srcs []source
	multi := false
	var err error
	var urls, paths []string
	var gits []*gitSource
	for _, s := range sd.SourcePaths {
		if isAdd {
			g, isGit, err := parseGitSource(s)
			if err != nil {
				return false, fmt.Errorf("%s: %w", b.o.DockerfileName, err)
			}
			if isGit {
				gits = append(gits, g)
				continue
			}
		}
		switch {
		case isAdd && (strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")):
			urls = append(urls, s)
		default:
			paths = append(paths, s)
		}
	}
	if wantSum != "" && (len(paths) > 0 || len(urls)+len(gits) != 1) {
		return false, fmt.Errorf("%s: ADD --checksum needs exactly one URL or git source", b.o.DockerfileName)
	}
	for _, g := range gits {
		if wantSum != "" {
			if g.checksum != "" && g.checksum != wantSum {
				return false, fmt.Errorf("%s: ADD %s: checksum mismatch %q != %q", b.o.DockerfileName, g.src, wantSum, g.checksum)
			}
			g.checksum = wantSum
		}
		if a.keepGitDir != nil {
			if g.keepGitDir != nil && *g.keepGitDir != *a.keepGitDir {
				return false, fmt.Errorf("%s: ADD %s: inconsistent keep-git-dir configuration", b.o.DockerfileName, g.src)
			}
			g.keepGitDir = a.keepGitDir
		}
	}
	if len(paths) > 0 {
		if srcs, multi, err = resolve(root, paths, ignore); err != nil {
			return false, err
		}
	}
	if len(urls) > 0 {
		dir, err := os.MkdirTemp("", "tug-build-add-")
		if err != nil {
			return false, err
		}
		defer os.RemoveAll(dir)
		destName := ""
		if len(sd.SourcePaths) == 1 && !strings.HasSuffix(sd.DestPath, "/") {
			destName = path.Base(sd.DestPath)
		}
		us, err := download(ctx, dir, urls, destName, wantSum)
		if err != nil {
			return false, fmt.Errorf("%s: %w", b.o.DockerfileName, err)
		}
		srcs = append(srcs, us...)
		multi = multi || len(sd.SourcePaths) > 1
		if destName != "" {
			// The file is the destination itself.
			sd.DestPath = path.Dir(sd.DestPath) + "/"
		}
	}
	if parents {
		// COPY --parents: each source keeps its path from the context's
		// (or stage's) root under the destination.
		for i := range srcs {
			rel, err := filepath.Rel(root, srcs[i].host)
			if err != nil || strings.HasPrefix(rel, "..") {
				return false, fmt.Errorf("%s: COPY --parents: %s is outside the source root", b.o.DockerfileName, srcs[i].host)
			}
			srcs[i].rel = filepath.ToSlash(rel)
		}
		multi = true
	}
	if len(exclude) > 0 {
		if srcs, err = excludeSources(srcs, exclude); err != nil {
			return false, fmt.Errorf("%s: %w", b.o.DockerfileName, err)
		}
	}
	if len(sd.SourceContents) > 0 {
		// COPY <<EOF: each heredoc becomes a file named after it, 0644.
		dir, err := os.MkdirTemp("", "tug-build-heredoc-")
		if err != nil {
			return false, err
		}
		defer os.RemoveAll(dir)
		var names []string
		for _, sc := range sd.SourceContents {
			name := path.Base(path.Clean("/" + sc.Path))
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(sc.Data), 0o644); err != nil {
				return false, err
			}
			if err := os.Chmod(p, 0o644); err != nil { // whatever the umask
				return false, err
			}
			t := b.now()
			if err := os.Chtimes(p, t, t); err != nil {
				return false, err
			}
			names = append(names, name)
		}
		hs, _, err := resolve(dir, names, nil)
		if err != nil {
			return false, err
		}
		srcs = append(srcs, hs...)
		multi = multi || len(sd.SourcePaths)+len(sd.SourceContents) > 1
	}
	dest := sd.DestPath
	destDir := strings.HasSuffix(dest, "/") || dest == "." || multi
	if !path.IsAbs(dest) {
		dest = path.Join("/", st.cfg.Config.WorkingDir, dest)
	}
	dest = path.Clean(dest)
	if isAdd && len(urls) == 0 && len(gits) == 0 && len(srcs) == 1 && isArchive(srcs[0].host) {
		return b.addArchive(st, srcs[0], dest, text, history)
	}
	sum, err := checksum(srcs)
	if err != nil {
		return false, err
	}
	parts := []string{st.key, "COPY", text, sum}
	var git gitRunner
	if len(gits) > 0 {
		// A repository's contents go under the destination. The commit
		// each ref names now is in the key, as in BuildKit: the step is
		// reused, with nothing fetched, while it stays the same.
		destDir = true
		sock, stop, err := b.gitSSH(gits)
		if err != nil {
			return false, err
		}
		defer stop()
		git.sshSock = sock
		parts = append(parts, "GIT")
		for _, g := range gits {
			git.src = g.src
			if err := g.resolve(ctx, git); err != nil {
				return false, fmt.Errorf("%s: %w", b.o.DockerfileName, err)
			}
			parts = append(parts, g.key())
		}
	}
	key := keyOf(parts...)
	if b.useCache(st, key) {
		return true, nil
	}
	for _, g := range gits {
		dir, err := os.MkdirTemp("", "tug-build-git-")
		if err != nil {
			return false, err
		}
		defer os.RemoveAll(dir)
		git.src = g.src
		src, err := g.checkout(ctx, git, dir)
		if err != nil {
			return false, fmt.Errorf("%s: %w", b.o.DockerfileName, err)
		}
		gs, _, err := resolve(src, []string{"."}, nil)
		if err != nil {
			return false, fmt.Errorf("%s: ADD %s: %w", b.o.DockerfileName, g.src, err)
		}
		if len(exclude) > 0 {
			if gs, err = excludeSources(gs, exclude); err != nil {
				return false, fmt.Errorf("%s: %w", b.o.DockerfileName, err)
			}
		}
		srcs = append(srcs, gs...)
	}
	o := copyOptions{dest: dest, destDir: destDir}
	if chown != "" {
		if o.uid, o.gid, err = b.chownIDs(st, chown); err != nil {
			return false, err
		}
	}
	if chmod != "" {
		m, err := strconv.ParseUint(chmod, 8, 32)
		if err != nil {
			return false, fmt.Errorf("%s: invalid --chmod %q: want octal, e.g. 0755", b.o.DockerfileName, chmod)
		}
		fm := fs.FileMode(m)
		o.chmod = &fm
	}
	if b.o.Timestamp != nil {
		t := b.o.Timestamp.Unix()
		o.mtime = func(fi fs.FileInfo) int64 { return min(fi.ModTime().Unix(), t) }
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, srcs, o)) }()
	top, diffID, err := b.store.AddLayer(st.top, pr)
	pr.Close()
	if wh := (*whiteoutError)(nil); errors.As(err, &wh) {
		return false, fmt.Errorf("%s: %s: %w", b.o.DockerfileName, strings.ToUpper(strings.Fields(text)[0]), wh)
	}
	if err != nil {
		return false, err
	}
	b.layerStep(st, key, top, diffID, history)
	return false, nil
}

// fromSource finds COPY --from's stage (by name or index) or image and
// returns its top layer.
func (b *builder) fromSource(ctx context.Context, from string) (string, error) {
	for j := range b.stages {
		if (b.stages[j].Name != "" && strings.EqualFold(b.stages[j].Name, from)) || strconv.Itoa(j) == from {
			st, err := b.stage(ctx, j)
			if err != nil {
				return "", err
			}
			return st.top, nil
		}
	}
	img, err := b.baseImage(ctx, from)
	if err != nil {
		return "", fmt.Errorf("COPY --from=%s: %w", from, err)
	}
	return img.TopLayer, nil
}

// chownIDs resolves --chown's user and group through the stage's own
// /etc/passwd and /etc/group.
func (b *builder) chownIDs(st *stageState, chown string) (int, int, error) {
	root := "/nonexistent-scratch"
	if st.top != "" {
		p, err := b.store.MountLayer(st.top)
		if err != nil {
			return 0, 0, err
		}
		defer b.store.UnmountLayer(st.top)
		root = p
	}
	spec := chown
	if u, g, ok := strings.Cut(chown, ":"); ok && g == "" {
		spec = u
	}
	user, err := rt.ResolveUser(root, spec)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: --chown=%s: %w", b.o.DockerfileName, chown, err)
	}
	gid := user.GID
	if _, g, ok := strings.Cut(chown, ":"); !ok || g == "" {
		// Docker: a user without a group means the same number as gid.
		gid = user.UID
	}
	return int(user.UID), int(gid), nil
}

// excludeSources drops the sources that COPY --exclude's patterns match
// (.dockerignore's syntax, relative to what is copied: a directory
// source's contents, or a file's name), and everything below a matched
// directory.
func excludeSources(srcs []source, patterns []string) ([]source, error) {
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("invalid --exclude pattern: %w", err)
	}
	kept := srcs[:0]
	for _, s := range srcs {
		if m, err := pm.MatchesOrParentMatches(s.rel); err == nil && m {
			continue
		}
		kept = append(kept, s)
	}
	return kept, nil
}
