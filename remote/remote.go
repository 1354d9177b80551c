// Package remote speaks the registry protocol for tug: it parses image
// references with Docker's rules, resolves them to one image for this host's
// platform, and gives verified access to manifests and blobs. It knows
// nothing of the local store.
package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcr "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ErrManifestUnknown is returned when the registry has no such tag or digest.
var ErrManifestUnknown = errors.New("manifest unknown")

// Options say how to reach registries.
type Options struct {
	// Insecure allows plain HTTP and unverified TLS for every registry
	// (--tls-verify=false). Without it, only loopback registries are spoken
	// to over plain HTTP, as Docker does.
	Insecure bool
	// Platform to resolve an image index to; the zero value means this host's.
	Platform v1.Platform
	// UserAgent sent with every request.
	UserAgent string
}

// HostPlatform is the platform of this binary: what `tug pull` picks from
// an index (go-containerregistry alone would pick linux/amd64 everywhere).
func HostPlatform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	switch runtime.GOARCH {
	case "arm":
		p.Variant = "v7"
	case "arm64":
		p.Variant = "v8"
	}
	return p
}

// ParseReference parses an image reference with Docker's defaults: a short
// name is docker.io/library/NAME, a missing tag is latest.
func ParseReference(s string) (name.Reference, error) {
	ref, err := name.ParseReference(s, name.WithDefaultRegistry("docker.io"))
	if err != nil {
		return nil, fmt.Errorf("invalid reference format: %q: %w", s, err)
	}
	return ref, nil
}

// Canonical is the name under which the store records ref, the way Podman
// writes it: docker.io/library/busybox:latest, 127.0.0.1:5000/app@sha256:....
func Canonical(ref name.Reference) string {
	repo := ref.Context().RegistryStr()
	if repo == name.DefaultRegistry {
		repo = "docker.io"
	}
	repo += "/" + ref.Context().RepositoryStr()
	switch r := ref.(type) {
	case name.Digest:
		return repo + "@" + r.DigestStr()
	case name.Tag:
		return repo + ":" + r.TagStr()
	}
	return repo
}

// Resolved is one image found in a registry, resolved to a platform.
type Resolved struct {
	Ref            name.Reference
	Image          v1.Image
	ManifestDigest v1.Hash
	RawManifest    []byte
	// IndexDigest and RawIndex are set when Ref named an image index.
	IndexDigest *v1.Hash
	RawIndex    []byte
}

// Client reaches registries with one set of options.
type Client struct {
	opts      Options
	transport http.RoundTripper
}

// NewClient makes a Client. Credentials come from Keychain: Docker's and
// Podman's auth files and credential helpers, re-read on every request.
func NewClient(opts Options) *Client {
	if opts.Platform.Architecture == "" {
		opts.Platform = HostPlatform()
	}
	base := ggcr.DefaultTransport.(*http.Transport).Clone()
	if opts.Insecure {
		base.TLSClientConfig.InsecureSkipVerify = true
	}
	return &Client{opts: opts, transport: &dockerSchemePolicy{next: base, insecure: opts.Insecure}}
}

func (c *Client) remoteOptions(ctx context.Context) []ggcr.Option {
	o := []ggcr.Option{
		ggcr.WithContext(ctx),
		ggcr.WithAuthFromKeychain(Keychain),
		ggcr.WithTransport(c.transport),
		ggcr.WithPlatform(c.opts.Platform),
	}
	if c.opts.UserAgent != "" {
		o = append(o, ggcr.WithUserAgent(c.opts.UserAgent))
	}
	return o
}

// Reference parses s with Docker's rules, marking it insecure when the
// client allows plain HTTP.
func (c *Client) Reference(s string) (name.Reference, error) {
	ref, err := ParseReference(s)
	if err != nil || !c.opts.Insecure {
		return ref, err
	}
	return name.ParseReference(s, name.WithDefaultRegistry("docker.io"), name.Insecure)
}

