package commands

import (
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
	"golang.org/x/term"
)

// tug's help, laid out as Docker's: usage, the one-line summary, aliases,
// examples, arguments, the command's flags (in groups for run and
// create), then the global flags. tug --help lists the commands in
// Docker's three groups. The examples are each command's Help method
// (kong.HelpProvider), below.

// commonCommands are Docker's "Common Commands", in Docker's order.
var commonCommands = []string{"run", "exec", "ps", "build", "pull", "push", "images", "login", "logout", "version", "info"}

// runFlagGroups groups the flags of run and create; a flag in no group is
// listed first, under "Flags:".
var runFlagGroups = []struct {
	title string
	flags []string
}{
	{"Process and environment:", []string{"entrypoint", "env", "env-file", "workdir", "user", "hostname", "init"}},
	{"Networking:", []string{"network", "publish", "publish-all", "dns", "dns-search", "dns-option", "add-host", "expose"}},
	{"Storage:", []string{"volume", "mount", "tmpfs", "read-only"}},
	{"Security:", []string{"cap-add", "cap-drop", "privileged", "security-opt", "isolation"}},
	{"Resources:", []string{"memory", "memory-swap", "memory-reservation", "cpus", "cpu-shares", "pids-limit", "cgroup-parent", "ulimit"}},
}

// printHelp is tug's kong.HelpPrinter.
func printHelp(_ kong.HelpOptions, ctx *kong.Context) error {
	h := &helpWriter{width: helpWidth(ctx.Stdout)}
	node := ctx.Selected()
	if node == nil {
		node = ctx.Model.Node
	}
	h.usage(node)
	if node.Type == kong.ApplicationNode {
		h.rootCommands(node)
	} else {
		h.aliases(ctx.Model.Node, node)
		h.examples(node)
		h.arguments(node)
		h.subcommands(node)
		h.flags(node, ctx.Model.Node)
	}
	h.globalFlags(ctx.Model.Node)
	h.left = 0
	if len(visibleChildren(node)) > 0 {
		h.line("")
		path := "tug"
		if node.Type != kong.ApplicationNode {
			path += " " + commandPath(node)
		}
		h.line("Run '" + path + " COMMAND --help' for more information on a command.")
	}
	_, err := io.WriteString(ctx.Stdout, h.b.String())
	return err
}

type helpWriter struct {
	b     strings.Builder
	width int
	left  int // the first column's width, when several lists share it
}

func helpWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 40 {
			return min(cols, 120)
		}
	}
	return 80
}

func (h *helpWriter) line(s string) { h.b.WriteString(strings.TrimRight(s, " ") + "\n") }

// section starts a titled block after a blank line.
func (h *helpWriter) section(title string) {
	h.line("")
	h.line(title)
}

func (h *helpWriter) usage(n *kong.Node) {
	if n.Type == kong.ApplicationNode {
		h.line("Usage: tug [flags] COMMAND")
		h.line("")
		h.wrap(n.Help, "")
		return
	}
	u := "Usage: tug " + commandPath(n)
	if len(visibleChildren(n)) > 0 {
		u += " COMMAND"
	} else {
		u += " [flags]"
	}
	for _, p := range n.Positional {
		name := strings.ToUpper(p.Name)
		if p.IsCumulative() {
			name += "..."
		}
		if !p.Required {
			name = "[" + name + "]"
		}
		u += " " + name
	}
	h.line(u)
	h.line("")
	h.wrap(n.Help, "")
}

// aliases lists every path that runs this command: kong's aliases and the
// same command type under another parent (ps and container ls).
func (h *helpWriter) aliases(root, n *kong.Node) {
	var paths []string
	for _, c := range commandNodes(root) {
		if c.Target.Type() != n.Target.Type() {
			continue
		}
		p := commandPath(c)
		paths = append(paths, "tug "+p)
		for _, a := range c.Aliases {
			paths = append(paths, "tug "+strings.TrimSpace(strings.TrimSuffix(p, c.Name)+a))
		}
	}
	if len(paths) > 1 {
		h.section("Aliases:")
		h.wrap(strings.Join(paths, ", "), "  ")
	}
}

func (h *helpWriter) examples(n *kong.Node) {
	if strings.TrimSpace(n.Detail) == "" {
		return
	}
	h.section("Examples:")
	for _, l := range strings.Split(strings.Trim(n.Detail, "\n"), "\n") {
		h.line("  " + strings.TrimSpace(l))
	}
}

