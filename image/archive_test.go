package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/tugcli/tug/remote"
)

// testLayer is a layer tar with one file.
func testLayer(t *testing.T, name, content string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(content))
	tw.Close()
	return b.Bytes()
}

func sha(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// testImage makes a saveImage of the given layers, named names.
func testImage(t *testing.T, names []string, layers ...[]byte) saveImage {
	t.Helper()
	cfg := v1.ConfigFile{Architecture: "amd64", OS: "linux", RootFS: v1.RootFS{Type: "layers"}}
	si := saveImage{names: names}
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, sha(l))
		si.layers = append(si.layers, saveLayer{diffID: sha(l), open: func() (io.ReadCloser, int64, error) {
			return io.NopCloser(bytes.NewReader(l)), int64(len(l)), nil
		}})
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	si.config, si.id = raw, sha(raw).Hex
	return si
}

// writeTestArchive writes images in format to a file in dir (a directory
// for OCIDir) and returns its path.
func writeTestArchive(t *testing.T, dir string, format ArchiveFormat, images ...saveImage) string {
	t.Helper()
	w := func(sk sink) error {
		aw := &archiveWriter{ctx: context.Background(), sink: sk, written: map[string]int64{}}
		if format == DockerArchive {
			return aw.dockerArchive(images)
		}
		return aw.ociLayout(images)
	}
	p := filepath.Join(dir, string(format))
	var err error
	if format == OCIDir {
		err = writeDirAtomically(p, func(d string) error { return w(&dirSink{root: d}) })
	} else {
		err = writeFileAtomically(p, func(out io.Writer) error { return writeTar(out, w) })
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// openTestArchive opens p as Load does, without a store.
func openTestArchive(t *testing.T, p string) ([]*archiveImage, error) {
	t.Helper()
	fsys, what, closeFn, err := openArchive(context.Background(), LoadOptions{Input: p}, t.TempDir())
	if err != nil {
		return nil, err
	}
	t.Cleanup(closeFn)
	return readArchive(context.Background(), fsys, what)
}

func readLayer(l *archiveLayer) ([]byte, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// Every format reads back as it was written: the same config bytes (so
// the same image id), the names, and layers whose bytes hash to their
// diff ids; two images share their common layer.
func TestArchiveRoundTrip(t *testing.T) {
	t.Parallel()
	base := testLayer(t, "bin/sh", "shell")
	top := testLayer(t, "etc/motd", "hello")
	a := testImage(t, []string{"localhost/a:v1", "docker.io/library/a:latest"}, base, top)
	b := testImage(t, nil, base)
	for _, format := range []ArchiveFormat{DockerArchive, OCIArchive, OCIDir} {
		t.Run(string(format), func(t *testing.T) {
			t.Parallel()
			p := writeTestArchive(t, t.TempDir(), format, a, b)
			images, err := openTestArchive(t, p)
			if err != nil {
				t.Fatal(err)
			}
			if len(images) != 2 {
				t.Fatalf("read %d images, want 2", len(images))
			}
			for i, want := range []saveImage{a, b} {
				got := images[i]
				if got.cfgDigest.Hex != want.id || !bytes.Equal(got.rawCfg, want.config) {
					t.Errorf("image %d: config %s, want %s", i, got.cfgDigest, want.id)
				}
				if strings.Join(got.rec.names, ",") != strings.Join(want.names, ",") {
					t.Errorf("image %d: names %v, want %v", i, got.rec.names, want.names)
				}
				if got.rec.manifestDigest.String() != sha(got.manifest).String() {
					t.Errorf("image %d: manifest digest %s does not match its bytes", i, got.rec.manifestDigest)
				}
				var m v1.Manifest
				if err := json.Unmarshal(got.manifest, &m); err != nil {
					t.Fatal(err)
				}
				if len(m.Layers) != len(want.layers) {
					t.Fatalf("image %d: manifest has %d layers, want %d", i, len(m.Layers), len(want.layers))
				}
				for j, d := range m.Layers {
					l := got.layers[d.Digest]
					if l == nil {
						t.Fatalf("image %d: no layer %s", i, d.Digest)
					}
					b, err := readLayer(l)
					if err != nil {
						t.Fatal(err)
					}
					if sha(b) != want.layers[j].diffID {
						t.Errorf("image %d layer %d reads back as %s, want %s", i, j, sha(b), want.layers[j].diffID)
					}
				}
			}
		})
	}
}

// The archive's bytes depend only on the images: saving twice gives the
// same file.
func TestArchiveDeterministic(t *testing.T) {
	t.Parallel()
	img := testImage(t, []string{"localhost/a:v1"}, testLayer(t, "f", "x"))
	for _, format := range []ArchiveFormat{DockerArchive, OCIArchive} {
		one, err := os.ReadFile(writeTestArchive(t, t.TempDir(), format, img))
		if err != nil {
			t.Fatal(err)
		}
		two, err := os.ReadFile(writeTestArchive(t, t.TempDir(), format, img))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(one, two) {
			t.Errorf("%s: two saves of one image differ", format)
		}
	}
}

// A docker-archive's layer.tar links (Podman's and tug's legacy layer
// directories) lead to the layer files; a gzip-compressed archive, and
// gzip-compressed layers in it (go-containerregistry writes those), load.
func TestDockerArchiveVariants(t *testing.T) {
	t.Parallel()
	layer := testLayer(t, "f", "content")
	img := testImage(t, []string{"localhost/a:v1"}, layer)
	dir := t.TempDir()
	p := writeTestArchive(t, dir, DockerArchive, img)

	fsys, _, closeFn, err := openArchive(context.Background(), LoadOptions{Input: p}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	var legacy []string
	for p := range fsys.(*tarFS).entries {
		if strings.HasSuffix(p, "/layer.tar") {
			legacy = append(legacy, p)
		}
	}
	if len(legacy) != 1 {
		t.Fatalf("legacy layer.tar entries: %v", legacy)
	}
	if b, err := fs.ReadFile(fsys, legacy[0]); err != nil || !bytes.Equal(b, layer) {
		t.Fatalf("%s does not lead to the layer (%v)", legacy[0], err)
	}

	// The whole archive gzip-compressed.
	raw, _ := os.ReadFile(p)
	gz := filepath.Join(dir, "a.tar.gz")
	os.WriteFile(gz, gzipBytes(t, raw), 0o644)
	if images, err := openTestArchive(t, gz); err != nil || len(images) != 1 || images[0].cfgDigest.Hex != img.id {
		t.Fatalf("gzip-compressed archive: %v", err)
	}

	// Layers gzip-compressed inside, named by their compressed digest.
	zl := gzipBytes(t, layer)
	entries := map[string][]byte{
		img.id + ".json":        img.config,
		sha(zl).Hex + ".tar.gz": zl,
		"manifest.json":         []byte(`[{"Config":"` + img.id + `.json","RepoTags":["a:v1"],"Layers":["` + sha(zl).Hex + `.tar.gz"]}]`),
	}
	images, err := openTestArchive(t, tarOf(t, dir, "ggcr.tar", entries))
	if err != nil {
		t.Fatal(err)
	}
	l := images[0].layers[sha(zl)]
	if l == nil || l.mediaType != "application/vnd.docker.image.rootfs.diff.tar.gzip" {
		t.Fatalf("compressed layer: %+v", images[0].layers)
	}
	if images[0].rec.names[0] != "docker.io/library/a:v1" {
		t.Fatalf("a:v1 loads as %v", images[0].rec.names)
	}
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

func tarOf(t *testing.T, dir, name string, entries map[string][]byte) string {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for n, c := range entries {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg})
		tw.Write(c)
	}
	tw.Close()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Corrupt and foreign input says what is wrong with it.
func TestLoadRefusesBadArchives(t *testing.T) {
	t.Parallel()
	layer := testLayer(t, "f", strings.Repeat("content ", 4096))
	img := testImage(t, []string{"localhost/a:v1"}, layer)
	dir := t.TempDir()
	good := writeTestArchive(t, dir, DockerArchive, img)
	goodOCI := writeTestArchive(t, dir, OCIArchive, img)
	raw, _ := os.ReadFile(good)
	rawOCI, _ := os.ReadFile(goodOCI)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flip := func(b []byte, within []byte) []byte {
		c := bytes.Clone(b)
		i := bytes.Index(c, within)
		if i < 0 {
			t.Fatal("content not found in the archive")
		}
		c[i+len(within)/2] ^= 0xff
		return c
	}
	for _, tc := range []struct {
		name string
		path string
		want string // in the error, from reading the archive or its layers
	}{
		{"empty file", write("empty", nil), "is empty"},
		{"random bytes", write("random", bytes.Repeat([]byte{0x5a, 0x17, 0x99}, 4000)), "not a tar archive"},
		{"truncated", write("truncated", raw[:len(raw)/2]), "truncated"},
		{"truncated gzip", write("truncated.gz", gzipBytes(t, raw)[:200]), "truncated or corrupt"},
		{"foreign tar", tarOf(t, dir, "foreign.tar", map[string][]byte{"README": []byte("hi")}), "neither manifest.json"},
		{"layer byte flipped", write("flipped", flip(raw, layer[1024:2048])), "does not match its digest"},
		{"oci layer byte flipped", write("flipped-oci", flip(rawOCI, layer[1024:2048])), "does not match its digest"},
		{"config byte flipped", write("config", flip(raw, img.config)), "does not match its digest"},
		{"oci config byte flipped", write("config-oci", flip(rawOCI, img.config)), "does not match its digest"},
		{"bad manifest.json", tarOf(t, dir, "badmanifest.tar", map[string][]byte{"manifest.json": []byte("{")}), "manifest.json is not docker save's"},
		{"missing layer", tarOf(t, dir, "nolayer.tar", map[string][]byte{
			img.id + ".json": img.config,
			"manifest.json":  []byte(`[{"Config":"` + img.id + `.json","Layers":["x.tar"]}]`),
		}), "lacks the layer x.tar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			images, err := openTestArchive(t, tc.path)
			if err == nil {
				// Layer content is checked as it is read.
				for _, ai := range images {
					for _, l := range ai.layers {
						if _, err = readLayer(l); err != nil {
							break
						}
					}
				}
			}
			if err == nil {
				t.Fatal("read without error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q lacks %q", err, tc.want)
			}
			if strings.HasSuffix(err.Error(), ": EOF") {
				t.Fatalf("error ends in a bare EOF: %q", err)
			}
		})
	}
}

func TestSavedName(t *testing.T) {
	t.Parallel()
	img := &Image{Names: []string{"docker.io/library/busybox:latest", "localhost/app:v1", "127.0.0.1:5000/x/y:2"}}
	for _, tc := range []struct{ ref, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"docker.io/library/busybox:latest", "docker.io/library/busybox:latest"},
		{"app:v1", "localhost/app:v1"},
		{"localhost/app:v1", "localhost/app:v1"},
		{"127.0.0.1:5000/x/y:2", "127.0.0.1:5000/x/y:2"},
		{"0123456789ab", ""},
		{"busybox@sha256:" + strings.Repeat("a", 64), ""},
	} {
		if got := savedName(tc.ref, img); got != tc.want {
			t.Errorf("savedName(%q) = %q, want %q", tc.ref, got, tc.want)
		}
	}
}

func TestOCIName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a    map[string]string
		want string
	}{
		{map[string]string{annotationRefName: "localhost/bb:v1"}, "localhost/bb:v1"},
		{map[string]string{annotationRefName: "busybox:1"}, "docker.io/library/busybox:1"},
		{map[string]string{annotationRefName: "latest"}, ""},
		{map[string]string{annotationRefName: "latest", annotationContainerdName: "docker.io/library/busybox:latest"}, "docker.io/library/busybox:latest"},
		{nil, ""},
	} {
		got, err := ociName(tc.a, "x")
		if err != nil || got != tc.want {
			t.Errorf("ociName(%v) = %q, %v; want %q", tc.a, got, err, tc.want)
		}
	}
	if _, err := ociName(map[string]string{annotationRefName: "Not//A:Ref"}, "x"); err == nil {
		t.Error("an invalid name was accepted")
	}
}

