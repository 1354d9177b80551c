package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/util/gitutil"
	"github.com/moby/buildkit/util/urlutil"
)

// gitSource is an ADD source naming a git repository, as BuildKit reads
// it (dfgitutil.ParseGitRef): REMOTE[#REF[:SUBDIR]] with REMOTE an
// https://, http://, git:// or ssh:// URL (http and https ones ending in
// .git) or user@host:path, and the query form ?ref=, ?branch=, ?tag=,
// ?subdir=, ?checksum=, ?keep-git-dir=, ?submodules=.
type gitSource struct {
	src        string // as written
	remote     string
	ref        string // "" for the remote's HEAD
	subdir     string
	checksum   string // a prefix the commit must have
	keepGitDir *bool
	submodules bool
	overSSH    bool

	commit  string // resolved
	usedRef string
}

// parseGitSource reports whether an ADD source names a git repository,
// and parses it; the error is for a source that does but is malformed.
func parseGitSource(src string) (*gitSource, bool, error) {
	if strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../") || strings.HasPrefix(src, "github.com/") {
		return nil, false, nil
	}
	u, err := gitutil.ParseURL(src)
	if err != nil {
		return nil, false, nil
	}
	switch u.Scheme {
	case gitutil.HTTPProtocol, gitutil.HTTPSProtocol:
		if !strings.HasSuffix(u.Path, ".git") {
			return nil, false, nil
		}
	}
	g := &gitSource{src: src, remote: u.Remote, submodules: true, overSSH: u.Scheme == gitutil.SSHProtocol}
	if u.Opts != nil {
		g.ref, g.subdir = u.Opts.Ref, u.Opts.Subdir
	}
	if err := g.query(u.Query); err != nil {
		return nil, true, fmt.Errorf("ADD %s: %w", src, err)
	}
	return g, true, nil
}

// query applies the query form's keys, as dfgitutil's loadQuery does.
func (g *gitSource) query(q url.Values) error {
	var tag, branch string
	boolValue := func(k string, v []string) (bool, error) {
		if len(v) == 0 || v[0] == "" {
			return true, nil
		}
		b, err := strconv.ParseBool(v[0])
		if err != nil {
			return false, fmt.Errorf("invalid %s value %q", k, v[0])
		}
		return b, nil
	}
	for k, v := range q {
		if len(v) > 1 {
			return fmt.Errorf("query %q has several values", k)
		}
		val := ""
		if len(v) == 1 {
			val = v[0]
		}
		if val == "" && k != "keep-git-dir" && k != "submodules" {
			return fmt.Errorf("query %q has no value", k)
		}
		switch k {
		case "ref":
			if g.ref != "" && g.ref != val {
				return fmt.Errorf("ref conflicts: %q vs %q", g.ref, val)
			}
			g.ref = val
		case "tag":
			tag = val
		case "branch":
			branch = val
		case "subdir":
			if g.subdir != "" && g.subdir != val {
				return fmt.Errorf("subdir conflicts: %q vs %q", g.subdir, val)
			}
			g.subdir = val
		case "checksum", "commit":
			g.checksum = val
		case "keep-git-dir":
			b, err := boolValue(k, v)
			if err != nil {
				return err
			}
			g.keepGitDir = &b
		case "submodules":
			b, err := boolValue(k, v)
			if err != nil {
				return err
			}
			g.submodules = b
		default:
			return fmt.Errorf("query %q is not supported by tug (want ref, branch, tag, subdir, checksum, keep-git-dir or submodules)", k)
		}
	}
	if tag != "" && branch != "" {
		return errors.New("branch conflicts with tag")
	}
	for prefix, name := range map[string]string{"refs/tags/": tag, "refs/heads/": branch} {
		if name == "" {
			continue
		}
		if !strings.HasPrefix(name, prefix) {
			name = prefix + name
		}
		if g.ref != "" && g.ref != name {
			return fmt.Errorf("ref conflicts: %q vs %q", g.ref, name)
		}
		g.ref = name
	}
	return nil
}

// git runs the host's git for a git source, with BuildKit's environment:
// no prompts, no system or user configuration, ssh without a config file
// and with the agent of --ssh default if given.
type gitRunner struct {
	src     string
	sshSock string
}

var errNoGit = errors.New("the git command is not installed: install the git package (e.g. apt-get install git, dnf install git or apk add git)")