func (h *helpWriter) arguments(n *kong.Node) {
	var rows [][2]string
	for _, p := range n.Positional {
		if p.Help != "" {
			rows = append(rows, [2]string{strings.ToUpper(p.Name), p.Help})
		}
	}
	if len(rows) > 0 {
		h.section("Arguments:")
		h.columns(rows)
	}
}

func (h *helpWriter) subcommands(n *kong.Node) {
	var rows [][2]string
	for _, c := range visibleChildren(n) {
		rows = append(rows, [2]string{c.Name, c.Help})
	}
	slices.SortFunc(rows, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	if len(rows) > 0 {
		h.section("Commands:")
		h.columns(rows)
	}
}

// rootCommands lists tug's commands in Docker's groups: common commands in
// Docker's order, management commands (those with subcommands), then the
// rest alphabetically.
func (h *helpWriter) rootCommands(root *kong.Node) {
	var common, mgmt, other [][2]string
	byName := map[string]*kong.Node{}
	for _, c := range visibleChildren(root) {
		byName[c.Name] = c
	}
	for _, name := range commonCommands {
		if c := byName[name]; c != nil {
			common = append(common, [2]string{c.Name, c.Help})
			delete(byName, name)
		}
	}
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		c := byName[name]
		if len(visibleChildren(c)) > 0 {
			mgmt = append(mgmt, [2]string{c.Name, c.Help})
		} else {
			other = append(other, [2]string{c.Name, c.Help})
		}
	}
	h.left = firstColumn(slices.Concat(common, mgmt, other))
	for _, g := range []struct {
		title string
		rows  [][2]string
	}{{"Common Commands:", common}, {"Management Commands:", mgmt}, {"Commands:", other}} {
		if len(g.rows) > 0 {
			h.section(g.title)
			h.columns(g.rows)
		}
	}
	h.left = 0
}

// flags prints a command's own flags: for run and create in
// runFlagGroups' groups, after the ungrouped ones. They line up with the
// global flags that follow.
func (h *helpWriter) flags(n, root *kong.Node) {
	var own []*kong.Flag
	var rows [][2]string
	for _, f := range slices.Concat(n.Flags, root.Flags) {
		if !f.Hidden {
			rows = append(rows, flagRow(f))
		}
	}
	h.left = firstColumn(rows)
	for _, f := range n.Flags {
		if !f.Hidden {
			own = append(own, f)
		}
	}
	if len(own) == 0 {
		return
	}
	groups := map[string]int{}
	if t := n.Target.Type(); t == reflect.TypeFor[RunCmd]() || t == reflect.TypeFor[CreateCmd]() {
		for i, g := range runFlagGroups {
			for _, name := range g.flags {
				groups[name] = i + 1
			}
		}
	}
	byGroup := make([][][2]string, len(runFlagGroups)+1)
	for _, f := range own {
		i := groups[f.Name]
		byGroup[i] = append(byGroup[i], flagRow(f))
	}
	for i, rows := range byGroup {
		if len(rows) == 0 {
			continue
		}
		title := "Flags:"
		if i > 0 {
			title = runFlagGroups[i-1].title
		}
		h.section(title)
		h.columns(rows)
	}
}

func (h *helpWriter) globalFlags(root *kong.Node) {
	var rows [][2]string
	for _, f := range root.Flags {
		if f.Hidden {
			continue
		}
		row := flagRow(f)
		if f.Name == "help" {
			// -h is --help wherever a command has no -h of its own.
			row[0], row[1] = "-h, --help", "Print this help."
		}
		rows = append(rows, row)
	}
	h.section("Global Flags:")
	h.columns(rows)
}

// flagRow is a flag as Docker shows it: "-p, --publish list" and its help
// with the default.
func flagRow(f *kong.Flag) [2]string {
	left := "    "
	if f.Short != 0 {
		left = "-" + string(f.Short) + ", "
	}
	name := "--" + f.Name
	if f.Tag.Negatable != "" && f.IsBool() {
		name = "--[no-]" + f.Name
	}
	left += name
	if !f.IsBool() && !f.IsCounter() {
		left += " " + flagType(f)
	}
	help := f.Help
	if f.HasDefault && f.Default != "" && !f.IsBool() {
		help = strings.TrimSuffix(help, ".") + fmt.Sprintf(" (default %q).", f.Default)
	}
	return [2]string{left, help}
}

// flagType is the value's placeholder: the flag's own, else a type name as
// Docker prints it (string, list, int).
func flagType(f *kong.Flag) string {
	if f.PlaceHolder != "" {
		return strings.ToLower(f.PlaceHolder)
	}
	t := f.Target.Type()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice:
		return "list"
	case reflect.Map:
		return "map"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32:
		return "int"
	case reflect.Float64, reflect.Float32:
		return "decimal"
	}
	return "string"
}

