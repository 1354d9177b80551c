//go:build e2e

package main_test

import (
	"archive/tar"
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tugcli/tug/fixture"
)

// gitRepo is a bare repository served over git's dumb HTTP protocol by a
// file server on loopback, with a work tree to commit from.
type gitRepo struct {
	t    *testing.T
	work string
	url  string // http://127.0.0.1:PORT/repo.git

	mu       sync.Mutex
	requests []string
}

func newGitRepo(t *testing.T, files map[string]string) *gitRepo {
	t.Helper()
	root := t.TempDir()
	r := &gitRepo{t: t, work: filepath.Join(root, "work")}
	r.git(root, "init", "-q", "-b", "main", r.work)
	r.commit(files, "first")
	r.git(r.work, "tag", "-a", "v1", "-m", "version 1")
	r.git(root, "clone", "-q", "--bare", r.work, filepath.Join(root, "repo.git"))
	r.git(filepath.Join(root, "repo.git"), "update-server-info")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := http.FileServer(http.Dir(root))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests = append(r.requests, req.URL.Path)
		r.mu.Unlock()
		fs.ServeHTTP(w, req)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	r.url = "http://" + ln.Addr().String() + "/repo.git"
	return r
}

func (r *gitRepo) git(dir string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=tug", "-c", "user.email=tug@example.com"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files in the work tree and commits them.
func (r *gitRepo) commit(files map[string]string, msg string) {
	r.t.Helper()
	for name, body := range files {
		p := filepath.Join(r.work, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git(r.work, "add", "-A")
	r.git(r.work, "commit", "-q", "-m", msg)
}

// push updates the served repository with the work tree's main.
func (r *gitRepo) push() {
	r.t.Helper()
	bare := filepath.Join(filepath.Dir(r.work), "repo.git")
	r.git(r.work, "push", "-q", bare, "main")
	r.git(bare, "update-server-info")
}

// addSubmodule serves a new repository NAME.git beside this one and adds
// it to main as the submodule NAME.
func (r *gitRepo) addSubmodule(name string, files map[string]string) {
	r.t.Helper()
	root := filepath.Dir(r.work)
	work := filepath.Join(root, name+"-work")
	r.git(root, "init", "-q", "-b", "main", work)
	for f, body := range files {
		if err := os.WriteFile(filepath.Join(work, f), []byte(body), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git(work, "add", "-A")
	r.git(work, "commit", "-q", "-m", "sub")
	bare := filepath.Join(root, name+".git")
	r.git(root, "clone", "-q", "--bare", work, bare)
	r.git(bare, "update-server-info")
	r.git(r.work, "submodule", "add", "-q", strings.TrimSuffix(r.url, "repo.git")+name+".git", name)
	r.git(r.work, "commit", "-q", "-m", "add "+name)
	r.push()
}

// fetched reports whether git objects were downloaded since the mark.
func (r *gitRepo) fetchedSince(mark int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.requests[mark:] {
		if strings.Contains(p, "/objects/") {
			return true
		}
	}
	return false
}

func (r *gitRepo) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.requests)
}

// ADD of a git repository (dumb HTTP, as `git update-server-info` on a
// bare repository makes it), rootless and as root: a branch, an
// annotated tag with a subdirectory, --keep-git-dir, no ref (HEAD), a
// submodule. Only the checkout's files land, without .git unless kept.
// The step is reused while the ref names the same commit, with no object
// fetched, and runs again when the branch moves; a missing ref and git's
// absence are one clear error line each.
func TestBuild4AddGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	repo := newGitRepo(t, map[string]string{"top.txt": "top v1\n", "sub/inner.txt": "inner v1\n"})
	df := "FROM " + busybox + "\n" +
		"ADD " + repo.url + "#v1:sub /sub\n" +
		"ADD " + repo.url + "#main /src\n" +
		"ADD --keep-git-dir=true " + repo.url + "#main /kept\n" +
		"CMD find /src /sub | sort; cat /src/top.txt; test -f /kept/.git/HEAD && test -f /kept/top.txt && echo kept-git\n"
	for mode, u := range map[string]fixture.User{"rootless": fixture.RootlessUser(t), "root": fixture.Root()} {
		t.Run(mode, func(t *testing.T) {
			store := pulled(t, u)
			ctx := buildContext(t, u, map[string]string{"Dockerfile": df})
			mustTug(t, u, store, "build", "-q", "-t", "fromgit", ctx)
			want := "/src\n/src/sub\n/src/sub/inner.txt\n/src/top.txt\n/sub\n/sub/inner.txt\ntop v1\nkept-git"
			if got := runOut(t, u, store, "--network", "none", "fromgit"); got != want {
				t.Fatalf("the image built from git holds:\n%s\nwant:\n%s", got, want)
			}
		})
	}

	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{"Dockerfile": df})
	mustTug(t, u, store, "build", "-t", "fromgit", ctx)
	mark := repo.mark()
	res := mustTug(t, u, store, "build", "--progress", "plain", "-t", "fromgit", ctx)
	if n := strings.Count(res.Stderr, "CACHED"); n != 4 {
		t.Fatalf("rebuild with the same commits: %d steps CACHED, want 4:\n%s", n, res.Stderr)
	}
	if repo.fetchedSince(mark) {
		t.Fatal("a rebuild with the same commits fetched git objects")
	}
	// main moves; v1 does not.
	repo.commit(map[string]string{"top.txt": "top v2\n"}, "second")
	repo.push()
	mark = repo.mark()
	res = mustTug(t, u, store, "build", "--progress", "plain", "-t", "fromgit", ctx)
	if !repo.fetchedSince(mark) {
		t.Fatal("the build after main moved fetched no git object")
	}
	for _, want := range []string{"[2/5] CACHED", "[3/5] DONE", "[4/5] DONE"} {
		if !strings.Contains(res.Stderr, want) {
			t.Fatalf("after main moved, the build lacks %q:\n%s", want, res.Stderr)
		}
	}
	if got := runOut(t, u, store, "--network", "none", "fromgit", "cat", "/src/top.txt", "/kept/top.txt", "/sub/inner.txt"); got != "top v2\ntop v2\ninner v1" {
		t.Fatalf("after main moved the image holds %q", got)
	}

	// No ref: the remote's HEAD (main, now at the second commit).
	root := fixture.Root()
	rstore := pulled(t, root)
	head := buildContext(t, root, map[string]string{"Dockerfile": "FROM " + busybox + "\nADD " + repo.url + " /head/\n"})
	mustTug(t, root, rstore, "build", "-q", "-t", "head", head)
	if got := runOut(t, root, rstore, "--network", "none", "head", "cat", "/head/top.txt"); got != "top v2" {
		t.Fatalf("ADD of the repository's HEAD gave %q", got)
	}

	// A submodule comes along (checked out, without its .git file).
	repo.addSubmodule("mod", map[string]string{"m.txt": "in the submodule\n"})
	withSub := buildContext(t, root, map[string]string{"Dockerfile": "FROM " + busybox + "\nADD " + repo.url + "#main /ws\n"})
	mustTug(t, root, rstore, "build", "-q", "-t", "withsub", withSub)
	if got := runOut(t, root, rstore, "--network", "none", "withsub", "sh", "-c", "cat /ws/mod/m.txt; find /ws -name .git"); got != "in the submodule" {
		t.Fatalf("ADD of a repository with a submodule gave %q", got)
	}

	// A ref the repository lacks, and a missing git binary: one Error line.
	bad := buildContext(t, root, map[string]string{"Dockerfile": "FROM " + busybox + "\nADD " + repo.url + "#nosuchbranch /x\n"})
	res = tug(t, root, rstore, "build", "-q", bad)
	t.Logf("missing ref: %s", res.Stderr)
	if res.Code != 1 || strings.Count(res.Stderr, "Error:") != 1 || !strings.Contains(res.Stderr, `no branch or tag "nosuchbranch"`) {
		t.Fatalf("ADD of a missing ref: exit %d\n%s", res.Code, res.Stderr)
	}
	nogit := root
	nogit.Env = append(append([]string{}, root.Env...), "PATH="+t.TempDir())
	res = tug(t, nogit, rstore, "build", "-q", "--network", "none", ctx)
	t.Logf("no git: %s", res.Stderr)
	if res.Code != 1 || strings.Count(res.Stderr, "Error:") != 1 || !strings.Contains(lastLine(res.Stderr), "git command is not installed: install the git package") {
		t.Fatalf("ADD from git without git: exit %d\n%s", res.Code, res.Stderr)
	}
}

// agentcheck asks the agent at $SSH_AUTH_SOCK for its keys (printing
// each one's SHA256 fingerprint, as ssh-keygen -l does) and then to
// remove them all, which a build step's agent must refuse. The busybox
// image has no ssh client; this static program stands in for one.
const agentcheck = `package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
)

func ask(c net.Conn, msg ...byte) []byte {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(msg)))
	c.Write(append(n[:], msg...))
	if _, err := io.ReadFull(c, n[:]); err != nil {
		fmt.Println("agent:", err)
		os.Exit(1)
	}
	b := make([]byte, binary.BigEndian.Uint32(n[:]))
	io.ReadFull(c, b)
	return b
}

func main() {
	c, err := net.Dial("unix", os.Getenv("SSH_AUTH_SOCK"))
	if err != nil {
		fmt.Println("dial:", err)
		os.Exit(1)
	}
	r := ask(c, 11) // SSH_AGENTC_REQUEST_IDENTITIES
	if r[0] != 12 {
		fmt.Println("unexpected answer", r[0])
		os.Exit(1)
	}
	n, p := binary.BigEndian.Uint32(r[1:]), r[5:]
	fmt.Printf("agent keys: %d\n", n)
	for i := uint32(0); i < n; i++ {
		l := binary.BigEndian.Uint32(p)
		sum := sha256.Sum256(p[4 : 4+l])
		p = p[4+l:]
		p = p[4+binary.BigEndian.Uint32(p):]
		fmt.Printf("key SHA256:%s\n", base64.RawStdEncoding.EncodeToString(sum[:]))
	}
	if r := ask(c, 19); r[0] == 5 { // SSH_AGENTC_REMOVE_ALL_IDENTITIES -> SSH_AGENT_FAILURE
		fmt.Println("remove-all refused")
	} else {
		fmt.Println("remove-all allowed")
	}
}
`

// buildAgentcheck compiles agentcheck, statically, into dir.
func buildAgentcheck(t *testing.T, dir string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "agentcheck.go")
	os.WriteFile(src, []byte(agentcheck), 0o644)
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "agentcheck"), src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building agentcheck: %v\n%s", err, out)
	}
}