func (r gitRunner) run(ctx context.Context, dir string, args ...string) (string, error) {
	bin, err := exec.LookPath("git")
	if err != nil {
		return "", fmt.Errorf("ADD %s: %w", r.src, errNoGit)
	}
	for {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = dir
		cmd.Env = []string{
			"PATH=" + os.Getenv("PATH"),
			"GIT_TERMINAL_PROMPT=0",
			"GIT_SSH_COMMAND=ssh -F /dev/null -o StrictHostKeyChecking=no",
			"LC_ALL=C",
			"GIT_CONFIG_NOSYSTEM=1",
			"HOME=/dev/null",
			"GIT_CONFIG_GLOBAL=/dev/null",
		}
		for _, k := range proxyArgs {
			if v, ok := os.LookupEnv(k); ok {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
		}
		if r.sshSock != "" {
			cmd.Env = append(cmd.Env, "SSH_AUTH_SOCK="+r.sshSock)
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.WaitDelay = 5 * time.Second
		err := cmd.Run()
		if err == nil {
			return stdout.String(), nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		// A dumb HTTP server (or an old one) cannot fetch shallow: fetch
		// it all, as BuildKit does.
		msg := stderr.String()
		if strings.Contains(msg, "--depth") || strings.Contains(msg, "shallow") {
			if rest := withoutDepth(args); len(rest) < len(args) {
				args = rest
				continue
			}
		}
		return "", fmt.Errorf("ADD %s: git %s: %s", r.src, args[0], gitMessage(msg, err))
	}
}

func withoutDepth(args []string) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		if a != "--depth=1" {
			out = append(out, a)
		}
	}
	return out
}

// gitMessage is what git said, on one line.
func gitMessage(stderr string, err error) string {
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "hint:") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return err.Error()
	}
	return strings.Join(lines, "; ")
}

// resolve finds the commit the source names, as BuildKit does before it
// fetches anything: a full commit id as it is, else the remote's ref
// (a branch before a tag of the same name, an annotated tag's commit)
// through git ls-remote. The commit is what the step's cache key has.
func (g *gitSource) resolve(ctx context.Context, r gitRunner) error {
	if gitutil.IsCommitSHA(g.ref) {
		g.commit, g.usedRef = g.ref, g.ref
		return g.verify()
	}
	ref := g.ref
	if ref == "" {
		ref = "HEAD"
	}
	out, err := r.run(ctx, "", "ls-remote", "--", g.remote, ref, ref+"^{}")
	if err != nil {
		return g.sshHint(err)
	}
	var (
		partial   = "refs/" + strings.TrimPrefix(ref, "refs/")
		head      = "refs/heads/" + strings.TrimPrefix(ref, "refs/heads/")
		tag       = "refs/tags/" + strings.TrimPrefix(ref, "refs/tags/")
		annotated = tag + "^{}"
	)
	var sha, headSha, tagSha, annotatedSha, used string
	for _, line := range strings.Split(out, "\n") {
		lineSha, lineRef, _ := strings.Cut(line, "\t")
		switch {
		case ref == "HEAD" && lineRef == "HEAD":
			sha, used = lineSha, "HEAD"
		case lineRef == head:
			headSha = lineSha
		case lineRef == tag:
			tagSha = lineSha
		case lineRef == annotated:
			annotatedSha = lineSha
		case lineRef == partial:
			sha, used = lineSha, lineRef
		}
	}
	if sha == "" && headSha != "" {
		sha, used = headSha, head
	}
	if sha != "" {
		annotatedSha = ""
	}
	if sha == "" && tagSha != "" {
		sha, used = tagSha, tag
	}
	if sha == "" {
		return fmt.Errorf("ADD %s: the repository has no branch or tag %q", g.src, ref)
	}
	g.commit, g.usedRef = sha, used
	if annotatedSha != "" {
		g.commit = annotatedSha // the tag's commit
	}
	return g.verify()
}

// verify checks ADD --checksum (or ?checksum=): a prefix of the commit
// (or of the annotated tag's own id).
func (g *gitSource) verify() error {
	if g.checksum == "" || strings.HasPrefix(g.commit, g.checksum) {
		return nil
	}
	return fmt.Errorf("ADD %s: checksum mismatch: the ref is commit %s, --checksum says %s", g.src, g.commit, g.checksum)
}

func (g *gitSource) sshHint(err error) error {
	if g.overSSH {
		return fmt.Errorf("%w (a repository over ssh uses the agent of tug build --ssh default)", err)
	}
	return err
}

