package remote

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcr "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BlobOutcome says how a blob got into the repository.
type BlobOutcome int

const (
	// BlobUploaded: its bytes were sent.
	BlobUploaded BlobOutcome = iota
	// BlobExists: the repository had it already (HEAD answered 200).
	BlobExists
	// BlobMounted: the registry linked it from another of its repositories.
	BlobMounted
)

// Pusher pushes blobs and then a manifest to one repository. Uploads may
// run in parallel. go-containerregistry does the protocol: a HEAD first, a
// cross-repository mount when a source repository is given, retries with
// backoff on 408, 429, 5xx, dropped connections and a registry silent for
// Options.Timeout (3 tries, 1 s then 3 s).
type Pusher struct {
	client *Client
	ref    name.Reference
	p      *ggcr.Pusher
	log    *blobLog

	mu    sync.Mutex
	reuse map[string]*http.Client // by source repository
}

// NewPusher prepares a push to ref's repository.
func (c *Client) NewPusher(ctx context.Context, ref name.Reference) (*Pusher, error) {
	if _, ok := ref.(name.Digest); ok {
		return nil, fmt.Errorf("%s: cannot push to a digest reference: name a tag", ref)
	}
	log := &blobLog{next: c.transport, exists: map[string]bool{}, mounted: map[string]bool{}}
	opts := []ggcr.Option{
		ggcr.WithAuthFromKeychain(Keychain),
		ggcr.WithTransport(log),
	}
	if c.opts.UserAgent != "" {
		opts = append(opts, ggcr.WithUserAgent(c.opts.UserAgent))
	}
	p, err := ggcr.NewPusher(opts...)
	if err != nil {
		return nil, err
	}
	return &Pusher{client: c, ref: ref, p: p, log: log, reuse: map[string]*http.Client{}}, nil
}

// Upload puts blob into the repository unless it is there already. When
// from names another repository on the same registry ("" for none) that
// holds the blob, the registry is asked to mount it from there first.
// Reading the blob (for an upload) may happen more than once, on retries.
func (p *Pusher) Upload(ctx context.Context, blob v1.Layer, from string) (BlobOutcome, error) {
	d, err := blob.Digest()
	if err != nil {
		return 0, err
	}
	l := blob
	if from != "" && from != p.ref.Context().RepositoryStr() {
		src, err := name.NewRepository(p.ref.Context().RegistryStr()+"/"+from, name.StrictValidation)
		if err == nil {
			l = &ggcr.MountableLayer{Layer: blob, Reference: src.Tag("latest")}
		}
	}
	if err := p.p.Upload(ctx, p.ref.Context(), l); err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("uploading blob %s: %w", d, p.client.explain(p.ref, err))
	}
	switch {
	case p.log.wasMounted(d.String()):
		return BlobMounted, nil
	case p.log.existed(d.String()):
		return BlobExists, nil
	}
	return BlobUploaded, nil
}

// Reuse gets a blob into the repository without sending it, when the
// repository has it (BlobExists) or the registry can mount it from the
// repository from ("" for none; BlobMounted). ok is false when neither
// works; the blob must then be uploaded. It is for blobs whose bytes tug
// no longer has: a pulled layer as the registry sent it.
func (p *Pusher) Reuse(ctx context.Context, d v1.Hash, from string) (outcome BlobOutcome, ok bool, err error) {
	repo := p.ref.Context()
	if from == repo.RepositoryStr() {
		from = ""
	}
	client, err := p.reuseClient(ctx, from)
	if err != nil {
		return 0, false, fmt.Errorf("checking blob %s: %w", d, p.client.explain(p.ref, err))
	}
	base := repo.Scheme() + "://" + repo.RegistryStr() + "/v2/" + repo.RepositoryStr() + "/blobs/"
	status, _, err := p.do(ctx, client, http.MethodHead, base+d.String())
	if err != nil {
		return 0, false, fmt.Errorf("checking blob %s: %w", d, err)
	}
	switch {
	case status == http.StatusOK:
		return BlobExists, true, nil
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return 0, false, fmt.Errorf("checking blob %s: %w", d, p.client.explain(p.ref, &transport.Error{StatusCode: status}))
	case from == "":
		return 0, false, nil
	}
	q := url.Values{"mount": {d.String()}, "from": {from}}
	status, loc, err := p.do(ctx, client, http.MethodPost, base+"uploads/?"+q.Encode())
	if err != nil {
		return 0, false, fmt.Errorf("mounting blob %s: %w", d, err)
	}
	if status == http.StatusCreated {
		return BlobMounted, true, nil
	}
	if status == http.StatusAccepted && loc != "" {
		// The registry opened an upload instead: close it.
		if u, err := url.Parse(base); err == nil {
			if l, err := u.Parse(loc); err == nil {
				p.do(ctx, client, http.MethodDelete, l.String())
			}
		}
	}
	return 0, false, nil
}