// Resolve fetches ref's manifest, and when it is an index, the manifest for
// the client's platform.
func (c *Client) Resolve(ctx context.Context, ref name.Reference) (*Resolved, error) {
	opts := c.remoteOptions(ctx)
	desc, err := ggcr.Get(ref, opts...)
	if err != nil {
		return nil, c.explain(ref, err)
	}
	res := &Resolved{Ref: ref}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("reading image index %s: %w", ref, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("reading image index %s: %w", ref, err)
		}
		var found *v1.Descriptor
		var have []string
		for i := range im.Manifests {
			m := &im.Manifests[i]
			if m.Platform == nil {
				continue
			}
			have = append(have, m.Platform.String())
			if found == nil && m.Platform.Satisfies(c.opts.Platform) {
				found = m
			}
		}
		if found == nil {
			return nil, fmt.Errorf("%s: no image for platform %s in the index (it has: %s)", ref, c.opts.Platform.String(), strings.Join(have, ", "))
		}
		d := desc.Digest
		res.IndexDigest, res.RawIndex = &d, desc.Manifest
		desc, err = ggcr.Get(ref.Context().Digest(found.Digest.String()), opts...)
		if err != nil {
			return nil, c.explain(ref, err)
		}
	}
	if !desc.MediaType.IsImage() {
		return nil, fmt.Errorf("%s: %s is not an image manifest", ref, desc.MediaType)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("reading image manifest %s: %w", ref, err)
	}
	res.Image, res.ManifestDigest, res.RawManifest = img, desc.Digest, desc.Manifest
	return res, nil
}

// explain turns a registry error into one that says what to do.
func (c *Client) explain(ref name.Reference, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode:
				return fmt.Errorf("%s: %w", Canonical(ref), ErrManifestUnknown)
			case transport.NameUnknownErrorCode:
				return fmt.Errorf("%s: %w: repository %s not found in registry %s", Canonical(ref), ErrManifestUnknown, ref.Context().RepositoryStr(), ref.Context().RegistryStr())
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return fmt.Errorf("%s: access denied by %s: %s (%s)", Canonical(ref), ref.Context().RegistryStr(), d.Message, loginHint(ref.Context().RegistryStr()))
			}
		}
		if te.StatusCode == http.StatusNotFound {
			return fmt.Errorf("%s: %w", Canonical(ref), ErrManifestUnknown)
		}
		if te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden {
			return fmt.Errorf("%s: access denied by %s (%s)", Canonical(ref), ref.Context().RegistryStr(), loginHint(ref.Context().RegistryStr()))
		}
	}
	return fmt.Errorf("%s: reaching registry %s: %w", Canonical(ref), ref.Context().RegistryStr(), err)
}

// loginHint says how to give credentials.
func loginHint(registry string) string {
	return fmt.Sprintf("if it needs credentials, run 'tug login %s'; tug reads them from $REGISTRY_AUTH_FILE, ~/.docker/config.json and Podman's auth.json", registry)
}

// dockerSchemePolicy refuses plain HTTP to any registry but a loopback one
// unless insecure: go-containerregistry also falls back to HTTP for private
// (RFC 1918) addresses, which Docker never does on its own.
type dockerSchemePolicy struct {
	next     http.RoundTripper
	insecure bool
}

func (p *dockerSchemePolicy) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !p.insecure && !IsLoopback(req.URL.Host) {
		return nil, fmt.Errorf("registry %s is not reachable over HTTPS and plain HTTP is only used for loopback registries: pass --tls-verify=false to allow it", req.URL.Host)
	}
	return p.next.RoundTrip(req)
}

// IsLoopback reports whether a registry host[:port] is localhost, in
// 127.0.0.0/8 or ::1: the registries Docker speaks plain HTTP to.
func IsLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// HasRegistry reports whether a reference names its registry (its first
// path component has a dot or a port, or is localhost), as Docker decides.
func HasRegistry(ref string) bool {
	first, _, found := strings.Cut(ref, "/")
	if !found {
		return false
	}
	return strings.ContainsAny(first, ".:") || first == "localhost"
}