// key is what the step's cache key has of the source.
func (g *gitSource) key() string {
	keep := g.keepGitDir != nil && *g.keepGitDir
	return fmt.Sprintf("%s|%s|%s|%v|%v", g.remote, g.commit, path.Clean("/"+g.subdir), keep, g.submodules)
}

// checkout fetches the resolved commit into dir/checkout and returns the
// directory whose contents ADD copies: the checkout, or its subdir. The
// .git directory is kept only with keep-git-dir (and no subdir), as in
// BuildKit: a repository whose origin is the remote (credentials
// removed), HEAD detached at the commit.
func (g *gitSource) checkout(ctx context.Context, r gitRunner, dir string) (string, error) {
	co := filepath.Join(dir, "checkout")
	if err := os.MkdirAll(co, 0o755); err != nil {
		return "", err
	}
	if _, err := r.run(ctx, co, "-c", "init.defaultBranch=master", "init", "-q"); err != nil {
		return "", err
	}
	// origin, for submodules' relative URLs too.
	if _, err := r.run(ctx, co, "remote", "add", "origin", g.remote); err != nil {
		return "", err
	}
	refspec := g.commit
	if g.usedRef != g.commit && g.usedRef != "HEAD" {
		refspec = "+" + g.usedRef + ":" + g.usedRef
	} else if g.usedRef == "HEAD" {
		refspec = "HEAD"
	}
	if _, err := r.run(ctx, co, "fetch", "-q", "--depth=1", "--no-tags", "--", "origin", refspec); err != nil {
		return "", g.sshHint(err)
	}
	if _, err := r.run(ctx, co, "cat-file", "-e", g.commit+"^{commit}"); err != nil {
		return "", fmt.Errorf("ADD %s: the remote moved from commit %s while it was fetched: build again", g.src, g.commit)
	}
	if _, err := r.run(ctx, co, "-c", "advice.detachedHead=false", "checkout", "-q", g.commit); err != nil {
		return "", err
	}
	if g.submodules {
		if _, err := os.Stat(filepath.Join(co, ".gitmodules")); err == nil {
			if _, err := r.run(ctx, co, "submodule", "update", "--init", "--recursive", "--depth=1"); err != nil {
				return "", g.sshHint(err)
			}
		}
	}
	keep := g.keepGitDir != nil && *g.keepGitDir && path.Clean("/"+g.subdir) == "/"
	if keep {
		if _, err := r.run(ctx, co, "remote", "set-url", "origin", urlutil.RedactCredentials(g.remote)); err != nil {
			return "", err
		}
		if _, err := r.run(ctx, co, "reflog", "expire", "--all", "--expire=now"); err != nil {
			return "", err
		}
		_ = os.Remove(filepath.Join(co, ".git", "FETCH_HEAD"))
	} else {
		// The checkout's files only: the .git directory, and the .git
		// files of submodules (git allows no other file of that name).
		err := filepath.WalkDir(co, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Name() == ".git" {
				if err := os.RemoveAll(p); err != nil {
					return err
				}
				if d.IsDir() {
					return filepath.SkipDir
				}
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("ADD %s: %w", g.src, err)
		}
	}
	src := co
	if sub := path.Clean("/" + g.subdir); sub != "/" {
		p, err := securejoin.SecureJoin(co, sub)
		if err != nil {
			return "", err
		}
		fi, err := os.Stat(p)
		if err != nil || !fi.IsDir() {
			return "", fmt.Errorf("ADD %s: the repository has no directory %s at commit %s", g.src, sub[1:], g.commit)
		}
		src = p
	}
	return src, nil
}

// gitSSH serves the agent of --ssh default to git when a source is a
// repository over ssh, as BuildKit does; it returns the socket ("" for
// none) and what stops it.
func (b *builder) gitSSH(gits []*gitSource) (string, func(), error) {
	a, ok := b.o.SSH["default"]
	need := false
	for _, g := range gits {
		need = need || g.overSSH
	}
	if !ok || !need {
		return "", func() {}, nil
	}
	dir, err := os.MkdirTemp("", "tug-build-git-ssh-")
	if err != nil {
		return "", nil, err
	}
	sock := filepath.Join(dir, "agent.sock")
	l, err := a.listen(sock, 0, 0, 0o600)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return sock, func() { l.close(); os.RemoveAll(dir) }, nil
}
