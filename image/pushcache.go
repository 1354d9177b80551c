package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
)

// pushCacheMax bounds the compressed blobs the push cache keeps; the least
// recently used go first. Blobs of layers no longer in the store go always.
const pushCacheMax = 2 << 30

// pushCache keeps, per layer and compression, the compressed blob that a
// push made and where it was pushed, in GRAPHROOT/tug-push-cache:
//
//	<diffid hex>-<compression>.json   {"digest", "size", "repos"}
//	<diffid hex>-<compression>.blob   the compressed bytes
//
// so that pushing a layer again needs no compression (the registry is asked
// by digest and skips it) and can mount it from a repository it went to
// before. The blob is written first and both files are renamed into place,
// so a killed push leaves no half entry; a blob that does not match its
// record fails the read that uploads it, and the entry is dropped.
type pushCache struct {
	dir string
}

// cachedBlob is one compressed layer.
type cachedBlob struct {
	Digest v1.Hash `json:"digest"`
	Size   int64   `json:"size"`
	// Repos are the registry/repository names it was pushed to, oldest
	// first.
	Repos []string `json:"repos,omitempty"`

	path string // the .blob file
	meta string // the .json file
	// fresh is set on a blob this process just wrote, and hashed while
	// writing: reading it back needs no check.
	fresh bool
}

func (s *Store) pushCache() (*pushCache, error) {
	dir := filepath.Join(s.s.GraphRoot(), "tug-push-cache")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating push cache %s: %w", dir, err)
	}
	return &pushCache{dir: dir}, nil
}

func (c *pushCache) base(diffID v1.Hash, compression string) string {
	return filepath.Join(c.dir, diffID.Hex+"-"+compression)
}

// get returns the entry for diffID, or nil when there is none whole.
func (c *pushCache) get(diffID v1.Hash, compression string) *cachedBlob {
	base := c.base(diffID, compression)
	b, err := os.ReadFile(base + ".json")
	if err != nil {
		return nil
	}
	var e cachedBlob
	if json.Unmarshal(b, &e) != nil || e.Digest.Algorithm != "sha256" {
		return nil
	}
	e.path, e.meta = base+".blob", base+".json"
	fi, err := os.Stat(e.path)
	if err != nil || fi.Size() != e.Size {
		return nil
	}
	now := time.Now()
	_ = os.Chtimes(e.path, now, now) // for the LRU bound
	return &e
}

// put moves the compressed file tmp into the cache as diffID's entry.
func (c *pushCache) put(diffID v1.Hash, compression, tmp string, d v1.Hash, size int64) (*cachedBlob, error) {
	base := c.base(diffID, compression)
	e := &cachedBlob{Digest: d, Size: size, path: base + ".blob", meta: base + ".json", fresh: true}
	if err := os.Rename(tmp, e.path); err != nil {
		return nil, fmt.Errorf("caching compressed layer: %w", err)
	}
	if err := e.save(); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *cachedBlob) save() error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	tmp := e.meta + ".tmp-" + fmt.Sprint(os.Getpid())
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("caching compressed layer: %w", err)
	}
	if err := os.Rename(tmp, e.meta); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("caching compressed layer: %w", err)
	}
	return nil
}

// addRepo records that the blob is in repo (registry/repository).
func (e *cachedBlob) addRepo(repo string) error {
	if i := slices.Index(e.Repos, repo); i >= 0 {
		if i == len(e.Repos)-1 {
			return nil
		}
		e.Repos = slices.Delete(e.Repos, i, i+1)
	}
	e.Repos = append(e.Repos, repo)
	if n := len(e.Repos); n > 8 {
		e.Repos = e.Repos[n-8:]
	}
	return e.save()
}

// mountFrom returns the repository, on registry and other than repo, that
// the blob was pushed to last, or "".
func (e *cachedBlob) mountFrom(registry, repo string) string {
	for i := len(e.Repos) - 1; i >= 0; i-- {
		r, path, ok := strings.Cut(e.Repos[i], "/")
		if ok && r == registry && path != repo {
			return path
		}
	}
	return ""
}

// drop removes the entry.
func (e *cachedBlob) drop() {
	os.Remove(e.meta)
	os.Remove(e.path)
}

// open reads the blob; one cached by an earlier push fails at EOF if it
// does not match its digest (and the entry is dropped).
func (e *cachedBlob) open() (io.ReadCloser, error) {
	f, err := os.Open(e.path)
	if err != nil {
		return nil, fmt.Errorf("reading cached compressed layer: %w", err)
	}
	if e.fresh {
		return f, nil
	}
	return &verifiedBlob{f: f, e: e, h: sha256.New()}, nil
}

type verifiedBlob struct {
	f *os.File
	e *cachedBlob
	h hash.Hash
	n int64
}

func (v *verifiedBlob) Read(p []byte) (int, error) {
	n, err := v.f.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.e.Digest.Hex || v.n != v.e.Size {
			v.e.drop()
			return n, fmt.Errorf("cached compressed layer %s is corrupt (sha256:%s, %d bytes): removed it, push again", v.e.Digest, got, v.n)
		}
	}
	return n, err
}

func (v *verifiedBlob) Close() error { return v.f.Close() }

// prune drops the entries of layers the store no longer has, then the
// least recently used ones beyond pushCacheMax.
func (c *pushCache) prune(haveDiffID func(digest.Digest) bool) {
	c.pruneTo(haveDiffID, pushCacheMax)
}

func (c *pushCache) pruneTo(haveDiffID func(digest.Digest) bool, limit int64) {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	type blob struct {
		base  string
		size  int64
		mtime time.Time
	}
	var blobs []blob
	var total int64
	for _, de := range entries {
		name, ok := strings.CutSuffix(de.Name(), ".blob")
		if !ok {
			if strings.Contains(de.Name(), ".json.tmp-") {
				if fi, err := de.Info(); err == nil && time.Since(fi.ModTime()) > time.Hour {
					os.Remove(filepath.Join(c.dir, de.Name()))
				}
			}
			continue
		}
		base := filepath.Join(c.dir, name)
		hexPart, _, _ := strings.Cut(name, "-")
		if !haveDiffID(digest.NewDigestFromEncoded(digest.SHA256, hexPart)) {
			os.Remove(base + ".json")
			os.Remove(base + ".blob")
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		blobs = append(blobs, blob{base, fi.Size(), fi.ModTime()})
		total += fi.Size()
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].mtime.Before(blobs[j].mtime) })
	for _, b := range blobs {
		if total <= limit {
			break
		}
		os.Remove(b.base + ".json")
		if err := os.Remove(b.base + ".blob"); err == nil || errors.Is(err, fs.ErrNotExist) {
			total -= b.size
		}
	}
}
