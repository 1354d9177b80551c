//go:build e2e

package main_test

import (
	"strings"
	"testing"

	"github.com/tugcli/tug/fixture"
)

// An error is one "Error: " line that says what failed; --debug prints
// the same line and then the chain of its causes, one "caused by:" line
// each, down to what the registry or the parser said. Three paths: an
// image the registry does not have, a registry that refuses (no
// credentials; a 500 on every try) and a Dockerfile that does not parse.
func TestDebugShowsCauses(t *testing.T) {
	u := fixture.RootlessUser(t)
	store := pulled(t, u)
	authReg := fixture.NewRegistryWithAuth(t, "debug-user", "debug-password")
	failing := fixture.NewProxy(t, registry.Addr, fixture.Rule{Method: "GET", Path: "/manifests/", Fault: fixture.FaultStatus, Status: 500})
	badDockerfile := buildContext(t, u, map[string]string{"Dockerfile": "FROM " + busybox + "\nRUNN echo typo\n"})
	for _, tc := range []struct {
		name  string
		args  []string
		error string // in the Error: line
		cause string // in a caused by: line; "" for none
	}{
		{"unknown image", []string{"pull", registry.Ref("debug/nothing-here:1")}, "manifest unknown", "MANIFEST_UNKNOWN"},
		{"registry refusing: no credentials", []string{"pull", authReg.Ref("debug/private:1")}, "access denied by " + authReg.Addr, "UNAUTHORIZED"},
		{"registry refusing: 500", []string{"pull", failing.Ref("busybox:latest")}, "reaching registry " + failing.Addr, "500 Internal Server Error"},
		// The parser's error is the whole story: no cause under it.
		{"bad Dockerfile", []string{"build", "-q", "--network", "none", badDockerfile}, "Dockerfile:2: unknown instruction: RUNN", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plain := tug(t, u, store, tc.args...)
			if plain.Code == 0 {
				t.Fatal("succeeded")
			}
			errLine := lastLine(plain.Stderr)
			if !strings.HasPrefix(errLine, "Error: ") || strings.Count("\n"+plain.Stderr, "\nError: ") != 1 || !strings.Contains(errLine, tc.error) {
				t.Fatalf("want one Error: line, the last, saying %q:\n%s", tc.error, plain.Stderr)
			}
			if strings.Contains(plain.Stderr, "caused by:") {
				t.Fatalf("without --debug, causes printed:\n%s", plain.Stderr)
			}

			debug := tug(t, u, store, append([]string{"--debug"}, tc.args...)...)
			if debug.Code != plain.Code {
				t.Errorf("exit %d with --debug, %d without", debug.Code, plain.Code)
			}
			lines := strings.Split(debug.Stderr, "\n")
			at := -1
			for i, l := range lines {
				if l == errLine {
					at = i
				}
			}
			if at < 0 {
				t.Fatalf("with --debug, the Error: line differs or is missing:\n%s", debug.Stderr)
			}
			var causes []string
			for _, l := range lines[at+1:] {
				if c, ok := strings.CutPrefix(strings.TrimLeft(l, " "), "caused by: "); ok {
					causes = append(causes, c)
				}
			}
			if (tc.cause == "") != (len(causes) == 0) || !strings.Contains(strings.Join(causes, "\n"), tc.cause) {
				t.Fatalf("with --debug, the causes (%d) do not reach %q:\n%s", len(causes), tc.cause, strings.Join(lines[at:], "\n"))
			}
			// Each cause adds something: none repeats the line above it.
			above := strings.TrimPrefix(errLine, "Error: ")
			for _, c := range causes {
				if c == above {
					t.Errorf("cause %q repeats the line above it", c)
				}
				above = c
			}
			t.Logf("%s", strings.Join(lines[at:], "\n"))
		})
	}
}
