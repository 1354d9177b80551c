package commands

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Every visible command has a one-line summary and examples, and its
// --help shows them.
func TestEveryCommandHasHelp(t *testing.T) {
	t.Parallel()
	for _, n := range commandNodes(testModel(t)) {
		path := commandPath(n)
		if n.Help == "" || strings.Contains(strings.TrimSuffix(n.Help, "."), "\n") {
			t.Errorf("tug %s: summary %q, want one line", path, n.Help)
		}
		if strings.TrimSpace(n.Detail) == "" {
			t.Errorf("tug %s has no examples: add a Help method in help.go", path)
			continue
		}
		for _, l := range strings.Split(strings.TrimSpace(n.Detail), "\n") {
			if l = strings.TrimSpace(l); !strings.Contains(l, "tug ") {
				t.Errorf("tug %s: example %q does not run tug", path, l)
			}
		}
		var out, errb bytes.Buffer
		args := append(strings.Fields(path), "--help")
		if code := run(context.Background(), args, &out, &errb); code != 0 {
			t.Errorf("tug %s --help: exit %d: %s", path, code, errb.String())
			continue
		}
		flat := strings.Join(strings.Fields(out.String()), " ")
		for _, want := range []string{"Usage: tug " + path, n.Help, "Examples:", "Global Flags:"} {
			if !strings.Contains(flat, want) {
				t.Errorf("tug %s --help lacks %q:\n%s", path, want, out.String())
			}
		}
	}
}

// tug --help groups the commands as docker --help does.
func TestRootHelpGroups(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	s := out.String()
	common, mgmt, other, global := strings.Index(s, "\nCommon Commands:\n"), strings.Index(s, "\nManagement Commands:\n"), strings.Index(s, "\nCommands:\n"), strings.Index(s, "\nGlobal Flags:\n")
	if !(0 < common && common < mgmt && mgmt < other && other < global) {
		t.Fatalf("sections out of order:\n%s", s)
	}
	in := func(section, name string) bool {
		for _, l := range strings.Split(section, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == name {
				return true
			}
		}
		return false
	}
	for _, c := range []struct {
		section string
		names   []string
	}{
		{s[common:mgmt], []string{"run", "exec", "ps", "build", "pull", "push", "images", "login", "logout", "version", "info"}},
		{s[mgmt:other], []string{"builder", "container", "image", "system", "volume"}},
		{s[other:global], []string{"cp", "create", "inspect", "logs", "rm", "rmi", "start", "stop", "tag"}},
	} {
		for _, n := range c.names {
			if !in(c.section, n) {
				t.Errorf("%s is not in its group:\n%s", n, c.section)
			}
		}
	}
	if strings.Contains(s, "__complete") || strings.Contains(s, "container-monitor") {
		t.Errorf("hidden commands listed:\n%s", s)
	}
}

// run's flags come in groups, its aliases are listed, and the global
// flags come last.
func TestRunHelpLayout(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"run", "--help"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	s := out.String()
	last := -1
	for _, want := range []string{"Usage: tug run [flags] IMAGE [COMMAND...]", "Aliases:", "tug container run", "Examples:", "Flags:", "--detach",
		"Networking:", "--publish", "Storage:", "--volume", "Security:", "--cap-add", "Global Flags:", "--root"} {
		i := strings.Index(s, want)
		if i < 0 || i < last {
			t.Fatalf("run --help: %q missing or out of order:\n%s", want, s)
		}
		last = i
	}
}
