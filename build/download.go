package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// download fetches ADD's URL sources into dir, as Docker does: each file
// is named after the last element of its URL path (or name, for a single
// source copied to a file), mode 0600, dated by Last-Modified; archives
// are not unpacked. With sum (sha256:HEX, ADD --checksum) the content
// must match.
func download(ctx context.Context, dir string, urls []string, name, sum string) ([]source, error) {
	var out []source
	for _, u := range urls {
		pu, err := url.Parse(u)
		if err != nil {
			return nil, fmt.Errorf("ADD %s: %w", u, err)
		}
		base := name
		if base == "" {
			base = path.Base(pu.Path)
			if base == "/" || base == "." || base == "" {
				return nil, fmt.Errorf("ADD %s: cannot name the file after the URL: give the destination a file name", u)
			}
		}
		p := filepath.Join(dir, base)
		if err := fetch(ctx, u, p, sum); err != nil {
			return nil, err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		out = append(out, source{host: p, rel: base, info: fi})
	}
	return out, nil
}

func fetch(ctx context.Context, u, p, sum string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("ADD %s: %w", u, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ADD %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ADD %s: the server answered %s", u, resp.Status)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("ADD %s: downloading: %w", u, err)
	}
	if sum != "" {
		algo, want, ok := strings.Cut(sum, ":")
		if !ok || algo != "sha256" {
			return fmt.Errorf("ADD --checksum=%s: only sha256:HEX is supported", sum)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(want) {
			return fmt.Errorf("ADD %s: checksum mismatch: the file is sha256:%s, --checksum says %s", u, got, sum)
		}
	}
	if err := os.Chmod(p, 0o600); err != nil {
		return err
	}
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		_ = os.Chtimes(p, time.Now(), lm)
	}
	return nil
}
