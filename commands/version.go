package commands

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Version is tug's version, set at build time with
// -ldflags "-X github.com/tugcli/tug/commands.Version=...".
var Version = "0.1.0-dev"

// VersionCmd is `tug version`.
type VersionCmd struct {
	Format string `short:"f" help:"Format output using a Go template." placeholder:"STRING"`
}

type versionInfo struct {
	Client clientVersion
}

type clientVersion struct {
	Version   string
	GoVersion string
	GitCommit string
	Os        string
	Arch      string
}

// gitCommit is the commit tug was built from, as Go recorded it.
func gitCommit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value[:min(len(s.Value), 12)]
			}
		}
	}
	return "unknown"
}

// versionLine is what tug --version prints, as docker --version does
// ("Docker version 27.3.1, build ce12230").
func versionLine() string {
	return fmt.Sprintf("tug version %s, build %s", Version, gitCommit())
}

// Run prints the version; it opens no store.
func (c *VersionCmd) Run(ctx context.Context, env *Env) error {
	v := versionInfo{Client: clientVersion{Version: Version, GoVersion: runtime.Version(), GitCommit: gitCommit(), Os: runtime.GOOS, Arch: runtime.GOARCH}}
	if c.Format != "" {
		return writeObject(env.Stdout, c.Format, v)
	}
	fmt.Fprintf(env.Stdout, "Client: tug\n Version:    %s\n Go version: %s\n Git commit: %s\n OS/Arch:    %s/%s\n",
		v.Client.Version, v.Client.GoVersion, v.Client.GitCommit, v.Client.Os, v.Client.Arch)
	return nil
}

func parsePlatform(s string) (v1.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return v1.Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant], e.g. linux/arm64", s)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}