// reuseClient is an authenticated client for the repository, allowed to
// read from.
func (p *Pusher) reuseClient(ctx context.Context, from string) (*http.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.reuse[from]; c != nil {
		return c, nil
	}
	repo := p.ref.Context()
	auth, err := authn.Resolve(ctx, Keychain, repo)
	if err != nil {
		return nil, err
	}
	scopes := []string{repo.Scope(transport.PushScope)}
	if from != "" {
		scopes = append(scopes, repo.Registry.Repo(from).Scope(transport.PullScope))
	}
	// The HEAD and the mount are retried as go-containerregistry retries
	// its own requests: a registry that hung once must not fail the push.
	tr, err := transport.NewWithContext(ctx, repo.Registry, auth, retrying(p.client.transport), scopes)
	if err != nil {
		return nil, err
	}
	c := &http.Client{Transport: tr}
	p.reuse[from] = c
	return c, nil
}

// do sends a request without a body and returns the status and Location.
func (p *Pusher) do(ctx context.Context, c *http.Client, method, u string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return 0, "", err
	}
	if p.client.opts.UserAgent != "" {
		req.Header.Set("User-Agent", p.client.opts.UserAgent)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location"), nil
}

// PutManifest uploads raw, of media type mt, as the manifest of the
// Pusher's reference; every blob it names must be uploaded first.
func (p *Pusher) PutManifest(ctx context.Context, raw []byte, mt types.MediaType) (v1.Hash, error) {
	d, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return v1.Hash{}, err
	}
	m := &manifest{raw: raw, desc: v1.Descriptor{MediaType: mt, Digest: d, Size: size}}
	if err := p.p.Put(ctx, p.ref, m); err != nil {
		if ctx.Err() != nil {
			return v1.Hash{}, ctx.Err()
		}
		return v1.Hash{}, fmt.Errorf("uploading manifest: %w", p.client.explain(p.ref, err))
	}
	return d, nil
}

// manifest is a serialized manifest as go-containerregistry's Pusher takes it.
type manifest struct {
	raw  []byte
	desc v1.Descriptor
}

func (m *manifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m *manifest) MediaType() (types.MediaType, error) { return m.desc.MediaType, nil }
func (m *manifest) Digest() (v1.Hash, error)            { return m.desc.Digest, nil }
func (m *manifest) Size() (int64, error)                { return m.desc.Size, nil }

// blobLog watches the requests of a push to learn, per blob digest, whether
// the registry had the blob (HEAD 200) or mounted it (POST ?mount= 201):
// go-containerregistry does both without saying which happened.
type blobLog struct {
	next    http.RoundTripper
	mu      sync.Mutex
	exists  map[string]bool
	mounted map[string]bool
}

func (l *blobLog) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	switch {
	case req.Method == http.MethodHead && resp.StatusCode == http.StatusOK:
		if _, d, ok := strings.Cut(req.URL.Path, "/blobs/"); ok && !strings.Contains(d, "/") {
			l.mu.Lock()
			l.exists[d] = true
			l.mu.Unlock()
		}
	case req.Method == http.MethodPost && resp.StatusCode == http.StatusCreated:
		if d := req.URL.Query().Get("mount"); d != "" {
			l.mu.Lock()
			l.mounted[d] = true
			l.mu.Unlock()
		}
	}
	return resp, nil
}

func (l *blobLog) existed(d string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.exists[d]
}

func (l *blobLog) wasMounted(d string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mounted[d]
}