// startAgent starts ssh-agent as u with a new ed25519 key added, and
// returns its socket, the key file and the key's fingerprint.
func startAgent(t *testing.T, u fixture.User) (sock, key, fingerprint string) {
	t.Helper()
	dir := fixture.TempDirFor(t, u)
	sock, key = filepath.Join(dir, "agent.sock"), filepath.Join(dir, "id_ed25519")
	agent := u.Command(t.Context(), "ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatalf("starting ssh-agent: %v", err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ssh-agent made no socket")
		}
		time.Sleep(20 * time.Millisecond)
	}
	fixture.MustRun(t, u, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tug-e2e", "-f", key)
	withSock := u
	withSock.Env = append(append([]string{}, u.Env...), "SSH_AUTH_SOCK="+sock)
	fixture.MustRun(t, withSock, "ssh-add", "-q", key)
	fp := fixture.MustRun(t, u, "ssh-keygen", "-l", "-E", "sha256", "-f", key+".pub").Stdout
	fields := strings.Fields(fp)
	if len(fields) < 2 {
		t.Fatalf("ssh-keygen -l printed %q", fp)
	}
	return sock, key, fields[1]
}

// RUN --mount=type=ssh reaches a real ssh-agent through --ssh default
// ($SSH_AUTH_SOCK) or a key file: the step finds a socket at
// /run/buildkit/ssh_agent.0 (or target=) named by SSH_AUTH_SOCK, owned
// as uid= says, whose agent lists the key and refuses to remove it; no
// trace of it is left in the image; required=true without --ssh fails
// with one Error line.
func TestBuild4SSH(t *testing.T) {
	if _, err := exec.LookPath("ssh-agent"); err != nil {
		t.Skip("ssh-agent is not installed")
	}
	for mode, u := range map[string]fixture.User{"rootless": fixture.RootlessUser(t), "root": fixture.Root()} {
		t.Run(mode, func(t *testing.T) {
			store := pulled(t, u)
			sock, key, fp := startAgent(t, u)
			ctx := buildContext(t, u, map[string]string{
				"Dockerfile": "FROM " + busybox + "\n" +
					"COPY agentcheck /usr/local/bin/agentcheck\n" +
					"RUN --mount=type=ssh echo \"sock=$SSH_AUTH_SOCK\" && test -S \"$SSH_AUTH_SOCK\" && agentcheck\n" +
					"RUN --mount=type=ssh,target=/tmp/agent.sock,uid=1000,mode=0640 stat -c 'custom=%n %u %a' /tmp/agent.sock && echo \"env=$SSH_AUTH_SOCK\"\n" +
					"USER user\n" +
					"RUN --mount=type=ssh,uid=1000 echo \"as $(id -u):\" && agentcheck\n" +
					"CMD for p in /run/buildkit /tmp/agent.sock; do [ -e $p ] && echo LEFT $p; done; echo checked\n",
			})
			buildAgentcheck(t, ctx)
			fixture.MustRun(t, fixture.Root(), "chown", u.Name, filepath.Join(ctx, "agentcheck"))
			ue := u
			ue.Env = append(append([]string{}, u.Env...), "SSH_AUTH_SOCK="+sock)
			res := mustTug(t, ue, store, "build", "--progress", "plain", "--network", "none", "--ssh", "default", "-t", "withssh", ctx)
			for _, want := range []string{"sock=/run/buildkit/ssh_agent.0", "agent keys: 1", "key " + fp, "remove-all refused",
				"custom=/tmp/agent.sock 1000 640", "env=/tmp/agent.sock", "as 1000:"} {
				if !strings.Contains(res.Stderr, want) {
					t.Fatalf("the build output lacks %q:\n%s", want, res.Stderr)
				}
			}
			if strings.Contains(res.Stderr, "remove-all allowed") || strings.Count(res.Stderr, "key "+fp) != 2 {
				t.Fatalf("the steps' agent:\n%s", res.Stderr)
			}
			if got := runOut(t, u, store, "--network", "none", "withssh"); got != "checked" {
				t.Fatalf("the image holds the ssh mount points:\n%s", got)
			}
			if got := fixture.MustRun(t, ue, "ssh-add", "-l").Stdout; !strings.Contains(got, fp) {
				t.Fatalf("the user's agent lost its key: %s", got)
			}

			// A key file instead of an agent.
			res = mustTug(t, u, store, "build", "--progress", "plain", "--network", "none", "--no-cache", "--ssh", "default="+key, ctx)
			if !strings.Contains(res.Stderr, "key "+fp) || !strings.Contains(res.Stderr, "agent keys: 1") {
				t.Fatalf("--ssh default=KEY: the step's agent:\n%s", res.Stderr)
			}

			// Without --ssh: an optional mount is left out, a required one
			// fails the build.
			opt := buildContext(t, u, map[string]string{"Dockerfile": "FROM " + busybox + "\nRUN --mount=type=ssh test ! -e \"$SSH_AUTH_SOCK\" && echo no-agent\n"})
			if res := mustTug(t, u, store, "build", "--progress", "plain", "--network", "none", opt); !strings.Contains(res.Stderr, "no-agent") {
				t.Fatalf("an optional ssh mount without --ssh:\n%s", res.Stderr)
			}
			req := buildContext(t, u, map[string]string{"Dockerfile": "FROM " + busybox + "\nRUN --mount=type=ssh,required=true true\n"})
			res = tug(t, u, store, "build", "-q", "--network", "none", req)
			t.Logf("%s", res.Stderr)
			if res.Code != 1 || strings.Count(res.Stderr, "Error:") != 1 || !strings.Contains(lastLine(res.Stderr), "tug build --ssh default") {
				t.Fatalf("a required ssh mount without --ssh: exit %d\n%s", res.Code, res.Stderr)
			}
		})
	}
}

