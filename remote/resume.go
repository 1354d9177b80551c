package remote

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// blobRetries is how many times a blob download that breaks off is started
// again, and blobRetryWait how long to wait before the first try (doubled
// for each next one).
const (
	blobRetries   = 3
	blobRetryWait = 500 * time.Millisecond
)

// resumable wraps img so that reading a layer's compressed blob survives a
// connection that is reset or closed mid-body, or goes silent: the blob is
// fetched again and the bytes already read are skipped. go-containerregistry
// retries requests, not bodies. The digest is still checked over the whole
// blob; a blob that does not match is not retried.
func resumable(ctx context.Context, img v1.Image) v1.Image {
	return &resumableImage{Image: img, ctx: ctx}
}

type resumableImage struct {
	v1.Image
	ctx context.Context
}

func (i *resumableImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for j, l := range ls {
		out[j] = &resumableLayer{Layer: l, ctx: i.ctx}
	}
	return out, nil
}

func (i *resumableImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := i.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return &resumableLayer{Layer: l, ctx: i.ctx}, nil
}

type resumableLayer struct {
	v1.Layer
	ctx context.Context
}

func (l *resumableLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return &resumingReader{ctx: l.ctx, open: l.Layer.Compressed, rc: rc}, nil
}

// resumingReader reads a blob, opening it again after a broken connection.
type resumingReader struct {
	ctx   context.Context
	open  func() (io.ReadCloser, error)
	rc    io.ReadCloser
	n     int64 // bytes handed out
	tries int
}

func (r *resumingReader) Read(p []byte) (int, error) {
	for {
		n, err := r.rc.Read(p)
		r.n += int64(n)
		if err == nil || err == io.EOF || !r.retryable(err) {
			return n, err
		}
		if n > 0 {
			// Hand these out first; the next Read fails again.
			return n, nil
		}
		for {
			err = r.reopen()
			if err == nil {
				break
			}
			if !r.retryable(err) {
				return 0, err
			}
		}
	}
}

func (r *resumingReader) retryable(err error) bool {
	return brokenConnection(err) && r.tries < blobRetries && r.ctx.Err() == nil
}

// reopen fetches the blob again and skips what was read already; the new
// reader verifies the digest over all of it.
func (r *resumingReader) reopen() error {
	r.rc.Close()
	r.tries++
	select {
	case <-time.After(blobRetryWait << (r.tries - 1)):
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
	rc, err := r.open()
	if err != nil {
		return err
	}
	r.rc = rc
	if _, err := io.CopyN(io.Discard, rc, r.n); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

func (r *resumingReader) Close() error { return r.rc.Close() }

// retrying retries requests tug sends itself (Pusher.Reuse) as
// go-containerregistry retries its own: 3 tries, 1 s then 3 s apart, on a
// dropped or silent connection and on 408, 429 and 5xx answers.
func retrying(next http.RoundTripper) http.RoundTripper {
	return transport.NewRetry(next,
		transport.WithRetryBackoff(transport.Backoff{Duration: time.Second, Factor: 3, Jitter: 0.1, Steps: 3}),
		transport.WithRetryPredicate(retryable),
		transport.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout))
}

// retryable reports whether a request that failed with err is worth
// sending again; the caller's own cancellation or deadline is not.
func retryable(err error) bool {
	var t interface{ Temporary() bool }
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return brokenConnection(err) || errors.Is(err, io.EOF) || (errors.As(err, &t) && t.Temporary())
}

// brokenConnection reports whether err is a connection that broke off
// rather than bytes that are wrong.
func brokenConnection(err error) bool {
	var ne net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) ||
		(errors.As(err, &ne) && ne.Timeout())
}
