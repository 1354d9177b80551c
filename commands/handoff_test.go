package commands

import (
	"os"
	"reflect"
	"testing"
)

// The namespace child of `tug run` runs the command its parent parsed: what
// it decodes must be what kong made of the line, flag for flag.
func TestRunHandoffIsTheParse(t *testing.T) {
	for _, line := range [][]string{
		{"run", "--rm", "img"},
		{"--root", "/r", "--runroot", "/rr", "--debug", "run", "-it", "--rm", "-e", "A=1", "-e", "B", "--env-file", "f", "-v", "/a:/b:ro", "--name", "x", "img", "sh", "-c", "echo $A"},
		{"run", "--entrypoint", "", "-u", "1:2", "-w", "/w", "--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "--security-opt", "seccomp=unconfined", "--ulimit", "nofile=10:20", "--tmpfs", "/t", "--mount", "type=tmpfs,target=/m", "img"},
		{"run", "--memory", "64m", "--memory-swap", "-1", "--pids-limit", "-1", "--cpus", "1.5", "--network", "none", "-p", "8080:80", "--add-host", "h:1.2.3.4", "--no-tls-verify", "--pull", "never", "img", "true"},
		{"run", "--stop-timeout", "3", "--read-only", "--privileged", "--init", "--isolation", "chroot", "--", "img", "--not-a-flag"},
	} {
		var cli CLI
		if _, err := parseWith(&cli, line); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		t.Setenv(envHandoff, runHandoff(line, &cli))
		h := takeHandoff(line)
		if h == nil {
			t.Fatalf("%q: no handoff taken", line)
		}
		if _, ok := os.LookupEnv(envHandoff); ok {
			t.Errorf("%q: the handoff stays in the environment, for whatever this tug starts", line)
		}
		if !reflect.DeepEqual(h.Run, cli.Run) {
			t.Errorf("%q: run decoded as\n%+v\nparsed as\n%+v", line, h.Run, cli.Run)
		}
		if !reflect.DeepEqual(h.Globals, cli.Globals) {
			t.Errorf("%q: globals decoded as %+v, parsed as %+v", line, h.Globals, cli.Globals)
		}
	}
}

// A handoff for another command line is not used: the child parses its own.
func TestRunHandoffOtherLine(t *testing.T) {
	line := []string{"run", "img"}
	var cli CLI
	if _, err := parseWith(&cli, line); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envHandoff, runHandoff(line, &cli))
	if h := takeHandoff([]string{"run", "other"}); h != nil {
		t.Fatalf("took a handoff for %q on %q", line, h.Args)
	}
	t.Setenv(envHandoff, "{not json")
	if h := takeHandoff(line); h != nil {
		t.Fatal("took a handoff that is not JSON")
	}
}
