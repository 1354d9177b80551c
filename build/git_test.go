package build

import (
	"strings"
	"testing"
)

// ADD sources name a git repository as BuildKit's dfgitutil.ParseGitRef
// decides: URLs of git's protocols (http and https ones ending in .git)
// and user@host:path, with #ref:subdir or the query form.
func TestParseGitSource(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		src                          string
		isGit                        bool
		remote, ref, subdir, errWant string
		keep, overSSH                bool
	}{
		{src: "https://example.com/r.git", isGit: true, remote: "https://example.com/r.git"},
		{src: "https://example.com/r.git#main:sub/dir", isGit: true, remote: "https://example.com/r.git", ref: "main", subdir: "sub/dir"},
		{src: "http://127.0.0.1:8080/r.git#v1", isGit: true, remote: "http://127.0.0.1:8080/r.git", ref: "v1"},
		{src: "https://example.com/r.git?branch=dev&subdir=x&keep-git-dir=true", isGit: true, remote: "https://example.com/r.git", ref: "refs/heads/dev", subdir: "x", keep: true},
		{src: "https://example.com/r.git?tag=v2", isGit: true, remote: "https://example.com/r.git", ref: "refs/tags/v2"},
		{src: "git@github.com:org/repo.git#main", isGit: true, remote: "git@github.com:org/repo.git", ref: "main", overSSH: true},
		{src: "ssh://git@host/r.git", isGit: true, remote: "ssh://git@host/r.git", overSSH: true},
		{src: "git://host/r.git", isGit: true, remote: "git://host/r.git"},
		{src: "https://example.com/file.tar.gz", isGit: false},
		{src: "https://example.com/r.git?bogus=1", isGit: true, errWant: `query "bogus"`},
		{src: "https://example.com/r.git?tag=a&branch=b", isGit: true, errWant: "branch conflicts with tag"},
		{src: "src/app.git", isGit: false},
		{src: "./x.git", isGit: false},
		{src: "github.com/org/repo", isGit: false},
		{src: "file.txt", isGit: false},
	} {
		g, isGit, err := parseGitSource(tc.src)
		if isGit != tc.isGit {
			t.Errorf("%s: git %v, want %v", tc.src, isGit, tc.isGit)
			continue
		}
		if tc.errWant != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errWant) {
				t.Errorf("%s: error %v, want %q", tc.src, err, tc.errWant)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.src, err)
			continue
		}
		if !isGit {
			continue
		}
		keep := g.keepGitDir != nil && *g.keepGitDir
		if g.remote != tc.remote || g.ref != tc.ref || g.subdir != tc.subdir || keep != tc.keep || g.overSSH != tc.overSSH {
			t.Errorf("%s: got remote %q ref %q subdir %q keep %v ssh %v", tc.src, g.remote, g.ref, g.subdir, keep, g.overSSH)
		}
	}
}

// --checksum (or ?checksum=) is a prefix of the commit.
func TestGitChecksum(t *testing.T) {
	t.Parallel()
	g := &gitSource{src: "r.git", commit: "0123456789abcdef0123456789abcdef01234567", checksum: "0123456"}
	if err := g.verify(); err != nil {
		t.Fatal(err)
	}
	g.checksum = "fff"
	if err := g.verify(); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("a wrong checksum: %v", err)
	}
}