// RUN --mount=type=cache,from= starts a new cache from a stage's (or an
// image's) source path; it is still a cache, kept from build to build
// (not seeded again) and in no layer.
func TestBuild4CacheMountFrom(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + " AS seed\n" +
			"RUN mkdir -p /deps/sub && echo seeded > /deps/sub/file && echo top > /deps/top && chown 1000:1000 /deps/top\n" +
			"FROM " + busybox + "\n" +
			"RUN --mount=type=cache,target=/cache,from=seed,source=/deps cat /cache/sub/file && stat -c %u /cache/top && echo run >> /cache/log && cp /cache/log /log1\n" +
			"RUN --mount=type=cache,target=/img,from=" + busybox + ",source=/etc cat /img/tug-fixture > /fromimage\n" +
			"RUN --mount=type=cache,target=/cache ls /cache > /plain\n" +
			"CMD [ -e /cache ] && echo LEFT /cache; cat /log1 /fromimage; echo plain: $(cat /plain)\n",
	})
	res := mustTug(t, u, store, "build", "--progress", "plain", "--network", "none", "-t", "cachefrom", ctx)
	if !strings.Contains(res.Stderr, "seeded\n") || !strings.Contains(res.Stderr, "1000\n") {
		t.Fatalf("the cache from the stage:\n%s", res.Stderr)
	}
	if got := runOut(t, u, store, "--network", "none", "cachefrom"); got != "run\n"+strings.TrimSpace(fixture.BusyboxMarker)+"\nplain:" {
		t.Fatalf("the image printed:\n%s", got)
	}
	// The cache lives on: a second run appends to its log.
	mustTug(t, u, store, "build", "-q", "--no-cache", "--network", "none", "-t", "cachefrom", ctx)
	if got := runOut(t, u, store, "--network", "none", "cachefrom", "cat", "/log1"); got != "run\nrun" {
		t.Fatalf("after a second build the cache's log is %q", got)
	}
}