// columns prints rows as two columns, the second wrapped to the width.
func (h *helpWriter) columns(rows [][2]string) {
	left := h.left
	if left == 0 {
		left = firstColumn(rows)
	}
	indent := strings.Repeat(" ", 2+left+3)
	for _, r := range rows {
		lines := wrapText(r[1], max(h.width-len(indent), 30))
		if len(r[0]) > left {
			h.line("  " + r[0])
		} else if len(lines) > 0 {
			h.line(fmt.Sprintf("  %-*s   %s", left, r[0], lines[0]))
			lines = lines[1:]
		} else {
			h.line("  " + r[0])
		}
		for _, l := range lines {
			h.line(indent + l)
		}
	}
}

// firstColumn is the width of the widest first column up to 32.
func firstColumn(rows [][2]string) int {
	left := 0
	for _, r := range rows {
		if l := len(r[0]); l > left && l <= 32 {
			left = l
		}
	}
	return left
}

func (h *helpWriter) wrap(s, indent string) {
	for _, l := range wrapText(s, h.width-len(indent)) {
		h.line(indent + l)
	}
}

func wrapText(s string, width int) []string {
	var lines []string
	var cur string
	for _, w := range strings.Fields(s) {
		if cur != "" && len(cur)+1+len(w) > width {
			lines = append(lines, cur)
			cur = ""
		}
		if cur != "" {
			cur += " "
		}
		cur += w
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

func visibleChildren(n *kong.Node) []*kong.Node {
	var out []*kong.Node
	for _, c := range n.Children {
		if !c.Hidden && c.Type == kong.CommandNode {
			out = append(out, c)
		}
	}
	return out
}

// commandNodes is every visible command under n, depth first.
func commandNodes(n *kong.Node) []*kong.Node {
	var out []*kong.Node
	for _, c := range visibleChildren(n) {
		out = append(out, c)
		out = append(out, commandNodes(c)...)
	}
	return out
}

// Examples: each command's Help (kong.HelpProvider), shown under
// "Examples:". One command per line; a comment follows "#".

func (*BuildCmd) Help() string {
	return `tug build -t myapp .
tug build -t myapp:1 -f docker/Dockerfile --build-arg VERSION=1 .
tug build --target test --no-cache -q .      # prints only the image id
tug build --ssh default -t myapp .           # RUN --mount=type=ssh reaches $SSH_AUTH_SOCK's agent
tug build --isolation=chroot -t myapp .      # root in a CI container that can make no namespace`
}

func (*BuilderCmd) Help() string {
	return `tug builder prune           # cache no image uses
tug builder prune -a        # all build cache`
}

func (*BuilderPruneCmd) Help() string {
	return `tug builder prune
tug builder prune -a -f`
}

func (*PullCmd) Help() string {
	return `tug pull busybox                      # docker.io/library/busybox:latest
tug pull 127.0.0.1:5000/app:1         # loopback registries speak plain HTTP
tug pull --platform linux/arm64 -q alpine`
}

func (*PushCmd) Help() string {
	return `tug push 127.0.0.1:5000/app:1
tug push myapp registry.example.com/team/myapp:1 --digestfile digest.txt`
}

func (*LoginCmd) Help() string {
	return `tug login -u alice registry.example.com
echo "$TOKEN" | tug login -u alice --password-stdin registry.example.com`
}

func (*LogoutCmd) Help() string {
	return `tug logout registry.example.com`
}

func (*ImagesCmd) Help() string {
	return `tug images
tug images busybox -q                 # ids of busybox's images
tug images --format '{{.Repository}}:{{.Tag}} {{.Size}}'
tug images --format json`
}

func (*HistoryCmd) Help() string {
	return `tug history busybox
tug history --no-trunc --format '{{.CreatedBy}}' myapp`
}

func (*ImageCmd) Help() string {
	return `tug image ls
tug image rm busybox
tug image inspect -f '{{.Config.Cmd}}' busybox
tug image prune -a`
}

func (*TagCmd) Help() string {
	return `tug tag busybox localhost/mine:v1
tug tag 0123456789ab 127.0.0.1:5000/app:1`
}

func (*RmiCmd) Help() string {
	return `tug rmi localhost/mine:v1
tug rmi -f 0123456789ab              # an id with several names: remove them all`
}

func (*InspectCmd) Help() string {
	return `tug inspect busybox
tug inspect -f '{{.State.Status}}' web
tug inspect --type image --format '{{json .Config.Env}}' myapp`
}

func (*SaveCmd) Help() string {
	return `tug save -o busybox.tar busybox
tug save busybox | gzip > busybox.tar.gz
tug save --format oci-archive -o app.tar myapp:1 myapp:2`
}

func (*LoadCmd) Help() string {
	return `tug load -i busybox.tar
gunzip -c busybox.tar.gz | tug load`
}

func (*InfoCmd) Help() string {
	return `tug info
tug info --format '{{.Store.GraphRoot}}'`
}

func (*RunCmd) Help() string {
	return `tug run --rm -it busybox sh             # a shell; the container goes when it exits
tug run -d --name web -p 8080:80 busybox httpd -f -p 80
tug run --rm -v "$PWD":/src -w /src -u 1000 busybox ls
tug --debug run --rm busybox true       # says which --isolation auto chose`
}

func (*CreateCmd) Help() string {
	return `tug create --name web -p 8080:80 busybox httpd -f -p 80
tug start web`
}

func (*StartCmd) Help() string {
	return `tug start web
tug start -a job                     # wait, print its output, exit with its status`
}

func (*RestartCmd) Help() string {
	return `tug restart web
tug restart -t 2 web db`
}

func (*PsCmd) Help() string {
	return `tug ps
tug ps -a --filter status=exited -q
tug ps --format 'table {{.Names}}\t{{.Status}}'`
}

func (*RmCmd) Help() string {
	return `tug rm web
tug rm -f $(tug ps -aq)              # every container, running or not`
}

func (*ExecCmd) Help() string {
	return `tug exec web ps
tug exec -it -w /tmp web sh`
}

func (*LogsCmd) Help() string {
	return `tug logs web
tug logs -f --tail 10 -t web
tug logs --since 10m web`
}

func (*PortCmd) Help() string {
	return `tug port web
tug port web 80/tcp`
}

func (*RenameCmd) Help() string {
	return `tug rename web frontend`
}

func (*CpCmd) Help() string {
	return `tug cp web:/etc/hostname .
tug cp ./config.json web:/etc/app/
tug cp web:/var/log - | tar -tv      # a tar archive on stdout`
}

func (*StopCmd) Help() string {
	return `tug stop web
tug stop -t 1 web db`
}

func (*KillCmd) Help() string {
	return `tug kill web
tug kill -s HUP web`
}

func (*WaitCmd) Help() string {
	return `tug wait job                       # prints its exit code`
}

func (*ContainerCmd) Help() string {
	return `tug container ls -a
tug container rm web
tug container prune -f`
}

func (*ContainerPruneCmd) Help() string {
	return `tug container prune -f`
}

func (*ImagePruneCmd) Help() string {
	return `tug image prune                      # images without a name
tug image prune -a -f                # every image no container uses`
}

func (*ContainerInspectCmd) Help() string {
	return `tug container inspect web
tug container inspect -f '{{.State.Pid}}' web`
}

func (*VolumeCmd) Help() string {
	return `tug volume create data
tug run --rm -v data:/data busybox touch /data/x
tug volume ls`
}

func (*VolumeCreateCmd) Help() string {
	return `tug volume create data`
}

func (*VolumeLsCmd) Help() string {
	return `tug volume ls
tug volume ls -q`
}

func (*VolumeRmCmd) Help() string {
	return `tug volume rm data
tug volume rm -f data old`
}

func (*VolumePruneCmd) Help() string {
	return `tug volume prune -f`
}

func (*SystemResetCmd) Help() string {
	return `tug system reset --force`
}

func (*VolumeInspectCmd) Help() string {
	return `tug volume inspect data
tug volume inspect -f '{{.Mountpoint}}' data`
}

func (*SystemCmd) Help() string {
	return `tug system df
tug system prune -a
tug system check --repair`
}

func (*SystemDfCmd) Help() string {
	return `tug system df
tug system df --format json`
}

func (*SystemPruneCmd) Help() string {
	return `tug system prune
tug system prune -a -f               # unused images too, not only dangling ones`
}

func (*SystemCheckCmd) Help() string {
	return `tug system check
tug system check --repair`
}

func (*VersionCmd) Help() string {
	return `tug version
tug version --format '{{.Client.Version}}'`
}

func (*CompletionCmd) Help() string {
	return `source <(tug completion bash)          # in ~/.bashrc
tug completion zsh > "${fpath[1]}/_tug"
tug completion fish > ~/.config/fish/completions/tug.fish`
}
