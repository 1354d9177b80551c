// Package remote speaks the registry protocol for tug: it parses image
// references with Docker's rules, resolves them to one image for this host's
// platform, and gives verified access to manifests and blobs. It knows
// nothing of the local store.
package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

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
	// Registries is the registries.conf configuration; nil means
	// LoadRegistries (Podman's files).
	Registries *Registries
	// Timeout bounds how long a connection to a registry may stay silent:
	// no response headers, or no bytes of a body, for this long fails the
	// request (which is retried like a dropped connection). Zero means
	// $TUG_REGISTRY_TIMEOUT (a Go duration) if set, else DefaultTimeout.
	Timeout time.Duration
}

// DefaultTimeout is Options.Timeout's default.
const DefaultTimeout = 30 * time.Second

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
	// Mirror says a mirror served it, and Next is where ResolveFrom goes
	// on when that mirror then fails to serve a blob.
	Mirror bool
	Next   int
}

// Client reaches registries with one set of options.
type Client struct {
	opts      Options
	transport http.RoundTripper
	regs      *Registries
	regsErr   error // reading registries.conf failed: Reference reports it
}

// NewClient makes a Client. Credentials come from Keychain: Docker's and
// Podman's auth files and credential helpers, re-read on every request.
func NewClient(opts Options) *Client {
	if opts.Platform.Architecture == "" {
		opts.Platform = HostPlatform()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
		if d, err := time.ParseDuration(os.Getenv("TUG_REGISTRY_TIMEOUT")); err == nil && d > 0 {
			opts.Timeout = d
		}
	}
	c := &Client{opts: opts, regs: opts.Registries}
	if c.regs == nil {
		c.regs, c.regsErr = LoadRegistries()
	}
	verify := ggcr.DefaultTransport.(*http.Transport).Clone()
	dial := verify.DialContext
	timeout := opts.Timeout
	verify.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &idleConn{Conn: conn, timeout: timeout}, nil
	}
	verify.ResponseHeaderTimeout = timeout
	verify.IdleConnTimeout = timeout
	noVerify := verify.Clone()
	noVerify.TLSClientConfig.InsecureSkipVerify = true
	if opts.Insecure {
		verify = noVerify
	}
	c.transport = &dockerSchemePolicy{verify: verify, noVerify: noVerify, insecure: c.insecureHost, timeout: timeout}
	return c
}

// insecureHost reports whether plain HTTP and unverified TLS are allowed
// for host: --tls-verify=false, or registries.conf says so.
func (c *Client) insecureHost(host string) bool {
	return c.opts.Insecure || c.regs.InsecureHost(host)
}