// tug history shows what BuildKit records for each step: ARG with its
// value, RUN with the stage's ARGs as |N K=V, the shell form through
// the shell, config steps expanded and without " # buildkit", COPY
// without --from.
func TestBuild4History(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + " AS first\n" +
			"RUN echo first > /first\n" +
			"FROM " + busybox + "\n" +
			"ARG FOO=bar\n" +
			"ARG EMPTY\n" +
			"ENV B=fromenv\n" +
			"ENV A=$B\n" +
			"LABEL l=\"$B x\"\n" +
			"WORKDIR /w/$B\n" +
			"COPY --chmod=644 f.txt $B/\n" +
			"COPY --from=first /first /\n" +
			"RUN echo $FOO > /x\n" +
			"RUN [\"echo\", \"exec\"]\n" +
			"RUN <<EOF\n#!/bin/sh\necho script\nEOF\n" +
			"EXPOSE 8080\n" +
			"USER user\n" +
			"ENTRYPOINT [\"sh\"]\n" +
			"CMD echo $B\n",
		"f.txt": "f\n",
	})
	mustTug(t, u, store, "build", "-q", "--network", "none", "--build-arg", "FOO=baz", "-t", "hist4", ctx)
	got := mustTug(t, u, store, "history", "--no-trunc", "--format", "{{.CreatedBy}}", "hist4").Stdout
	want := strings.Join([]string{
		`CMD ["/bin/sh" "-c" "echo $B"]`,
		`ENTRYPOINT ["sh"]`,
		`USER user`,
		`EXPOSE [8080/tcp]`,
		`RUN |2 FOO=baz EMPTY= /bin/sh -c /dev/pipes/EOF # buildkit`,
		`RUN |2 FOO=baz EMPTY= echo exec # buildkit`,
		`RUN |2 FOO=baz EMPTY= /bin/sh -c echo $FOO > /x # buildkit`,
		`COPY /first / # buildkit`,
		`COPY --chmod=644 f.txt fromenv/ # buildkit`,
		`WORKDIR /w/fromenv`,
		`LABEL l=fromenv x`,
		`ENV A=fromenv`,
		`ENV B=fromenv`,
		`ARG EMPTY`,
		`ARG FOO=baz`,
	}, "\n")
	t.Logf("history:\n%s", got)
	if !strings.HasPrefix(got, want+"\n") {
		t.Fatalf("history --no-trunc:\n%s\nwant it to start with:\n%s", got, want)
	}
}

