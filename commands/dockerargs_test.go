package commands

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Docker's command-line conventions: combined short flags, "--", flags
// after arguments, -h, management commands and their aliases. Each line
// is parsed only, never run.
func TestDockerConventions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args    []string
		command string            // kong's command path
		want    func(c *CLI) bool // what the line set
	}{
		{[]string{"run", "-it", "busybox", "sh"}, "run <IMAGE> <COMMAND>", func(c *CLI) bool {
			return c.Run.Interactive && c.Run.TTY && c.Run.Image == "busybox" && eq(c.Run.Command, "sh")
		}},
		{[]string{"run", "-dit", "--name", "x", "busybox"}, "run <IMAGE>", func(c *CLI) bool {
			return c.Run.Detach && c.Run.Interactive && c.Run.TTY && c.Run.Name == "x"
		}},
		{[]string{"run", "--rm", "--", "busybox", "ls", "-l"}, "run <IMAGE> <COMMAND>", func(c *CLI) bool {
			return c.Run.Rm && c.Run.Image == "busybox" && eq(c.Run.Command, "ls", "-l")
		}},
		{[]string{"run", "busybox", "ls", "-l", "--rm", "--", "x"}, "run <IMAGE> <COMMAND>", func(c *CLI) bool {
			return !c.Run.Rm && eq(c.Run.Command, "ls", "-l", "--rm", "--", "x")
		}},
		{[]string{"run", "-h", "box", "-eA=1", "-e", "B=2", "--env=C=3", "-p8080:80", "busybox"}, "run <IMAGE>", func(c *CLI) bool {
			return c.Run.Hostname == "box" && eq(c.Run.Env, "A=1", "B=2", "C=3") && eq(c.Run.Publish, "8080:80")
		}},
		{[]string{"run", "--detach=false", "--rm=true", "busybox"}, "run <IMAGE>", func(c *CLI) bool {
			return !c.Run.Detach && c.Run.Rm
		}},
		{[]string{"create", "--", "busybox"}, "create <IMAGE> <COMMAND>", func(c *CLI) bool {
			return c.Create.Image == "busybox" && len(c.Create.Command) == 0
		}},
		{[]string{"exec", "-it", "web", "sh", "-c", "ls -l"}, "exec <CONTAINER> <COMMAND>", func(c *CLI) bool {
			return c.Exec.Interactive && c.Exec.TTY && c.Exec.Container == "web" && eq(c.Exec.Command, "sh", "-c", "ls -l")
		}},
		{[]string{"rm", "web", "-fv"}, "rm <CONTAINER>", func(c *CLI) bool { return c.Rm.Force && c.Rm.Volumes && eq(c.Rm.Containers, "web") }},
		{[]string{"rm", "--", "-web"}, "rm <CONTAINER>", func(c *CLI) bool { return eq(c.Rm.Containers, "-web") }},
		{[]string{"stop", "a", "b", "-t", "1"}, "stop <CONTAINER>", func(c *CLI) bool { return *c.Stop.Time == 1 && eq(c.Stop.Containers, "a", "b") }},
		{[]string{"stop", "--time=2", "a"}, "stop <CONTAINER>", func(c *CLI) bool { return *c.Stop.Time == 2 }},
		{[]string{"logs", "web", "-f", "--tail", "5"}, "logs <CONTAINER>", func(c *CLI) bool { return c.Logs.Follow && c.Logs.Tail == "5" }},
		{[]string{"ps", "-aq"}, "ps", func(c *CLI) bool { return c.Ps.All && c.Ps.Quiet }},
		{[]string{"images", "busybox", "-q"}, "images <REPOSITORY[:TAG]>", func(c *CLI) bool { return c.Images.Quiet && c.Images.Repo == "busybox" }},
		{[]string{"inspect", "x", "-f", "{{.Id}}"}, "inspect <NAME|ID>", func(c *CLI) bool { return c.Inspect.Format == "{{.Id}}" }},
		{[]string{"build", ".", "-t", "app", "--no-cache"}, "build <PATH>", func(c *CLI) bool { return eq(c.Build.Tag, "app") && c.Build.NoCache }},
		{[]string{"pull", "busybox", "-q"}, "pull <NAME[:TAG|@DIGEST]>", func(c *CLI) bool { return c.Pull.Quiet }},
		{[]string{"tag", "a", "b"}, "tag <SOURCE_IMAGE[:TAG]> <TARGET_IMAGE[:TAG]>", nil},
		{[]string{"images", "--debug"}, "images", func(c *CLI) bool { return c.Debug }},
		{[]string{"--debug", "-l", "info", "images"}, "images", func(c *CLI) bool { return c.Debug && c.LogLevel == "info" }},
		{[]string{"container", "ls", "-a"}, "container ls", func(c *CLI) bool { return c.Container.Ls.All }},
		{[]string{"container", "list"}, "container ls", nil},
		{[]string{"container", "ps"}, "container ls", nil},
		{[]string{"container", "remove", "web"}, "container rm <CONTAINER>", nil},
		{[]string{"container", "run", "-it", "busybox"}, "container run <IMAGE>", nil},
		{[]string{"container", "create", "busybox"}, "container create <IMAGE>", nil},
		{[]string{"container", "start", "-a", "web"}, "container start <CONTAINER>", nil},
		{[]string{"container", "stop", "web"}, "container stop <CONTAINER>", nil},
		{[]string{"container", "restart", "web"}, "container restart <CONTAINER>", nil},
		{[]string{"container", "kill", "web"}, "container kill <CONTAINER>", nil},
		{[]string{"container", "exec", "web", "ls"}, "container exec <CONTAINER> <COMMAND>", nil},
		{[]string{"container", "logs", "web"}, "container logs <CONTAINER>", nil},
		{[]string{"container", "port", "web"}, "container port <CONTAINER>", nil},
		{[]string{"container", "rename", "a", "b"}, "container rename <CONTAINER> <NEW_NAME>", nil},
		{[]string{"container", "wait", "web"}, "container wait <CONTAINER>", nil},
		{[]string{"container", "cp", "web:/a", "b"}, "container cp <SRC> <DEST>", nil},
		{[]string{"container", "inspect", "web"}, "container inspect <CONTAINER>", nil},
		{[]string{"container", "prune", "-f"}, "container prune", nil},
		{[]string{"image", "ls"}, "image ls", nil},
		{[]string{"image", "list", "-q"}, "image ls", nil},
		{[]string{"image", "remove", "x"}, "image rm <IMAGE>", nil},
		{[]string{"image", "build", "-t", "x", "."}, "image build <PATH>", nil},
		{[]string{"builder", "build", "."}, "builder build <PATH>", nil},
		{[]string{"builder", "prune", "-af"}, "builder prune", nil},
		{[]string{"volume", "list"}, "volume ls", nil},
		{[]string{"volume", "remove", "v"}, "volume rm <VOLUME>", nil},
		{[]string{"system", "info"}, "system info", nil},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var cli CLI
			kctx, err := parseWith(&cli, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if got := kctx.Command(); got != tc.command {
				t.Errorf("command %q, want %q", got, tc.command)
			}
			if tc.want != nil && !tc.want(&cli) {
				t.Errorf("parsed to %+v", cli)
			}
		})
	}
}

