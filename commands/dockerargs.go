package commands

import (
	"errors"
	"strings"

	"github.com/alecthomas/kong"
)

// Docker's argument conventions that kong does not follow by itself.

// parseArgs parses args as Docker's CLI reads them. -h is --help, except
// in a command with a -h of its own (run and create: --hostname): kong's
// help flag, being the application's, would win over the command's, so it
// has no short form, and a -h that no command takes is read again as
// --help.
func parseArgs(p *kong.Kong, args []string) (*kong.Context, error) {
	if p.Model.HelpFlag != nil {
		p.Model.HelpFlag.Short = 0
	}
	kctx, err := p.Parse(args)
	if err == nil || !isUnknownFlag(err, "-h") {
		return kctx, err
	}
	again := make([]string, len(args))
	for i, a := range args {
		if a == "-h" {
			a = "--help"
		}
		again[i] = a
	}
	return p.Parse(again)
}

// isUnknownFlag reports whether err is kong's "unknown flag NAME".
func isUnknownFlag(err error, name string) bool {
	rest, ok := strings.CutPrefix(err.Error(), "unknown flag "+name)
	return ok && (rest == "" || rest[0] == ',')
}

// usageHint is Docker's second line of a usage error: the help of the
// command that was being parsed.
func usageHint(err error) string {
	path := "tug"
	var pe *kong.ParseError
	if errors.As(err, &pe) && pe.Context != nil {
		if cmd := pe.Context.Selected(); cmd != nil {
			path = "tug " + commandPath(cmd)
		}
	}
	return "See '" + path + " --help'."
}

// commandPath is a command's words after "tug", without aliases.
func commandPath(n *kong.Node) string {
	var words []string
	for ; n != nil && n.Type == kong.CommandNode; n = n.Parent {
		words = append([]string{n.Name}, words...)
	}
	return strings.Join(words, " ")
}

// AfterApply gives run and create Docker's "--": it ends the flags, and the
// image is the word after it. kong keeps a "--" that comes before a
// pass-through argument (the image) as that argument's value.
func (c *RunCmd) AfterApply() error {
	if c.Image == "--" && len(c.Command) > 0 {
		c.Image, c.Command = c.Command[0], c.Command[1:]
	}
	return nil
}