// ADD of a local archive holding whiteout entries (.wh.NAME, or the
// opaque-directory marker) fails with one Error line naming the archive
// and the entry, instead of deleting the base image's files; COPY of a
// file named like a whiteout fails the same way.
func TestBuild4AddArchiveWhiteout(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	for _, entry := range []string{"etc/.wh.tug-fixture", "home/.wh..wh..opq"} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "etc/added", Mode: 0o644, Size: 3})
		tw.Write([]byte("ok\n"))
		tw.WriteHeader(&tar.Header{Name: entry, Mode: 0o644})
		tw.Close()
		ctx := buildContext(t, u, map[string]string{
			"Dockerfile": "FROM " + busybox + "\nADD evil.tar /\nCMD cat /etc/tug-fixture\n",
			"evil.tar":   buf.String(),
		})
		res := tug(t, u, store, "build", "-q", "--network", "none", "-t", "evil", ctx)
		t.Logf("%s", res.Stderr)
		base := filepath.Base(entry)
		if res.Code != 1 || strings.Count(res.Stderr, "Error:") != 1 ||
			!strings.HasPrefix(lastLine(res.Stderr), `Error: ADD evil.tar: the archive holds a whiteout entry "`+base+`" (`+entry+`)`) {
			t.Fatalf("ADD of an archive with %s: exit %d\n%s", entry, res.Code, res.Stderr)
		}
		if res := tug(t, u, store, "image", "inspect", "localhost/evil"); res.Code == 0 {
			t.Fatal("the refused build left an image")
		}
	}
	if got := runOut(t, u, store, "--network", "none", busybox, "cat", "/etc/tug-fixture"); got != strings.TrimSpace(fixture.BusyboxMarker) {
		t.Fatalf("the base image's file: %q", got)
	}
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile":   "FROM " + busybox + "\nCOPY dir/ /etc/\n",
		"dir/.wh.motd": "",
	})
	res := tug(t, u, store, "build", "-q", "--network", "none", ctx)
	t.Logf("%s", res.Stderr)
	if res.Code != 1 || strings.Count(res.Stderr, "Error:") != 1 || !strings.Contains(lastLine(res.Stderr), `COPY: ".wh.motd" is named like a layer whiteout`) {
		t.Fatalf("COPY of a file named .wh.motd: exit %d\n%s", res.Code, res.Stderr)
	}
}

