package remote

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// Registries is the registry configuration a Podman user writes in
// registries.conf (version 2): per-registry settings found by the longest
// matching prefix, and short-name aliases.
//
// tug reads the keys below and ignores the rest. In particular
// unqualified-search-registries is Podman's and not Docker's: tug, like
// Docker, completes every other short name with docker.io. The version 1
// format ([registries.search] ...) is not read.
type Registries struct {
	Registries []RegistryConf    `toml:"registry"`
	Aliases    map[string]string `toml:"aliases"`

	// files are the files read, for messages.
	files []string
}

// RegistryConf is one [[registry]] table.
type RegistryConf struct {
	// Prefix selects the references this entry applies to: a registry
	// host[:port], optionally followed by a repository path, or
	// *.domain for every host under domain. It defaults to Location.
	Prefix string `toml:"prefix"`
	// Location replaces Prefix in a matching reference: where the image is
	// really fetched from. Empty means Prefix itself.
	Location string `toml:"location"`
	// Insecure allows plain HTTP and unverified TLS for Location.
	Insecure bool `toml:"insecure"`
	// Blocked refuses every reference that matches.
	Blocked bool `toml:"blocked"`
	// Mirrors are tried in order before Location when pulling.
	Mirrors []Mirror `toml:"mirror"`

	file string // the file that set this entry
}

// Mirror is one [[registry.mirror]] table.
type Mirror struct {
	Location string `toml:"location"`
	Insecure bool   `toml:"insecure"`
}

// RegistriesConfPaths returns the files LoadRegistries reads, as Podman
// (containers/image) finds them: $CONTAINERS_REGISTRIES_CONF, else
// ~/.config/containers/registries.conf when it exists, else
// /etc/containers/registries.conf; then the drop-ins *.conf, in name order,
// of ~/.config/containers/registries.conf.d when it exists, else of
// /etc/containers/registries.conf.d. Files that do not exist are left out.
func RegistriesConfPaths() []string {
	const system = "/etc/containers/registries.conf"
	home, _ := os.UserHomeDir()
	user := ""
	if home != "" {
		user = filepath.Join(home, ".config", "containers", "registries.conf")
	}
	main := system
	if p := os.Getenv("CONTAINERS_REGISTRIES_CONF"); p != "" {
		main = p
	} else if user != "" && exists(user) {
		main = user
	}
	var paths []string
	if exists(main) {
		paths = append(paths, main)
	}
	dir := system + ".d"
	if user != "" && exists(user+".d") {
		dir = user + ".d"
	}
	dropins, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
	slices.Sort(dropins)
	return append(paths, dropins...)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// LoadRegistries reads RegistriesConfPaths. Later files override earlier
// ones as Podman merges them: a [[registry]] with the same prefix replaces
// the earlier one, and aliases are merged key by key.
func LoadRegistries() (*Registries, error) {
	all := &Registries{}
	for _, p := range RegistriesConfPaths() {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading registries configuration: %w", err)
		}
		r, err := ParseRegistries(b, p)
		if err != nil {
			return nil, err
		}
		all.merge(r)
	}
	return all, nil
}

// ParseRegistries parses one registries.conf; file names it in errors.
func ParseRegistries(data []byte, file string) (*Registries, error) {
	r := &Registries{files: []string{file}}
	if _, err := toml.Decode(string(data), r); err != nil {
		return nil, fmt.Errorf("reading registries configuration %s: %w", file, err)
	}
	for i := range r.Registries {
		reg := &r.Registries[i]
		reg.file = file
		reg.Prefix = strings.TrimSuffix(reg.Prefix, "/")
		reg.Location = strings.TrimSuffix(reg.Location, "/")
		if reg.Prefix == "" {
			reg.Prefix = reg.Location
		}
		if reg.Prefix == "" {
			return nil, fmt.Errorf("reading registries configuration %s: a [[registry]] has neither prefix nor location", file)
		}
		if strings.HasPrefix(reg.Prefix, "*.") {
			if strings.Contains(reg.Prefix, "/") {
				return nil, fmt.Errorf("reading registries configuration %s: wildcard prefix %q must name hosts only", file, reg.Prefix)
			}
		} else if reg.Location == "" {
			reg.Location = reg.Prefix
		}
		for j, m := range reg.Mirrors {
			if m.Location == "" {
				return nil, fmt.Errorf("reading registries configuration %s: a mirror of %s has no location", file, reg.Prefix)
			}
			reg.Mirrors[j].Location = strings.TrimSuffix(m.Location, "/")
		}
	}
	for k, v := range r.Aliases {
		if HasRegistry(k) || strings.ContainsAny(k, ":@") {
			return nil, fmt.Errorf("reading registries configuration %s: alias %q must be a short name (no registry, tag or digest)", file, k)
		}
		if !HasRegistry(v) {
			return nil, fmt.Errorf("reading registries configuration %s: alias %q = %q must name a registry", file, k, v)
		}
	}
	return r, nil
}

