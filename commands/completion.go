package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/tugcli/tug/image"
)

// Shell completion. The scripts that `tug completion SHELL` prints call
// the hidden `tug __complete WORD...` with the words typed after "tug",
// the last being the one to complete (perhaps empty). It prints one
// candidate a line, a tab and a description after some; a first line
// ":files" asks the shell to complete file names instead. Commands and
// flags come from kong's model; images, containers and volumes from the
// store, which is not created when it is not there, and errors are never
// printed: a completion prints candidates or nothing.

// CompletionCmd is `tug completion`.
type CompletionCmd struct {
	Shell string `arg:"" name:"SHELL" enum:"bash,zsh,fish" help:"bash, zsh or fish."`
}

// Run prints the script.
func (c *CompletionCmd) Run(env *Env) error {
	_, err := io.WriteString(env.Stdout, completionScripts[c.Shell])
	return err
}

// CompleteCmd is `tug __complete`.
type CompleteCmd struct {
	Words []string `arg:"" optional:"" name:"WORD"`
}

// Run prints the candidates for the last word.
func (c *CompleteCmd) Run(ctx context.Context, kctx *kong.Context, env *Env) error {
	env.Stderr = io.Discard
	words := c.Words
	if len(words) == 0 {
		words = []string{""}
	}
	st := walkLine(kctx.Model.Node, words[:len(words)-1])
	// The store the line names (--root, --runroot, --storage-driver).
	g := *env.Globals
	for name, v := range st.values {
		switch name {
		case "root":
			g.Root = v
		case "runroot":
			g.RunRoot = v
		case "storage-driver":
			g.StorageDriver = v
		}
	}
	env.Globals = &g
	var exit error
	names := func(kind string) []string {
		if exit != nil || !image.Exists(image.Options{GraphRoot: g.Root}) {
			return nil
		}
		out, err := storeNames(ctx, env, kind, st.node.Name)
		var ee *ExitError
		if errors.As(err, &ee) && ee.Err == nil {
			// tug's user namespace child printed the candidates.
			exit = err
		}
		return out
	}
	cands, files := st.candidates(words[len(words)-1], names)
	if exit != nil {
		return exit
	}
	if files {
		fmt.Fprintln(env.Stdout, ":files")
		return nil
	}
	for _, cd := range cands {
		if cd.help != "" {
			fmt.Fprintf(env.Stdout, "%s\t%s\n", cd.value, oneLine(cd.help))
		} else {
			fmt.Fprintln(env.Stdout, cd.value)
		}
	}
	return nil
}

// lineState is where a command line stands before its last word.
type lineState struct {
	node       *kong.Node
	positional int        // positional arguments given to node
	pending    *kong.Flag // the last word is this flag's value
	noFlags    bool       // after "--", or in a container's command
	rest       bool       // in a container's command: nothing to complete
	values     map[string]string
}

// walkLine follows words through the model as kong parses them.
func walkLine(root *kong.Node, words []string) *lineState {
	st := &lineState{node: root, values: map[string]string{}}
	for _, w := range words {
		switch {
		case st.pending != nil:
			st.values[st.pending.Name] = w
			st.pending = nil
		case st.rest:
		case !st.noFlags && w == "--":
			st.noFlags = true
		case !st.noFlags && strings.HasPrefix(w, "--"):
			name, v, hasV := strings.Cut(w[2:], "=")
			f := findFlag(st.node, name)
			switch {
			case f == nil || takesNoValue(f):
			case hasV:
				st.values[f.Name] = v
			default:
				st.pending = f
			}
		case !st.noFlags && strings.HasPrefix(w, "-") && len(w) > 1:
			for i, r := range w[1:] {
				f := findShort(st.node, r)
				if f == nil || takesNoValue(f) {
					continue
				}
				if v := w[2+i:]; v != "" {
					st.values[f.Name] = v
				} else {
					st.pending = f
				}
				break
			}
		default:
			st.positionalWord(w)
		}
	}
	return st
}

func (st *lineState) positionalWord(w string) {
	if st.positional == 0 {
		for _, c := range st.node.Children {
			if c.Type == kong.CommandNode && (c.Name == w || slices.Contains(c.Aliases, w)) {
				st.node, st.noFlags = c, false
				return
			}
		}
	}
	pos := st.node.Positional
	if st.positional >= len(pos) {
		return
	}
	arg := pos[st.positional]
	if !arg.IsCumulative() {
		st.positional++
	}
	// A pass-through argument (run's IMAGE, exec's CONTAINER) ends tug's
	// part of the line: what follows is the container's command.
	if arg.Tag.Passthrough || (st.positional < len(pos) && pos[st.positional].Tag.PassthroughMode == kong.PassThroughModeAll) {
		st.rest = true
	}
}