// idleConn fails a read or write after the connection has been silent
// for timeout: each read or write pushes the deadline of both further, so
// a long upload does not time out the response it waits for.
type idleConn struct {
	net.Conn
	timeout time.Duration
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	c.Conn.SetDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(p)
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

// Reference parses s with Docker's rules, after applying the short-name
// aliases of registries.conf, and refuses a registry that registries.conf
// blocks. The reference is marked insecure when plain HTTP is allowed for
// its registry.
func (c *Client) Reference(s string) (name.Reference, error) {
	if c.regsErr != nil {
		return nil, c.regsErr
	}
	if alias, ok := c.regs.Alias(s); ok {
		s = alias
	}
	ref, err := c.parse(s)
	if err != nil {
		return nil, err
	}
	return ref, c.checkBlocked(ref)
}

// parse is ParseReference, marking the reference insecure when its
// registry allows plain HTTP.
func (c *Client) parse(s string) (name.Reference, error) {
	ref, err := ParseReference(s)
	if err != nil || !c.insecureHost(ref.Context().RegistryStr()) {
		return ref, err
	}
	return name.ParseReference(s, name.WithDefaultRegistry("docker.io"), name.Insecure)
}

// ErrBlocked is returned for a reference whose registry registries.conf
// blocks.
var ErrBlocked = errors.New("blocked in registries.conf")

func (c *Client) checkBlocked(ref name.Reference) error {
	if reg := c.regs.Find(repoName(ref)); reg != nil && reg.Blocked {
		return fmt.Errorf("%s: registry %s is %w (%s)", Canonical(ref), reg.Prefix, ErrBlocked, reg.file)
	}
	return nil
}

// Resolve fetches ref's manifest, and when it is an index, the manifest for
// the client's platform. When registries.conf gives ref's registry
// mirrors, they are tried in order first and the registry itself last; the
// first that answers serves the manifest and the blobs. The result's Ref
// is ref, whichever served it.
func (c *Client) Resolve(ctx context.Context, ref name.Reference) (*Resolved, error) {
	return c.ResolveFrom(ctx, ref, 0)
}

// ResolveFrom is Resolve starting at the from'th place to try (a
// previous result's Next, after its mirror failed to serve a blob).
func (c *Client) ResolveFrom(ctx context.Context, ref name.Reference, from int) (*Resolved, error) {
	if err := c.checkBlocked(ref); err != nil {
		return nil, err
	}
	eps := c.regs.Find(repoName(ref)).Endpoints(Canonical(ref))
	var errs []error
	for i, ep := range eps {
		if i < from {
			continue
		}
		epRef, err := c.parse(ep.Ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res, err := c.resolve(ctx, epRef)
		if err == nil {
			res.Ref, res.Mirror, res.Next = ref, ep.Mirror, i+1
			return res, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		if ep.Mirror {
			err = fmt.Errorf("mirror %s: %w", epRef.Context().RegistryStr(), err)
		}
		errs = append(errs, err)
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, fmt.Errorf("%s: no mirror and not the registry could serve it: %w", Canonical(ref), errors.Join(errs...))
}

// repoName is the repository of ref with its registry, as registries.conf
// prefixes are written: docker.io/library/busybox.
func repoName(ref name.Reference) string {
	reg := ref.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + ref.Context().RepositoryStr()
}

func (c *Client) resolve(ctx context.Context, ref name.Reference) (*Resolved, error) {
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
	res.Image, res.ManifestDigest, res.RawManifest = resumable(ctx, img), desc.Digest, desc.Manifest
	return res, nil
}

// ListTags returns the tags of ref's repository, from the first of its
// mirrors (see Resolve) or its registry that answers.
func (c *Client) ListTags(ctx context.Context, ref name.Reference) ([]string, error) {
	if err := c.checkBlocked(ref); err != nil {
		return nil, err
	}
	var errs []error
	for _, ep := range c.regs.Find(repoName(ref)).Endpoints(repoName(ref)) {
		epRef, err := c.parse(ep.Ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		tags, err := ggcr.List(epRef.Context(), c.remoteOptions(ctx)...)
		if err == nil {
			return tags, nil
		}
		err = c.explain(epRef, err)
		if ctx.Err() != nil {
			return nil, err
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("listing tags of %s: %w", repoName(ref), errors.Join(errs...))
}

// explain turns a registry error into one that says what to do. The
// registry's own answer stays its cause, for --debug and errors.As.
func (c *Client) explain(ref name.Reference, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode:
				return &explained{fmt.Sprintf("%s: %v", Canonical(ref), ErrManifestUnknown), ErrManifestUnknown, err}
			case transport.NameUnknownErrorCode:
				return &explained{fmt.Sprintf("%s: %v: repository %s not found in registry %s", Canonical(ref), ErrManifestUnknown, ref.Context().RepositoryStr(), ref.Context().RegistryStr()), ErrManifestUnknown, err}
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return &explained{fmt.Sprintf("%s: access denied by %s: %s (%s)", Canonical(ref), ref.Context().RegistryStr(), d.Message, loginHint(ref.Context().RegistryStr())), nil, err}
			}
		}
		if te.StatusCode == http.StatusNotFound {
			return &explained{fmt.Sprintf("%s: %v", Canonical(ref), ErrManifestUnknown), ErrManifestUnknown, err}
		}
		if te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden {
			return &explained{fmt.Sprintf("%s: access denied by %s (%s)", Canonical(ref), ref.Context().RegistryStr(), loginHint(ref.Context().RegistryStr())), nil, err}
		}
	}
	return fmt.Errorf("%s: reaching registry %s: %w", Canonical(ref), ref.Context().RegistryStr(), err)
}

// explained is a registry error in tug's words: msg says what failed and
// what to do, is (if set) is the sentinel it matches, err what the
// registry answered.
type explained struct {
	msg string
	is  error
	err error
}

func (e *explained) Error() string        { return e.msg }
func (e *explained) Unwrap() error        { return e.err }
func (e *explained) Is(target error) bool { return e.is != nil && target == e.is }

// loginHint says how to give credentials.
func loginHint(registry string) string {
	return fmt.Sprintf("if it needs credentials, run 'tug login %s'; tug reads them from $REGISTRY_AUTH_FILE, ~/.docker/config.json and Podman's auth.json", registry)
}

// dockerSchemePolicy refuses plain HTTP to any registry but a loopback one
// unless insecure: go-containerregistry also falls back to HTTP for private
// (RFC 1918) addresses, which Docker never does on its own. It skips TLS
// verification only for the hosts insecure allows.
type dockerSchemePolicy struct {
	verify, noVerify http.RoundTripper
	insecure         func(host string) bool
	timeout          time.Duration
}

func (p *dockerSchemePolicy) RoundTrip(req *http.Request) (*http.Response, error) {
	insecure := p.insecure(req.URL.Host)
	if req.URL.Scheme == "http" && !insecure && !IsLoopback(req.URL.Host) {
		return nil, fmt.Errorf("registry %s is not reachable over HTTPS and plain HTTP is only used for loopback registries: pass --tls-verify=false or mark it insecure in registries.conf to allow it", req.URL.Host)
	}
	next := p.verify
	if insecure {
		next = p.noVerify
	}
	resp, err := next.RoundTrip(req)
	if err != nil && isTimeout(err) && req.Context().Err() == nil {
		return nil, &TimeoutError{Host: req.URL.Host, Limit: p.timeout, Err: err}
	}
	if resp != nil && resp.Body != nil {
		resp.Body = &timeoutBody{ReadCloser: resp.Body, host: req.URL.Host, timeout: p.timeout}
	}
	return resp, err
}

// TimeoutError says that a registry went silent for longer than
// Options.Timeout: it sent no response headers, or no bytes of a body.
type TimeoutError struct {
	Host  string
	Limit time.Duration
	Err   error // what net/http said, for the message
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("registry %s sent nothing for %v (TUG_REGISTRY_TIMEOUT sets this limit): %v", e.Host, e.Limit, e.Err)
}

// Unwrap gives os.ErrDeadlineExceeded (a connection's deadline passed),
// not Err: since Go 1.23, net/http's "timeout awaiting response headers"
// matches context.DeadlineExceeded, and go-containerregistry never
// retries an error that does (it takes it for the caller's own deadline),
// so a registry that hung once before its headers failed the pull or push.
// The caller's deadline is not a TimeoutError: RoundTrip passes it on.
func (e *TimeoutError) Unwrap() error { return os.ErrDeadlineExceeded }

// Timeout and Temporary make go-containerregistry retry it with backoff
// (3 tries, 1 s then 3 s apart) like a dropped connection.
func (e *TimeoutError) Timeout() bool   { return true }
func (e *TimeoutError) Temporary() bool { return true }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// timeoutBody names the registry when reading a body times out.
type timeoutBody struct {
	io.ReadCloser
	host    string
	timeout time.Duration
}

func (b *timeoutBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && isTimeout(err) {
		err = &TimeoutError{Host: b.host, Limit: b.timeout, Err: err}
	}
	return n, err
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
