package remote

import (
	"strings"
	"testing"
)

// FuzzReference resolves a name the way a pull does, before any
// network: registries.conf (fuzzed) aliases and entries, then Docker's
// reference rules. A name that parses has a canonical form that parses
// back to itself; registries.conf's entry gives its mirrors then the
// registry itself, last; nothing panics.
func FuzzReference(f *testing.F) {
	conf := `unqualified-search-registries = ["docker.io"]
[[registry]]
prefix = "docker.io/library"
location = "127.0.0.1:5000/mirror"
insecure = true
[[registry.mirror]]
location = "127.0.0.1:5001/m"
[[registry]]
prefix = "*.example.com"
blocked = true
[aliases]
myapp = "127.0.0.1:5000/team/myapp"
`
	for _, s := range []string{"busybox", "busybox:1", "myapp", "myapp:2", "myapp@sha256:" + strings.Repeat("a", 64), "a.example.com:5000/x", "docker.io/library/busybox", "../../etc/passwd", "localhost/a", "[::1]:5000/x"} {
		f.Add([]byte(conf), s)
	}
	f.Add([]byte("[[registry]]\nprefix = \"docker.io\"\nlocation = \"\"\n"), "busybox")
	f.Add([]byte("[[registry]]\nprefix = \"docker.io/library/busybox\"\nlocation = \"x\"\n"), "busybox:1")
	f.Fuzz(func(t *testing.T, conf []byte, s string) {
		regs, err := ParseRegistries(conf, "registries.conf")
		if err != nil {
			if !strings.Contains(err.Error(), "registries.conf") {
				t.Fatalf("error does not name the file: %v", err)
			}
			regs = nil
		}
		if alias, ok := regs.Alias(s); ok {
			if HasRegistry(s) {
				t.Fatalf("Alias(%q) applied to a name with a registry", s)
			}
			s = alias
		}
		ref, err := ParseReference(s)
		if err != nil {
			if !strings.Contains(err.Error(), "invalid reference format") {
				t.Fatalf("ParseReference(%q): %v", s, err)
			}
			return
		}
		c := Canonical(ref)
		again, err := ParseReference(c)
		if err != nil || Canonical(again) != c {
			t.Fatalf("canonical form %q of %q does not parse back to itself (%v)", c, s, err)
		}
		IsLoopback(ref.Context().RegistryStr())
		regs.InsecureHost(ref.Context().RegistryStr())
		reg := regs.Find(repoName(ref))
		eps := reg.Endpoints(c)
		if len(eps) == 0 || eps[len(eps)-1].Mirror {
			t.Fatalf("endpoints of %q: %+v, want the registry itself last", c, eps)
		}
		if reg == nil && (len(eps) != 1 || eps[0].Ref != c) {
			t.Fatalf("without an entry, endpoints of %q: %+v", c, eps)
		}
	})
}