func takesNoValue(f *kong.Flag) bool { return f.IsBool() || f.IsCounter() }

func allFlags(n *kong.Node) []*kong.Flag {
	var out []*kong.Flag
	for _, group := range n.AllFlags(false) {
		out = append(out, group...)
	}
	return out
}

func findFlag(n *kong.Node, name string) *kong.Flag {
	for _, f := range allFlags(n) {
		if f.Name == name || slices.Contains(f.Aliases, name) || (f.Tag.Negatable != "" && "no-"+f.Name == name) {
			return f
		}
	}
	return nil
}

func findShort(n *kong.Node, r rune) *kong.Flag {
	for _, f := range allFlags(n) {
		if f.Short == r {
			return f
		}
	}
	return nil
}

type candidate struct{ value, help string }

// candidates completes cur; files asks for file names instead. names
// lists the store's images, containers or volumes.
func (st *lineState) candidates(cur string, names func(kind string) []string) (out []candidate, files bool) {
	switch {
	case st.rest:
		return nil, false
	case st.pending != nil:
		vals, files := flagValues(st.pending)
		return matching(vals, cur, ""), files
	case !st.noFlags && strings.HasPrefix(cur, "--") && strings.Contains(cur, "="):
		name, v, _ := strings.Cut(cur[2:], "=")
		f := findFlag(st.node, name)
		if f == nil {
			return nil, false
		}
		vals, files := flagValues(f)
		return matching(vals, v, "--"+name+"="), files
	case !st.noFlags && strings.HasPrefix(cur, "-"):
		for _, f := range allFlags(st.node) {
			if !f.Hidden && strings.HasPrefix("--"+f.Name, cur) {
				out = append(out, candidate{"--" + f.Name, f.Help})
			}
		}
		return out, false
	}
	if st.positional == 0 {
		for _, c := range visibleChildren(st.node) {
			if strings.HasPrefix(c.Name, cur) {
				out = append(out, candidate{c.Name, c.Help})
			}
		}
		slices.SortFunc(out, func(a, b candidate) int { return strings.Compare(a.value, b.value) })
	}
	pos := st.node.Positional
	if st.positional >= len(pos) {
		return out, false
	}
	arg := pos[st.positional]
	if enum := arg.EnumSlice(); len(enum) > 0 && arg.Enum != "" {
		return append(out, matching(enum, cur, "")...), false
	}
	var vals []string
	switch name := strings.ToUpper(arg.Name); {
	case name == "PATH" || strings.HasSuffix(name, "_PATH") || (st.node.Name == "cp" && (name == "SRC" || name == "DEST")):
		return nil, true
	case strings.Contains(name, "CONTAINER"):
		vals = names("container")
	case name == "NAME|ID":
		vals = append(names("container"), names("image")...)
	case strings.Contains(name, "IMAGE") || strings.HasPrefix(name, "REPOSITORY"):
		vals = names("image")
	case name == "VOLUME":
		vals = names("volume")
	}
	return append(out, matching(vals, cur, "")...), false
}

// matching keeps the values that start with cur, sorted, once each, and
// puts prefix before each.
func matching(vals []string, cur, prefix string) []candidate {
	slices.Sort(vals)
	vals = slices.Compact(vals)
	var out []candidate
	for _, v := range vals {
		if strings.HasPrefix(v, cur) {
			out = append(out, candidate{value: prefix + v})
		}
	}
	return out
}

