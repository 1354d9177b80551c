package commands

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

var updateCompat = flag.Bool("update", false, "rewrite docs/compat.md from the compatibility table")

const compatDoc = "../docs/compat.md"

type compatStatus string

const (
	supported  compatStatus = "supported"
	differs    compatStatus = "differs"
	absent     compatStatus = "absent"
	inProgress compatStatus = "in progress"
)

var statusCodes = map[string]compatStatus{"S": supported, "D": differs, "A": absent, "P": inProgress}

// compatRow is one Docker flag of one command.
type compatRow struct {
	short, long string // without dashes; short may be ""
	status      compatStatus
	note        string
}

func (r compatRow) names() string {
	if r.short != "" {
		return "`-" + r.short + "`, `--" + r.long + "`"
	}
	return "`--" + r.long + "`"
}

// parseRows reads a compatCommand's rows; create's are run's without
// run's own, and with its own rows in place of run's of the same name.
func (c compatCommand) parseRows() ([]compatRow, error) {
	rows, err := parseRowText(c.cmd, c.rows)
	if err != nil || c.cmd != "create" {
		return rows, err
	}
	var keep []string
	for _, l := range strings.Split(runRows, "\n") {
		name, _, _ := strings.Cut(l, " |")
		if !slices.Contains(runOnly, name) {
			keep = append(keep, l)
		}
	}
	run, err := parseRowText(c.cmd, strings.Join(keep, "\n"))
	if err != nil {
		return nil, err
	}
	for i, r := range run {
		if j := slices.IndexFunc(rows, func(o compatRow) bool { return o.long == r.long }); j >= 0 {
			run[i] = rows[j]
		}
	}
	return run, nil
}