// `tug rmi -f BASE` while a build that uses BASE runs: in a slow RUN on
// it, or while a stage FROM it waits for another stage. rmi is refused
// (as Docker refuses to remove an image a running container uses, -f or
// not), the build finishes, the store checks clean, and rmi works once
// the build is over.
func TestBuild4RmiBaseDuringBuild(t *testing.T) {
	for mode, u := range map[string]fixture.User{"rootless": fixture.RootlessUser(t), "root": fixture.Root()} {
		t.Run(mode, func(t *testing.T) {
			store := pulled(t, u)
			base := buildContext(t, u, map[string]string{"Dockerfile": "FROM " + busybox + "\nRUN echo base > /b\n"})
			mustTug(t, u, store, "build", "-q", "--network", "none", "-t", "base4", base)
			scenarios := []struct {
				name, ref, marker, dockerfile string
				files                         string // what the image's `cat /slow /f` prints
				output                        string // what its last RUN prints
			}{
				{"slow RUN on the base", busybox, "4201",
					"FROM " + busybox + "\nRUN sleep 4201 & p=$!; sleep 3; kill $p; echo slow > /slow\nCOPY f /f\nRUN cat /slow /f\n",
					"slow\nf", "slow\nf\n"},
				{"stage waiting for another", "localhost/base4", "4202",
					"FROM " + busybox + " AS dep\nRUN sleep 4202 & p=$!; sleep 3; kill $p; echo dep > /slow\nFROM localhost/base4\nCOPY --from=dep /slow /slow\nCOPY f /f\nRUN cat /b /slow /f\n",
					"dep\nf", "base\ndep\nf\n"},
			}
			for _, sc := range scenarios {
				ctx := buildContext(t, u, map[string]string{"Dockerfile": sc.dockerfile, "f": "f\n"})
				cmd := u.Command(t.Context(), tugBin, append(append([]string{}, store...), "build", "--network", "none", "-t", "racer", ctx)...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				for deadline := time.Now().Add(60 * time.Second); !processRunning("sleep\x00" + sc.marker + "\x00"); {
					if time.Now().After(deadline) {
						cmd.Process.Kill()
						cmd.Wait()
						t.Fatalf("%s: the slow step never started:\n%s", sc.name, stderr.String())
					}
					time.Sleep(20 * time.Millisecond)
				}
				rmi := tug(t, u, store, "rmi", "-f", sc.ref)
				err := cmd.Wait()
				t.Logf("%s: rmi -f: exit %d\n%s%s\nbuild: %v\n%s", sc.name, rmi.Code, rmi.Stdout, rmi.Stderr, err, stderr.String())
				if err != nil {
					t.Fatalf("%s: the build failed when rmi -f ran:\n%s", sc.name, stderr.String())
				}
				if rmi.Code != 1 || strings.Count(rmi.Stderr, "Error:") != 1 || !strings.Contains(rmi.Stderr, "being used by a running build") {
					t.Fatalf("%s: rmi -f of the base during the build: exit %d\n%s%s", sc.name, rmi.Code, rmi.Stdout, rmi.Stderr)
				}
				if got := runOut(t, u, store, "--network", "none", "racer", "cat", "/slow", "/f"); got != sc.files {
					t.Fatalf("%s: the image prints %q", sc.name, got)
				}
				if res := tug(t, u, store, "system", "check"); res.Code != 0 || strings.TrimSpace(res.Stdout) != "No problems found." {
					t.Fatalf("%s: system check after the race:\n%s%s", sc.name, res.Stdout, res.Stderr)
				}
				// The build is over: its base may go now, and the next
				// build (pulling it again) works.
				mustTug(t, u, store, "rmi", "-f", sc.ref)
				if sc.ref == "localhost/base4" {
					mustTug(t, u, store, "build", "-q", "--network", "none", "-t", "base4", base)
				}
				res := mustTug(t, u, store, "build", "--progress", "plain", "--network", "none", "--no-cache", "-t", "after", ctx)
				if !strings.Contains(res.Stderr, sc.output) {
					t.Fatalf("%s: the build after the race:\n%s", sc.name, res.Stderr)
				}
			}
		})
	}
}

// A prune while a build runs keeps the build cache (the running build's
// step records, layers and cache mounts), says so, and exits 0; the build
// finishes, and a prune after it removes the cache.
func TestBuild4PruneDuringBuild(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	ctx := buildContext(t, u, map[string]string{
		"Dockerfile": "FROM " + busybox + "\nRUN echo one > /one\nRUN --mount=type=cache,target=/c sh -c 'echo x > /c/x; sleep 4203 & p=$!; sleep 3; kill $p; cat /c/x /one > /two'\nCMD cat /two\n",
	})
	cmd := u.Command(t.Context(), tugBin, append(append([]string{}, store...), "build", "-q", "--network", "none", "-t", "pruned", ctx)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); !processRunning("sleep\x004203\x00"); {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the slow step never started:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, args := range [][]string{{"builder", "prune", "-a", "-f"}, {"system", "prune", "-a", "-f"}} {
		res := tug(t, u, store, args...)
		if res.Code != 0 || !strings.Contains(res.Stderr, "a build is running: the build cache is kept") || strings.Contains(res.Stdout, "Deleted build cache") {
			t.Errorf("%v during a build: exit %d\n%s%s", args, res.Code, res.Stdout, res.Stderr)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the build failed after the prunes: %v\n%s", err, stderr.String())
	}
	if got := runOut(t, u, store, "--network", "none", "pruned"); got != "x\none" {
		t.Fatalf("the image prints %q", got)
	}
	res := mustTug(t, u, store, "builder", "prune", "-a", "-f")
	if !strings.Contains(res.Stdout, "Deleted build cache objects:") || strings.Contains(res.Stderr, "build is running") {
		t.Fatalf("builder prune after the build:\n%s%s", res.Stdout, res.Stderr)
	}
	if res := tug(t, u, store, "system", "check"); res.Code != 0 {
		t.Fatalf("system check:\n%s%s", res.Stdout, res.Stderr)
	}
}