// A failed write leaves neither the file nor a temporary one; an OCI
// directory is written only to a new or empty directory.
func TestWriteAtomically(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "out.tar")
	boom := errors.New("boom")
	err := writeFileAtomically(p, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("a failed write left %v", left)
	}
	if err := writeFileAtomically(p, func(w io.Writer) error { _, err := w.Write([]byte("whole")); return err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "whole" {
		t.Fatalf("file holds %q", b)
	}
	full := filepath.Join(dir, "full")
	os.Mkdir(full, 0o755)
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	if err := writeDirAtomically(full, func(string) error { return nil }); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("writing into a non-empty directory: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	if err := writeDirAtomically(empty, func(d string) error { return os.WriteFile(filepath.Join(d, "f"), nil, 0o644) }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(empty, "f")); err != nil {
		t.Fatal(err)
	}
}

// An index.json entry that is an image index (Docker 25 and containerd
// save multi-platform images so) loads the image for this host, named by
// containerd's annotation; one without this host's image says so.
func TestOCIIndexPicksHostPlatform(t *testing.T) {
	t.Parallel()
	img := testImage(t, nil, testLayer(t, "f", "x"))
	dir := writeTestArchive(t, t.TempDir(), OCIDir, img)
	var idx v1.IndexManifest
	raw, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	host := remote.HostPlatform()
	other := v1.Platform{OS: "linux", Architecture: "s390x"}
	writeIndex := func(platforms ...v1.Platform) {
		nested := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
		for _, p := range platforms {
			d := idx.Manifests[0]
			d.Platform = &p
			if p.Architecture != host.Architecture {
				d.Digest = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)} // not in the layout
			}
			nested.Manifests = append(nested.Manifests, d)
		}
		b, _ := json.Marshal(nested)
		os.WriteFile(filepath.Join(dir, blobPath(sha(b))), b, 0o644)
		top := v1.IndexManifest{SchemaVersion: 2, Manifests: []v1.Descriptor{{
			MediaType:   types.OCIImageIndex,
			Digest:      sha(b),
			Size:        int64(len(b)),
			Annotations: map[string]string{annotationRefName: "1", annotationContainerdName: "docker.io/library/multi:1"},
		}}}
		b, _ = json.Marshal(top)
		os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644)
	}

	writeIndex(other, host)
	images, err := openTestArchive(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(images) != 1 || images[0].cfgDigest.Hex != img.id || strings.Join(images[0].rec.names, ",") != "docker.io/library/multi:1" || images[0].rec.indexDigest == "" {
		t.Fatalf("read %d images: %+v", len(images), images)
	}

	writeIndex(other)
	if _, err := openTestArchive(t, dir); err == nil || !strings.Contains(err.Error(), "has no image for "+host.String()) {
		t.Fatalf("an index without this host's image: %v", err)
	}
}

// Docker 25 and later write an OCI layout plus manifest.json; the
// manifest.json, which names the tags fully, wins.
func TestDockerAndOCIArchive(t *testing.T) {
	t.Parallel()
	layer := testLayer(t, "f", "x")
	img := testImage(t, []string{"localhost/oci-name:v1"}, layer)
	dir := writeTestArchive(t, t.TempDir(), OCIDir, img)
	m := `[{"Config":"blobs/sha256/` + img.id + `","RepoTags":["multi:2"],"Layers":["blobs/sha256/` + sha(layer).Hex + `"]}]`
	os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(m), 0o644)
	images, err := openTestArchive(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(images) != 1 || strings.Join(images[0].rec.names, ",") != "docker.io/library/multi:2" || images[0].mediaType != types.DockerManifestSchema2 {
		t.Fatalf("read %+v", images)
	}
}