func parseRowText(cmd, text string) ([]compatRow, error) {
	var rows []compatRow
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		parts := strings.SplitN(l, "|", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("%s: bad row %q", cmd, l)
		}
		var r compatRow
		for _, n := range strings.Split(parts[0], ",") {
			n = strings.TrimSpace(n)
			switch {
			case strings.HasPrefix(n, "--"):
				r.long = n[2:]
			case strings.HasPrefix(n, "-") && len(n) == 2:
				r.short = n[1:]
			default:
				return nil, fmt.Errorf("%s: bad flag name %q", cmd, n)
			}
		}
		st, ok := statusCodes[strings.TrimSpace(parts[1])]
		if !ok || r.long == "" {
			return nil, fmt.Errorf("%s: bad row %q", cmd, l)
		}
		r.status, r.note = st, strings.TrimSpace(parts[2])
		if (st == differs || st == absent) && r.note == "" {
			return nil, fmt.Errorf("%s --%s: a %s row needs a note saying why", cmd, r.long, st)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func compatRows(t *testing.T, c compatCommand) []compatRow {
	t.Helper()
	rows, err := c.parseRows()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// parseLine parses args with tug's grammar, running nothing. An exit by
// kong (--help) is a successful parse.
func parseLine(args []string) (*kong.Context, error) {
	return parseWith(new(CLI), args)
}

func parseWith(cli *CLI, args []string) (kctx *kong.Context, err error) {
	p, err := kong.New(cli, kong.Name("tug"), kong.Writers(io.Discard, io.Discard),
		kong.Exit(func(code int) { panic(exitPanic(code)) }), kong.Help(printHelp))
	if err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(exitPanic)
			if !ok {
				panic(r)
			}
			kctx, err = nil, nil
			if c != 0 {
				err = fmt.Errorf("kong exited %d", c)
			}
		}
	}()
	return parseArgs(p, args)
}

// commandNode finds the node of cmd's words.
func commandNode(t *testing.T, root *kong.Node, cmd string) *kong.Node {
	t.Helper()
	n := root
	for _, w := range strings.Fields(cmd) {
		var next *kong.Node
		for _, c := range n.Children {
			if c.Name == w {
				next = c
			}
		}
		if next == nil {
			t.Fatalf("tug has no command %q", cmd)
		}
		n = next
	}
	return n
}

// ownFlag finds the flag Docker calls --long among the node's own flags
// (the application's, for the global flags).
func ownFlag(n *kong.Node, long string) *kong.Flag {
	for _, f := range n.Flags {
		if f.Name == long || slices.Contains(f.Aliases, long) {
			return f
		}
	}
	return nil
}

func lineFor(c compatCommand, flagArgs ...string) []string {
	return slices.Concat(strings.Fields(c.cmd), flagArgs, c.args)
}

// sampleValue is a value that a flag's type and enum accept.
func sampleValue(f *kong.Flag) []string {
	if takesNoValue(f) {
		return nil
	}
	for _, e := range f.EnumSlice() {
		if e != "" && f.Enum != "" {
			return []string{e}
		}
	}
	return []string{"1"}
}

func setFlag(kctx *kong.Context, f *kong.Flag) bool {
	if kctx == nil { // --help exited
		return true
	}
	// f is from another parse's model: compare names.
	for _, p := range kctx.Path {
		if p.Flag != nil && p.Flag.Name == f.Name {
			return true
		}
	}
	return false
}

// Every flag the table calls supported or differing parses, by its long
// name and by Docker's short one, as the command's own flag.
func TestCompatFlagsParse(t *testing.T) {
	t.Parallel()
	root := testModel(t)
	for _, c := range compatCommands {
		if c.absent != "" {
			continue
		}
		node := root
		if c.cmd != "" {
			node = commandNode(t, root, c.cmd)
		}
		for _, r := range compatRows(t, c) {
			if r.status != supported && r.status != differs {
				continue
			}
			t.Run(c.cmd+" --"+r.long, func(t *testing.T) {
				f := ownFlag(node, r.long)
				if r.long == "help" {
					f = ownFlag(root, "help")
				}
				if f == nil {
					t.Fatalf("the table says %s, but tug %s has no --%s", r.status, c.cmd, r.long)
				}
				forms := [][]string{append([]string{"--" + r.long}, sampleValue(f)...)}
				if r.short != "" {
					if string(f.Short) != r.short {
						t.Fatalf("tug's --%s has short -%c, Docker's -%s", r.long, f.Short, r.short)
					}
					forms = append(forms, append([]string{"-" + r.short}, sampleValue(f)...))
				}
				for _, form := range forms {
					args := lineFor(c, form...)
					kctx, err := parseLine(args)
					if err != nil {
						t.Fatalf("tug %s: %v", strings.Join(args, " "), err)
					}
					if !setFlag(kctx, f) {
						t.Fatalf("tug %s did not set --%s", strings.Join(args, " "), f.Name)
					}
				}
			})
		}
	}
}

// Every flag the table calls absent fails as Docker fails on a flag it
// does not know: exit 125 and "Error: unknown flag --x". Docker's short
// form fails too, never silently meaning something else.
func TestCompatAbsentFlagsFail(t *testing.T) {
	t.Parallel()
	for _, c := range compatCommands {
		if c.absent != "" {
			continue
		}
		for _, r := range compatRows(t, c) {
			if r.status != absent {
				continue
			}
			t.Run(c.cmd+" --"+r.long, func(t *testing.T) {
				args := lineFor(c, "--"+r.long)
				if _, err := parseLine(args); err == nil || !isUnknownFlag(err, "--"+r.long) {
					// Parsed: the command is not run here.
					t.Fatalf("tug %s: %v; want unknown flag --%s (if tug has it now, mark it supported or differs)", strings.Join(args, " "), err, r.long)
				}
				expectUsageError(t, args, "Error: unknown flag --"+r.long)
				if r.short != "" {
					args := lineFor(c, "-"+r.short)
					if _, err := parseLine(args); err == nil {
						t.Fatalf("tug %s parses: Docker's -%s (--%s) would silently mean something else", strings.Join(args, " "), r.short, r.long)
					}
					expectUsageError(t, args, "Error: ")
				}
			})
		}
	}
}

// expectUsageError runs a line that does not parse, so nothing runs.
func expectUsageError(t *testing.T, args []string, prefix string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	if code != 125 || !strings.HasPrefix(lines[0], prefix) || len(lines) != 2 || !strings.HasPrefix(lines[1], "See 'tug ") {
		t.Fatalf("tug %s: exit %d, stderr %q; want 125 and %q, then a See 'tug ... --help' line", strings.Join(args, " "), code, errb.String(), prefix)
	}
}

// A flag marked in progress does not parse yet; once it does, the table
// must say what it does.
func TestCompatInProgress(t *testing.T) {
	t.Parallel()
	for _, c := range compatCommands {
		for _, r := range compatRows(t, c) {
			if r.status != inProgress {
				continue
			}
			args := lineFor(c, "--"+r.long, "1")
			if _, err := parseLine(args); err == nil {
				t.Errorf("tug %s parses now: mark --%s supported or differs in compat_data_test.go and run go test ./commands -run TestCompatDoc -update", strings.Join(args, " "), r.long)
			} else if !isUnknownFlag(err, "--"+r.long) {
				t.Errorf("tug %s: %v", strings.Join(args, " "), err)
			}
		}
	}
}

// A command the table calls absent is a usage error.
func TestCompatAbsentCommands(t *testing.T) {
	t.Parallel()
	for _, c := range compatCommands {
		if c.absent == "" {
			continue
		}
		args := strings.Fields(c.cmd)
		if _, err := parseLine(args); err == nil {
			t.Errorf("tug %s parses: the table says the command is absent", c.cmd)
			continue
		}
		expectUsageError(t, args, "Error: ")
	}
}

// Every flag tug has on these commands is in the table: as a Docker flag
// or as one of tug's own, with what it does.
func TestCompatCoversTugFlags(t *testing.T) {
	t.Parallel()
	root := testModel(t)
	for _, c := range compatCommands {
		if c.absent != "" {
			continue
		}
		node := root
		if c.cmd != "" {
			node = commandNode(t, root, c.cmd)
		}
		rows := compatRows(t, c)
		for _, f := range node.Flags {
			if f.Hidden || f.Name == "help" {
				continue
			}
			known := slices.ContainsFunc(rows, func(r compatRow) bool {
				return r.long == f.Name || slices.Contains(f.Aliases, r.long)
			})
			if _, extra := c.extra[f.Name]; !known && !extra {
				t.Errorf("tug %s --%s is not in the compatibility table (compat_data_test.go)", c.cmd, f.Name)
			}
			if known && c.extra[f.Name] != "" {
				t.Errorf("tug %s --%s is both a Docker flag and one of tug's own", c.cmd, f.Name)
			}
		}
		for name := range c.extra {
			if ownFlag(node, name) == nil {
				t.Errorf("the table lists tug %s --%s, which tug does not have", c.cmd, name)
			}
		}
	}
}

// docs/compat.md is the table rendered.
func TestCompatDoc(t *testing.T) {
	t.Parallel()
	want, err := renderCompat()
	if err != nil {
		t.Fatal(err)
	}
	if *updateCompat {
		if err := os.WriteFile(compatDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(compatDoc)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is out of date: run go test ./commands -run TestCompatDoc -update", filepath.Clean(compatDoc))
	}
}

func renderCompat() (string, error) {
	var b strings.Builder
	counts := map[compatStatus]int{}
	var absentCmds int
	type section struct {
		c    compatCommand
		rows []compatRow
	}
	var sections []section
	for _, c := range compatCommands {
		rows, err := c.parseRows()
		if err != nil {
			return "", err
		}
		if c.absent != "" {
			absentCmds++
		}
		for _, r := range rows {
			counts[r.status]++
		}
		sections = append(sections, section{c, rows})
	}
	total := counts[supported] + counts[differs] + counts[absent] + counts[inProgress]
	fmt.Fprintf(&b, `# tug and Docker: command and flag compatibility

<!-- Generated from commands/compat_data_test.go by
     go test ./commands -run TestCompatDoc -update
     Do not edit by hand. -->

Every flag that Docker's reference documentation lists for these commands
(docker/cli v29; for build, also buildx's build, which docker build runs
by default), and what tug does with it:

- **supported**: tug accepts it and it behaves as Docker's;
- **differs**: tug accepts it, and the note says how it differs;
- **absent**: tug does not have it, and `+"`tug CMD --flag`"+` fails with
  `+"`Error: unknown flag --flag`"+` and exit status 125, never silently;
  the note says why;
- **in progress**: being added now.

The unit tests in commands/compat_test.go hold tug to this table: each
supported or differing flag parses, by its long and its short name; each
absent one is a usage error with exit 125; every flag tug has on these
commands is in the table. Behaviour is shown by the end-to-end tests
named in the notes (e2e_*_test.go at the repository root).

%d Docker flags: **%d supported**, **%d differ**, **%d absent**, **%d in progress**; and %d Docker commands tug lacks.

| Command | supported | differs | absent | in progress |
|---|---|---|---|---|
`, total, counts[supported], counts[differs], counts[absent], counts[inProgress], absentCmds)
	for _, s := range sections {
		name := "`docker " + s.c.cmd + "`"
		if s.c.cmd == "" {
			name = "global flags"
		}
		if s.c.absent != "" {
			fmt.Fprintf(&b, "| %s | | | command absent | |\n", name)
			continue
		}
		n := map[compatStatus]int{}
		for _, r := range s.rows {
			n[r.status]++
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d |\n", name, n[supported], n[differs], n[absent], n[inProgress])
	}
	b.WriteString(compatConventions)
	for _, s := range sections {
		if s.c.cmd == "" {
			b.WriteString("\n## Global flags\n\n")
		} else {
			fmt.Fprintf(&b, "\n## `%s`\n\n", s.c.cmd)
		}
		if s.c.absent != "" {
			fmt.Fprintf(&b, "**Absent.** %s `tug %s` fails with exit status 125.\n", s.c.absent, s.c.cmd)
			continue
		}
		if len(s.rows) == 0 {
			b.WriteString("Docker's command has no flags of its own.\n")
		} else {
			b.WriteString("| Docker flag | tug | Notes |\n|---|---|---|\n")
			for _, r := range s.rows {
				st := string(r.status)
				if r.status == differs {
					st = "**differs**"
				}
				fmt.Fprintf(&b, "| %s | %s | %s |\n", r.names(), st, strings.ReplaceAll(r.note, "|", `\|`))
			}
		}
		if len(s.c.extra) > 0 {
			names := make([]string, 0, len(s.c.extra))
			for n := range s.c.extra {
				names = append(names, n)
			}
			slices.Sort(names)
			b.WriteString("\ntug's own flags:\n\n")
			for _, n := range names {
				fmt.Fprintf(&b, "- `--%s`: %s\n", n, s.c.extra[n])
			}
		}
	}
	return b.String(), nil
}

const compatConventions = `
## Conventions

- **Usage errors** (an unknown command or flag, a missing argument) print
  one line, ` + "`Error: ...`" + `, then ` + "`See 'tug CMD --help'.`" + `, and exit 125, as
  Docker's do. Other errors are one ` + "`Error: `" + ` line that says what failed
  and what to do; ` + "`--debug`" + ` adds the chain of causes, one ` + "`caused by:`" + ` line
  each. (TestUsageErrorExit125, TestErrorReport.)
- **Short flags combine**: ` + "`-it`, `-dit`, `-aq`, `-fv`" + `; a value may follow its
  short flag directly (` + "`-eA=1`, `-p8080:80`" + `) or after ` + "`=`" + ` in the long form.
- **` + "`--`" + `** ends tug's flags: ` + "`tug run --rm -- busybox ls`, `tug rm -- -name`" + `.
- **Flags after arguments** are accepted where Docker accepts them
  (` + "`tug rm web -f`, `tug images busybox -q`, `tug logs web -f`" + `); after run's
  IMAGE and exec's CONTAINER everything belongs to the container's
  command, as in Docker.
- **-h** is ` + "`--help`" + ` in every command but run and create, where it is
  ` + "`--hostname`" + `, as in Docker.
- **Management commands** take Docker's subcommand names and aliases:
  ` + "`container ls|list|ps|rm|remove|run|create|start|stop|restart|kill|exec|logs|port|rename|wait|cp|inspect|prune`" + `,
  ` + "`image ls|list|rm|remove|inspect|pull|push|tag|save|load|build|history`" + `,
  ` + "`builder build|prune`" + `, ` + "`volume create|ls|list|rm|remove|inspect`" + `,
  ` + "`system df|info|prune`" + ` (and tug's own ` + "`system check`" + `).
- **` + "`--format`" + `** on every listing and inspect command takes a Go template
  with Docker's functions (` + "`json`, `join`, `split`, `upper`, `lower`, `title`,\n  `truncate`, `pad`" + `), ` + "`table TEMPLATE`" + ` (a header row, aligned columns), a
  bare ` + "`table`" + ` (the default columns) and ` + "`json`" + ` (listings: one object a
  line; inspect: one array). ` + "`-q`" + ` and ` + "`--no-trunc`" + ` are as Docker's.
  (TestTemplateFuncs, TestFormatterTableHeaderFuncs, TestListFormatter,
  TestWriteObjects.)
- **Help**: every command's ` + "`--help`" + ` has its one-line summary, its aliases,
  examples, its flags (run's and create's in groups) and then the global
  flags; ` + "`tug --help`" + ` lists Common Commands, Management Commands and
  Commands as Docker does. (TestEveryCommandHasHelp, TestRootHelpGroups.)
- **Completion**: ` + "`tug completion bash|zsh|fish`" + ` prints a script that
  completes commands, flags, flag values and image, container and volume
  names. (TestBashCompletion; e2e: TestBashCompletionNames.)

The parsing conventions above are checked by TestDockerConventions and
TestShortHelp.
`
