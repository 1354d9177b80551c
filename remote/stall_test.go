package remote

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	ggcr "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// stallingRegistry is go-containerregistry's in-memory registry, except
// that requests of one method whose path contains a string get no answer
// at all: not a header, and their body is not read. The first `times`
// of them stall; times < 0 stalls all.
type stallingRegistry struct {
	next http.Handler
	done chan struct{}

	mu      sync.Mutex
	method  string
	path    string
	times   int
	matched int // requests that matched, stalled or not
}

func newStallingRegistry(t *testing.T) (*stallingRegistry, string) {
	s := &stallingRegistry{next: registry.New(registry.Logger(log.New(io.Discard, "", 0))), done: make(chan struct{})}
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		close(s.done)
		srv.Close()
	})
	return s, strings.TrimPrefix(srv.URL, "http://")
}

func (s *stallingRegistry) stall(method, path string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.method, s.path, s.times, s.matched = method, path, times, 0
}

func (s *stallingRegistry) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.matched
}

func (s *stallingRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	match := s.method != "" && r.Method == s.method && strings.Contains(r.URL.Path, s.path)
	stall := match && s.times != 0
	if match {
		s.matched++
	}
	if stall && s.times > 0 {
		s.times--
	}
	s.mu.Unlock()
	if stall {
		select {
		case <-r.Context().Done(): // the client gave up
		case <-s.done:
		}
		return
	}
	s.next.ServeHTTP(w, r)
}

const stallLimit = 300 * time.Millisecond

// stallCase is a request the registry stalls and the client call that
// makes it.
type stallCase struct {
	name, method, path string
	do                 func(ctx context.Context, c *Client, addr string) error
}

// stalledRegistry starts a registry with the test image that stalls
// times requests (-1: all) of method to paths containing path, and a
// client that gives up on silence after timeout.
func stalledRegistry(t *testing.T, timeout time.Duration, method, path string, times int) (*stallingRegistry, *Client, string) {
	t.Helper()
	s, addr := newStallingRegistry(t)
	c := NewClient(Options{Timeout: timeout})
	prepare(t, addr)
	s.stall(method, path, times)
	return s, c, addr
}

// A registry that takes a blob request and stalls before its response
// headers, once, does not fail a pull or a push: the request is timed out
// after Options.Timeout and sent again, as a dropped connection is. (It
// was not: net/http's header timeout matches context.DeadlineExceeded,
// which go-containerregistry never retries.)
func TestStalledBlobRequestRetried(t *testing.T) {
	isolateAuth(t)
	for _, tc := range []stallCase{
		{"pull: GET of a layer", http.MethodGet, "/blobs/sha256:", pullLayers},
		{"push: HEAD before an upload", http.MethodHead, "/blobs/sha256:", uploadBlob},
		{"push: POST starting an upload", http.MethodPost, "/blobs/uploads/", uploadBlob},
		{"push: PATCH with the bytes", http.MethodPatch, "/blobs/uploads/", uploadBlob},
		{"push: PUT committing the upload", http.MethodPut, "/blobs/uploads/", uploadBlob},
		{"push: HEAD of a pulled layer (Reuse)", http.MethodHead, "/blobs/sha256:", reuseBlob},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c, addr := stalledRegistry(t, stallLimit, tc.method, tc.path, 1)
			if err := tc.do(t.Context(), c, addr); err != nil {
				t.Fatalf("through one stalled %s: %v", tc.method, err)
			}
			if n := s.requests(); n < 2 {
				t.Fatalf("%d %s requests reached the registry: the stalled one was not sent again", n, tc.method)
			}
		})
	}
}

// A registry that stalls on every try fails the pull or push with an
// error that names it and the limit, after the tries and their backoff
// (3 × 300 ms + 1 s + 3 s), not never.
func TestStalledRegistryFails(t *testing.T) {
	isolateAuth(t)
	const bound = 3*stallLimit + 4*time.Second + 3*time.Second // + slack
	for _, tc := range []stallCase{
		{"pull", http.MethodGet, "/blobs/sha256:", pullLayers},
		{"push", http.MethodPut, "/blobs/uploads/", uploadBlob},
		{"reuse", http.MethodHead, "/blobs/sha256:", reuseBlob},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c, addr := stalledRegistry(t, stallLimit, tc.method, tc.path, -1)
			start := time.Now()
			err := tc.do(t.Context(), c, addr)
			took := time.Since(start)
			var te *TimeoutError
			if !errors.As(err, &te) || !strings.Contains(err.Error(), "registry "+addr+" sent nothing for 300ms") {
				t.Fatalf("error = %v, want a TimeoutError naming %s and the limit", err, addr)
			}
			if took > bound {
				t.Errorf("gave up after %v, want at most %v", took, bound)
			}
			// Three tries; a clean-clone CI run (with the end-to-end
			// tests beside it) once saw a fourth in pull and reuse,
			// not reproduced since: bounded is what matters.
			if n := s.requests(); n < 3 || n > 4 {
				t.Errorf("the registry got %d tries, want 3 (or 4)", n)
			}
		})
	}
}

// The caller's own deadline is not the registry's silence: it is not
// retried and not reported as a TimeoutError.
func TestCallerDeadlineNotRetried(t *testing.T) {
	isolateAuth(t)
	_, c, addr := stalledRegistry(t, time.Minute, http.MethodGet, "/blobs/sha256:", -1)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := pullLayers(ctx, c, addr)
	var te *TimeoutError
	if err == nil || errors.As(err, &te) {
		t.Fatalf("error = %v, want the context's deadline", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("gave up after %v", took)
	}
}

// prepare puts an image at addr/img:1 and a blob in addr/src, before
// any stall is armed.
func prepare(t *testing.T, addr string) {
	t.Helper()
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := mustParse(t, addr+"/img:1")
	if err := ggcr.Write(ref, img); err != nil {
		t.Fatal(err)
	}
}

// testBlob is the blob uploadBlob and reuseBlob push.
func testBlob() v1.Layer {
	return static.NewLayer([]byte(strings.Repeat("stalled blob ", 1<<12)), types.OCILayer)
}

func pullLayers(ctx context.Context, c *Client, addr string) error {
	ref, err := c.Reference(addr + "/img:1")
	if err != nil {
		return err
	}
	res, err := c.Resolve(ctx, ref)
	if err != nil {
		return err
	}
	layers, err := res.Image.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func uploadBlob(ctx context.Context, c *Client, addr string) error {
	ref, err := c.Reference(addr + "/dst:1")
	if err != nil {
		return err
	}
	p, err := c.NewPusher(ctx, ref)
	if err != nil {
		return err
	}
	outcome, err := p.Upload(ctx, testBlob(), "")
	if err == nil && outcome != BlobUploaded {
		return errors.New("the blob was not uploaded")
	}
	return err
}

func reuseBlob(ctx context.Context, c *Client, addr string) error {
	ref, err := c.Reference(addr + "/dst:1")
	if err != nil {
		return err
	}
	p, err := c.NewPusher(ctx, ref)
	if err != nil {
		return err
	}
	d, _ := testBlob().Digest()
	if _, ok, err := p.Reuse(ctx, d, ""); err != nil || ok {
		if err == nil {
			err = errors.New("an empty repository had the blob")
		}
		return err
	}
	return nil
}
