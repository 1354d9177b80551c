package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fakeRegistry keeps blobs per repository (as distribution does, so that a
// mount can be seen), supports cross-repository mounts, and can fail the
// next requests of a method with a status.
type fakeRegistry struct {
	mu        sync.Mutex
	blobs     map[string]map[string][]byte // repo → digest → bytes
	uploads   map[string]*bytes.Buffer
	uploadTo  map[string]string // upload id → repo
	manifests map[string][]byte // repo:tag → manifest
	failNext  map[string][]int  // method → statuses to answer first
	requests  []string
}

func newFakeRegistry(t *testing.T) (*fakeRegistry, string) {
	f := &fakeRegistry{blobs: map[string]map[string][]byte{}, uploads: map[string]*bytes.Buffer{}, uploadTo: map[string]string{}, manifests: map[string][]byte{}, failNext: map[string][]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, strings.TrimPrefix(srv.URL, "http://")
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	if q := f.failNext[r.Method]; len(q) > 0 {
		f.failNext[r.Method] = q[1:]
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(q[0])
		return
	}
	p := r.URL.Path
	switch {
	case p == "/v2/":
		return
	case strings.HasPrefix(p, "/upload/"):
		buf := f.uploads[strings.TrimPrefix(p, "/upload/")]
		if buf == nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if r.Method == http.MethodDelete {
			delete(f.uploads, strings.TrimPrefix(p, "/upload/"))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		io.Copy(buf, r.Body)
		if r.Method == http.MethodPatch {
			w.Header().Set("Location", p)
			w.WriteHeader(http.StatusAccepted)
			return
		}
		d := r.URL.Query().Get("digest")
		sum := sha256.Sum256(buf.Bytes())
		if d != "sha256:"+hex.EncodeToString(sum[:]) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f.put(f.uploadTo[strings.TrimPrefix(p, "/upload/")], d, buf.Bytes())
		w.WriteHeader(http.StatusCreated)
	case strings.Contains(p, "/blobs/uploads/"):
		repo := strings.TrimPrefix(p[:strings.Index(p, "/blobs/uploads/")], "/v2/")
		if d, from := r.URL.Query().Get("mount"), r.URL.Query().Get("from"); d != "" && from != "" {
			if b, ok := f.blobs[from][d]; ok {
				f.put(repo, d, b)
				w.WriteHeader(http.StatusCreated)
				return
			}
		}
		id := fmt.Sprint(len(f.uploads))
		f.uploads[id] = &bytes.Buffer{}
		f.uploadTo[id] = repo
		w.Header().Set("Location", "/upload/"+id)
		w.WriteHeader(http.StatusAccepted)
	case strings.Contains(p, "/blobs/"):
		i := strings.Index(p, "/blobs/")
		b, ok := f.blobs[strings.TrimPrefix(p[:i], "/v2/")][p[i+len("/blobs/"):]]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	case strings.Contains(p, "/manifests/") && r.Method == http.MethodPut:
		i := strings.Index(p, "/manifests/")
		b, _ := io.ReadAll(r.Body)
		f.manifests[strings.TrimPrefix(p[:i], "/v2/")+":"+p[i+len("/manifests/"):]] = b
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (f *fakeRegistry) put(repo, d string, b []byte) {
	if f.blobs[repo] == nil {
		f.blobs[repo] = map[string][]byte{}
	}
	f.blobs[repo][d] = bytes.Clone(b)
}

func (f *fakeRegistry) fail(method string, statuses ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext[method] = statuses
}

func TestPusherOutcomes(t *testing.T) {
	isolateAuth(t)
	f, addr := newFakeRegistry(t)
	c := NewClient(Options{})
	ctx := context.Background()
	blob := static.NewLayer([]byte("layer bytes"), types.OCILayer)
	d, _ := blob.Digest()

	pa, err := c.NewPusher(ctx, mustParse(t, addr+"/a:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := pa.Upload(ctx, blob, ""); err != nil || got != BlobUploaded {
		t.Fatalf("first upload: %v, %v", got, err)
	}
	// A Pusher sends a blob once; a new one asks the registry.
	pa, err = c.NewPusher(ctx, mustParse(t, addr+"/a:v2"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := pa.Upload(ctx, blob, ""); err != nil || got != BlobExists {
		t.Fatalf("upload of a blob the repository has: %v, %v\n%s", got, err, strings.Join(f.requests, "\n"))
	}
	pb, err := c.NewPusher(ctx, mustParse(t, addr+"/b:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := pb.Upload(ctx, blob, "a"); err != nil || got != BlobMounted {
		t.Fatalf("upload to b with a as the source: %v, %v", got, err)
	}
	if _, ok := f.blobs["b"][d.String()]; !ok {
		t.Fatal("the mounted blob is not in b")
	}
	other := static.NewLayer([]byte("not in a"), types.OCILayer)
	if got, err := pb.Upload(ctx, other, "a"); err != nil || got != BlobUploaded {
		t.Fatalf("a failed mount falls back to an upload: %v, %v", got, err)
	}
	raw := []byte(`{"schemaVersion":2}`)
	md, err := pb.PutManifest(ctx, raw, types.OCIManifestSchema1)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(raw); md.Hex != hex.EncodeToString(sum[:]) || !bytes.Equal(f.manifests["b:v1"], raw) {
		t.Fatalf("manifest %s, registry has %q", md, f.manifests["b:v1"])
	}
	if _, err := c.NewPusher(ctx, mustParse(t, addr+"/a@"+d.String())); err == nil {
		t.Fatal("a push to a digest reference was accepted")
	}
}

func TestPusherReuse(t *testing.T) {
	isolateAuth(t)
	f, addr := newFakeRegistry(t)
	c := NewClient(Options{})
	ctx := context.Background()
	blob := static.NewLayer([]byte("pulled layer"), types.OCILayer)
	d, _ := blob.Digest()
	f.put("src", d.String(), []byte("pulled layer"))

	p, err := c.NewPusher(ctx, mustParse(t, addr+"/dst:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := p.Reuse(ctx, d, ""); ok || err != nil {
		t.Fatalf("Reuse without the blob and without a source = %v, %v", ok, err)
	}
	if got, ok, err := p.Reuse(ctx, d, "src"); !ok || err != nil || got != BlobMounted {
		t.Fatalf("Reuse from src = %v, %v, %v", got, ok, err)
	}
	if got, ok, err := p.Reuse(ctx, d, "src"); !ok || err != nil || got != BlobExists {
		t.Fatalf("Reuse of a blob the repository has = %v, %v, %v", got, ok, err)
	}
	other := static.NewLayer([]byte("nowhere"), types.OCILayer)
	od, _ := other.Digest()
	if _, ok, err := p.Reuse(ctx, od, "src"); ok || err != nil {
		t.Fatalf("Reuse of a blob no repository has = %v, %v", ok, err)
	}
	if len(f.uploads) != 0 {
		t.Fatalf("a failed mount left an upload open: %v", f.uploads)
	}
}

// go-containerregistry retries a 5xx or 429 answer, with backoff (1 s).
func TestPusherRetries(t *testing.T) {
	isolateAuth(t)
	f, addr := newFakeRegistry(t)
	c := NewClient(Options{})
	ctx := context.Background()
	p, err := c.NewPusher(ctx, mustParse(t, addr+"/r:v1"))
	if err != nil {
		t.Fatal(err)
	}
	f.fail(http.MethodPatch, http.StatusInternalServerError)
	blob := static.NewLayer(bytes.Repeat([]byte("x"), 1<<16), types.OCILayer)
	if got, err := p.Upload(ctx, blob, ""); err != nil || got != BlobUploaded {
		t.Fatalf("upload through a 500: %v, %v\n%s", got, err, strings.Join(f.requests, "\n"))
	}
	f.fail(http.MethodHead, http.StatusTooManyRequests)
	blob = static.NewLayer([]byte("y"), types.OCILayer)
	if got, err := p.Upload(ctx, blob, ""); err != nil || got != BlobUploaded {
		t.Fatalf("upload through a 429: %v, %v\n%s", got, err, strings.Join(f.requests, "\n"))
	}
}

func mustParse(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