func eq(got []string, want ...string) bool { return reflect.DeepEqual(got, want) }

// -h is --help, but run's and create's own -h is --hostname.
func TestShortHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-h"}, {"ps", "-h"}, {"container", "ls", "-h"}, {"rm", "-h"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "Usage: tug") {
			t.Errorf("tug %s: exit %d, stdout %.40q, stderr %q", strings.Join(args, " "), code, out.String(), errb.String())
		}
	}
}

// Errors are one line, "Error: " and what failed; --debug adds the causes.
func TestErrorReport(t *testing.T) {
	t.Parallel()
	cause := errors.New("permission denied")
	err := fmt.Errorf("opening image store /x: %w", fmt.Errorf("creating /x/overlay:\n %w", cause))
	var b bytes.Buffer
	if code := report(&b, err, false); code != 1 || b.String() != "Error: opening image store /x: creating /x/overlay: permission denied\n" {
		t.Errorf("report: exit %d, %q", code, b.String())
	}
	b.Reset()
	report(&b, &ExitError{Code: 125, Err: err}, true)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	// The ExitError says no more than the error it carries: no line.
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "Error: ") || lines[2] != "  caused by: permission denied" {
		t.Errorf("report --debug:\n%s", b.String())
	}
	b.Reset()
	if code := report(&b, &ExitError{Code: 3}, false); code != 3 || b.Len() != 0 {
		t.Errorf("an ExitError without a message printed %q, exit %d", b.String(), code)
	}
}
