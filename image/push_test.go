package image

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

func TestPushMediaTypes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		format, compression string
		stored              types.MediaType
		want                pushTypes
	}{
		{"", "", "", pushTypes{types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer, "gzip"}},
		{"", "", types.DockerManifestSchema2, pushTypes{types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer, "gzip"}},
		{"", "zstd", types.DockerManifestSchema2, pushTypes{types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayerZStd, "zstd"}},
		{"oci", "gzip", types.DockerManifestSchema2, pushTypes{types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer, "gzip"}},
		{"docker", "", types.OCIManifestSchema1, pushTypes{types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer, "gzip"}},
	} {
		if err := checkPushOptions(tc.format, tc.compression); err != nil {
			t.Errorf("checkPushOptions(%q, %q): %v", tc.format, tc.compression, err)
		}
		if got := pushMediaTypes(tc.format, tc.compression, tc.stored); got != tc.want {
			t.Errorf("pushMediaTypes(%q, %q, %q) = %v, want %v", tc.format, tc.compression, tc.stored, got, tc.want)
		}
	}
	for _, bad := range [][2]string{{"docker", "zstd"}, {"v2s1", ""}, {"", "xz"}} {
		if err := checkPushOptions(bad[0], bad[1]); err == nil {
			t.Errorf("checkPushOptions(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func hashOf(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// cachePut puts content into c as the gzip blob of diffID.
func cachePut(t *testing.T, c *pushCache, diffID v1.Hash, content string) *cachedBlob {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := c.put(diffID, CompressionGzip, tmp, hashOf([]byte(content)), int64(len(content)))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestPushCache(t *testing.T) {
	t.Parallel()
	c := &pushCache{dir: t.TempDir()}
	diffID := hashOf([]byte("uncompressed"))
	if c.get(diffID, CompressionGzip) != nil {
		t.Fatal("empty cache has an entry")
	}
	cachePut(t, c, diffID, "compressed")
	e := c.get(diffID, CompressionGzip)
	if e == nil || e.Digest != hashOf([]byte("compressed")) || e.Size != 10 {
		t.Fatalf("get after put = %+v", e)
	}
	if c.get(diffID, CompressionZstd) != nil {
		t.Fatal("a gzip entry answers for zstd")
	}
	rc, err := e.open()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(rc); err != nil || string(b) != "compressed" {
		t.Fatalf("read %q, %v", b, err)
	}
	rc.Close()

	// Where it went, and where to mount it from.
	for _, r := range []string{"reg:5000/a", "other:1/x", "reg:5000/b", "reg:5000/a"} {
		if err := e.addRepo(r); err != nil {
			t.Fatal(err)
		}
	}
	e = c.get(diffID, CompressionGzip)
	if got := strings.Join(e.Repos, " "); got != "other:1/x reg:5000/b reg:5000/a" {
		t.Fatalf("repos = %s", got)
	}
	for _, tc := range []struct{ registry, repo, want string }{
		{"reg:5000", "c", "a"},
		{"reg:5000", "a", "b"},
		{"other:1", "x", ""},
		{"new:1", "x", ""},
	} {
		if got := e.mountFrom(tc.registry, tc.repo); got != tc.want {
			t.Errorf("mountFrom(%s, %s) = %q, want %q", tc.registry, tc.repo, got, tc.want)
		}
	}

	// A blob that changed under the cache fails its read and is dropped.
	if err := os.WriteFile(e.path, []byte("COMPRESSED"), 0o600); err != nil {
		t.Fatal(err)
	}
	rc, _ = e.open()
	if _, err := io.ReadAll(rc); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("reading a corrupt blob: %v", err)
	}
	rc.Close()
	if c.get(diffID, CompressionGzip) != nil {
		t.Fatal("the corrupt entry is still there")
	}
	// A blob of the wrong size is no entry.
	e = cachePut(t, c, diffID, "compressed")
	os.WriteFile(e.path, []byte("short"), 0o600)
	if c.get(diffID, CompressionGzip) != nil {
		t.Fatal("an entry whose blob has the wrong size was returned")
	}
}

func TestPushCachePrune(t *testing.T) {
	t.Parallel()
	c := &pushCache{dir: t.TempDir()}
	gone, old, recent := hashOf([]byte("gone")), hashOf([]byte("old")), hashOf([]byte("recent"))
	big := strings.Repeat("x", 1<<10)
	for _, d := range []v1.Hash{gone, old, recent} {
		cachePut(t, c, d, big)
	}
	past := time.Now().Add(-time.Hour)
	os.Chtimes(c.base(old, CompressionGzip)+".blob", past, past)
	stored := func(d digest.Digest) bool { return d.String() != gone.String() }

	c.pruneTo(stored, 4<<10)
	if c.get(gone, CompressionGzip) != nil {
		t.Fatal("the entry of a layer the store lost survived")
	}
	if c.get(old, CompressionGzip) == nil || c.get(recent, CompressionGzip) == nil {
		t.Fatal("entries within the bound were dropped")
	}
	os.Chtimes(c.base(old, CompressionGzip)+".blob", past, past)
	c.pruneTo(stored, 1<<10)
	if c.get(old, CompressionGzip) != nil || c.get(recent, CompressionGzip) == nil {
		t.Fatal("over the bound, the least recently used entry must go first and only it")
	}
}