// flagValues are the values a flag takes, when there are few; files says
// its value is a path.
func flagValues(f *kong.Flag) (vals []string, files bool) {
	if f.Enum != "" {
		return slices.DeleteFunc(f.EnumSlice(), func(s string) bool { return s == "" }), false
	}
	switch f.Name {
	case "network":
		return []string{"private", "host", "none", "pasta", "slirp4netns"}, false
	case "restart":
		return []string{"no", "on-failure", "always", "unless-stopped"}, false
	case "signal":
		return []string{"HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "TERM", "STOP", "CONT"}, false
	case "storage-driver":
		return []string{"overlay", "vfs"}, false
	case "platform":
		return []string{"linux/amd64", "linux/arm64", "linux/arm/v7", "linux/386", "linux/ppc64le", "linux/s390x", "linux/riscv64"}, false
	case "file", "env-file", "iidfile", "input", "output", "digestfile", "root", "runroot", "volume", "secret":
		return nil, true
	}
	return nil, false
}

// storeNames lists the store's images (name:tag, and the short name
// Docker would show for docker.io's), containers (names; only running
// ones for the commands that need one running, only stopped ones for
// start) or volumes.
func storeNames(ctx context.Context, env *Env, kind, command string) ([]string, error) {
	store, err := env.Store(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	switch kind {
	case "image":
		rows, err := store.List()
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if r.Repository == "" || r.Repository == "<none>" {
				continue
			}
			name := r.Repository
			if r.Tag != "" && r.Tag != "<none>" {
				name += ":" + r.Tag
			}
			out = append(out, name)
			if short, ok := strings.CutPrefix(name, "docker.io/library/"); ok {
				out = append(out, short)
			} else if short, ok := strings.CutPrefix(name, "docker.io/"); ok {
				out = append(out, short)
			}
		}
	case "container":
		states, err := store.ContainerStates()
		if err != nil {
			return nil, err
		}
		for _, s := range states {
			switch command {
			case "stop", "kill", "exec", "port", "pause":
				if !s.Running() {
					continue
				}
			case "start":
				if s.Running() {
					continue
				}
			}
			out = append(out, s.Name)
		}
	case "volume":
		vols, err := store.Volumes()
		if err != nil {
			return nil, err
		}
		for _, v := range vols {
			out = append(out, v.Name)
		}
	}
	return out, nil
}

var completionScripts = map[string]string{
	"bash": `# bash completion for tug. Load it with: source <(tug completion bash)
_tug() {
    local cur=${COMP_WORDS[COMP_CWORD]} i w j=-1 words=() line out prefix
    # bash splits a word at COMP_WORDBREAKS (= and : among them); join the
    # pieces again, and take them off each candidate afterwards, since
    # bash replaces only the last piece.
    for ((i = 1; i <= COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if ((j >= 0)) && [[ $w =~ ^[=:]+$ || ${COMP_WORDS[i-1]} =~ ^[=:]+$ ]] && ((i > 1)); then
            words[j]+=$w
        else
            words[++j]=$w
        fi
    done
    prefix=${words[j]%"$cur"}
    COMPREPLY=()
    out=$("${COMP_WORDS[0]}" __complete "${words[@]}" 2>/dev/null)
    while IFS= read -r line; do
        line=${line%%$'\t'*}
        [[ -z $line ]] && continue
        if [[ $line == ":files" ]]; then
            COMPREPLY=()
            return 0
        fi
        COMPREPLY+=("${line#"$prefix"}")
    done <<<"$out"
    return 0
}
complete -o default -F _tug tug
`,
	"zsh": `#compdef tug
# zsh completion for tug. Load it with: source <(tug completion zsh)
# after compinit, or save it as _tug in a directory of $fpath.
compdef _tug tug

_tug() {
    local -a lines cands
    local line c d
    # The words before, less their quotes, and the current one up to the
    # cursor as zsh has unquoted it (an opening quote is not in PREFIX).
    lines=("${(@f)$("${words[1]}" __complete "${(@Q)words[2,CURRENT-1]}" "${(Q)PREFIX}" 2>/dev/null)}")
    if [[ ${lines[1]} == :files ]]; then
        _files
        return
    fi
    for line in "${lines[@]}"; do
        [[ -z $line ]] && continue
        c=${line%%$'\t'*}
        d=""
        [[ $line == *$'\t'* ]] && d=${line#*$'\t'}
        c=${c//:/\\:}
        cands+=("$c${d:+:$d}")
    done
    if (( ${#cands} )); then
        _describe -t tug 'tug' cands
    else
        _files
    fi
}

if [[ "$funcstack[1]" == "_tug" ]]; then
    _tug "$@"
fi
`,
	"fish": `# fish completion for tug. Load it with: tug completion fish | source
function __tug_complete
    set -l tokens (commandline -opc)
    set -l cmd $tokens[1]
    set -e tokens[1]
    # fish unquotes the tokens before (-o), not the current one, which may
    # still lack its closing quote.
    set -l cur (commandline -ct | string unescape)
    set -l out ($cmd __complete $tokens "$cur" 2>/dev/null)
    if test "$out[1]" = ":files"
        __fish_complete_path "$cur"
        return
    end
    printf '%s\n' $out
end
complete -c tug -f -a '(__tug_complete)'
`,
}