func (r *Registries) merge(o *Registries) {
	r.files = append(r.files, o.files...)
	for _, reg := range o.Registries {
		if i := slices.IndexFunc(r.Registries, func(e RegistryConf) bool { return e.Prefix == reg.Prefix }); i >= 0 {
			r.Registries[i] = reg
		} else {
			r.Registries = append(r.Registries, reg)
		}
	}
	for k, v := range o.Aliases {
		if r.Aliases == nil {
			r.Aliases = map[string]string{}
		}
		r.Aliases[k] = v
	}
}

// Alias returns the reference a short name stands for ("myapp:1" with
// alias myapp = "127.0.0.1:5000/team/myapp" gives
// "127.0.0.1:5000/team/myapp:1"), and false when s names a registry or has
// no alias. The tag or digest of s, if any, wins over one in the alias.
func (r *Registries) Alias(s string) (string, bool) {
	if r == nil || len(r.Aliases) == 0 || HasRegistry(s) {
		return s, false
	}
	repo, suffix := splitTag(s)
	target, ok := r.Aliases[repo]
	if !ok {
		return s, false
	}
	if suffix != "" {
		target, _ = splitTag(target)
	}
	return target + suffix, true
}

// splitTag splits "repo:tag" or "repo@digest" into the repository and the
// rest, separator included.
func splitTag(s string) (string, string) {
	if i := strings.IndexByte(s, '@'); i >= 0 {
		return s[:i], s[i:]
	}
	if i := strings.LastIndexByte(s, ':'); i > strings.LastIndexByte(s, '/') {
		return s[:i], s[i:]
	}
	return s, ""
}

// Find returns the entry whose prefix matches repo (a repository name with
// its registry, e.g. docker.io/library/busybox) the longest, as Podman
// picks it, or nil.
func (r *Registries) Find(repo string) *RegistryConf {
	if r == nil {
		return nil
	}
	var best *RegistryConf
	bestLen := -1
	for i := range r.Registries {
		reg := &r.Registries[i]
		if n := matchPrefix(repo, reg.Prefix); n > bestLen {
			best, bestLen = reg, n
		}
	}
	return best
}

// matchPrefix returns the length of prefix if it matches repo, else -1. A
// prefix matches whole path components ("a.io/x" does not match "a.io/xy",
// and, stricter than Podman, "a.io" does not match "a.io:5000/x");
// *.domain matches every host below domain, on any port.
func matchPrefix(repo, prefix string) int {
	if strings.HasPrefix(prefix, "*.") {
		host, _, _ := strings.Cut(repo, "/")
		host, _, _ = strings.Cut(host, ":")
		if strings.HasSuffix(host, prefix[1:]) {
			return len(prefix)
		}
		return -1
	}
	if repo == prefix {
		return len(prefix)
	}
	if len(repo) > len(prefix) && strings.HasPrefix(repo, prefix) {
		if repo[len(prefix)] == '/' {
			return len(prefix)
		}
	}
	return -1
}

// Endpoint is one place to fetch a reference from.
type Endpoint struct {
	// Ref is the reference rewritten for this endpoint.
	Ref string
	// Mirror is true for a mirror, false for the registry itself.
	Mirror bool
}

// Endpoints returns where to pull ref (a canonical reference such as
// docker.io/library/busybox:latest) from, in order: the mirrors of its
// registry entry, then the entry's location. Without an entry, it is ref
// alone.
func (reg *RegistryConf) Endpoints(ref string) []Endpoint {
	if reg == nil {
		return []Endpoint{{Ref: ref}}
	}
	rewrite := func(loc string) string {
		if strings.HasPrefix(reg.Prefix, "*.") || loc == "" {
			return ref
		}
		return loc + ref[len(reg.Prefix):]
	}
	var eps []Endpoint
	for _, m := range reg.Mirrors {
		eps = append(eps, Endpoint{Ref: rewrite(m.Location), Mirror: true})
	}
	return append(eps, Endpoint{Ref: rewrite(reg.Location)})
}

// InsecureHost reports whether registries.conf allows plain HTTP and
// unverified TLS for host (host[:port]): it is the location of an entry
// marked insecure, a mirror marked insecure, or under an insecure
// *.domain prefix.
func (r *Registries) InsecureHost(host string) bool {
	if r == nil {
		return false
	}
	hostOf := func(loc string) string {
		h, _, _ := strings.Cut(loc, "/")
		return h
	}
	for _, reg := range r.Registries {
		if reg.Insecure {
			if strings.HasPrefix(reg.Prefix, "*.") && reg.Location == "" {
				if matchPrefix(host, reg.Prefix) >= 0 {
					return true
				}
			} else if hostOf(reg.Location) == host {
				return true
			}
		}
		for _, m := range reg.Mirrors {
			if m.Insecure && hostOf(m.Location) == host {
				return true
			}
		}
	}
	return false
}

// Files returns the files the configuration was read from.
func (r *Registries) Files() []string {
	if r == nil {
		return nil
	}
	return r.files
}
