package image

import (
	"archive/tar"
	"bufio"
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
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.podman.io/storage/pkg/archive"

	"github.com/tugcli/tug/fixture/hostile"
	"github.com/tugcli/tug/remote"
)

// Fuzz targets of load, pull's config checks and image names; the seeds
// (testdata/fuzz/FuzzXxx and the f.Add calls) run with every `go test`.
// See README for fuzzing long.

// fuzzBlobs are the files every FuzzArchiveMetadata layout holds: a layer,
// a config naming it, and an OCI manifest of the two, each under its
// digest and (for docker save's format) under a plain name.
type fuzzBlobs struct {
	layer, config, manifest []byte
}

func newFuzzBlobs() fuzzBlobs {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "etc/motd", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
	tw.Write([]byte("hi"))
	tw.Close()
	layer := b.Bytes()
	cfg, _ := json.Marshal(v1.ConfigFile{OS: "linux", Architecture: remote.HostPlatform().Architecture, RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{digestOf(layer)}}})
	m, _ := json.Marshal(v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(cfg)), Digest: digestOf(cfg)},
		Layers:        []v1.Descriptor{{MediaType: types.OCIUncompressedLayer, Size: int64(len(layer)), Digest: digestOf(layer)}},
	})
	return fuzzBlobs{layer: layer, config: cfg, manifest: m}
}

func digestOf(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

func (fb fuzzBlobs) fs(manifestJSON, indexJSON []byte) fstest.MapFS {
	m := fstest.MapFS{
		"config.json": {Data: fb.config},
		"layer.tar":   {Data: fb.layer},
		"oci-layout":  {Data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		"link.tar":    {Data: []byte("layer.tar"), Mode: fs.ModeSymlink},
	}
	for _, b := range [][]byte{fb.layer, fb.config, fb.manifest} {
		m[blobPath(digestOf(b))] = &fstest.MapFile{Data: b}
	}
	if len(manifestJSON) > 0 {
		m["manifest.json"] = &fstest.MapFile{Data: manifestJSON}
	}
	if len(indexJSON) > 0 {
		m["index.json"] = &fstest.MapFile{Data: indexJSON}
	}
	return m
}

// FuzzArchiveMetadata loads layouts whose manifest.json (docker save) or
// index.json (OCI) is fuzzed, next to real blobs; see checkLoaded.
func FuzzArchiveMetadata(f *testing.F) {
	fb := newFuzzBlobs()
	cfg, layer, man := digestOf(fb.config), digestOf(fb.layer), digestOf(fb.manifest)
	f.Add([]byte(`[{"Config":"config.json","RepoTags":["busybox:1"],"Layers":["layer.tar"]}]`), []byte(nil))
	f.Add([]byte(`[{"Config":"blobs/sha256/`+cfg.Hex+`","RepoTags":["localhost/a:v1","a@sha256:`+cfg.Hex+`"],"Layers":["blobs/sha256/`+layer.Hex+`"]}]`), []byte(nil))
	f.Add([]byte(nil), []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"`+man.String()+`","size":`+itoa(len(fb.manifest))+`,"annotations":{"org.opencontainers.image.ref.name":"localhost/a:v1"}}]}`))
	f.Fuzz(func(t *testing.T, manifestJSON, indexJSON []byte) {
		what := "fuzz.tar"
		images, err := readArchive(context.Background(), fb.fs(manifestJSON, indexJSON), what)
		checkLoaded(t, what, images, err)
	})
}

// FuzzLoadArchive loads a whole archive file as `tug load` does (format
// and compression detected, tar indexed in place); see checkLoaded.
func FuzzLoadArchive(f *testing.F) {
	for _, s := range fuzzArchiveSeeds() {
		f.Add(s)
	}
	for _, s := range hostile.RawSeeds() {
		if len(s) < 64<<10 { // the 1 MiB name slows every mutation down
			f.Add(s[1:])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if tooLarge(data) {
			return // a decompression bomb fills the disk; that is not what this fuzzes
		}
		dir := t.TempDir()
		p := filepath.Join(dir, "fuzz.tar")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		fsys, what, closeFn, err := openArchive(context.Background(), LoadOptions{Input: p}, dir)
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error does not name the archive: %v", err)
			}
			return
		}
		defer closeFn()
		images, err := readArchive(context.Background(), fsys, what)
		checkLoaded(t, what, images, err)
	})
}

// tooLarge reports whether compressed data decompresses to over 16 MiB.
func tooLarge(data []byte) bool {
	c := archive.DetectCompression(data)
	if c == archive.Uncompressed {
		return false
	}
	r, err := decompress(c, bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return false
	}
	defer r.Close()
	n, _ := io.Copy(io.Discard, io.LimitReader(r, 16<<20+1))
	return n > 16<<20
}

// checkLoaded checks what reading an archive gave: an error that names
// the archive, or images whose config matches its digest, whose names
// are references in the store's form, whose layer paths stay in the
// archive, and which prepare (pull's checks) either accepts with one diff
// id per layer or refuses with an error naming the archive. Every layer
// reads back matching its digest or fails saying so.
func checkLoaded(t *testing.T, what string, images []*archiveImage, err error) {
	t.Helper()
	if err != nil {
		if !strings.Contains(err.Error(), what) {
			t.Fatalf("error does not name the archive %s: %v", what, err)
		}
		return
	}
	if len(images) == 0 {
		t.Fatal("an archive read without error holds no image")
	}
	for _, ai := range images {
		if digestOf(ai.rawCfg) != ai.cfgDigest {
			t.Fatalf("config %s does not hash to its digest", ai.cfgDigest)
		}
		for _, n := range ai.rec.names {
			r, err := remote.ParseReference(n)
			if err != nil || remote.Canonical(r) != n {
				t.Fatalf("name %q is not a canonical reference (%v)", n, err)
			}
		}
		for d, l := range ai.layers {
			if !fs.ValidPath(l.path) || l.digest != d {
				t.Fatalf("layer %s at %q", d, l.path)
			}
			b, err := readAll(l)
			if err == nil && digestOf(b) != d {
				t.Fatalf("layer %s read back without error but hashes to %s", d, digestOf(b))
			}
		}
		img, err := partial.CompressedToImage(ai)
		if err != nil {
			continue
		}
		p, err := prepare(img, ai.what, ai.rec)
		if err != nil {
			if !strings.Contains(err.Error(), what) {
				t.Fatalf("prepare's error does not name the archive: %v", err)
			}
			continue
		}
		if len(p.layers) != len(p.diffIDs) || len(ChainIDs(p.diffIDs)) != len(p.layers) {
			t.Fatalf("prepared %d layers with %d diff ids", len(p.layers), len(p.diffIDs))
		}
	}
}

func readAll(l *archiveLayer) ([]byte, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 64<<20))
}

// fuzzArchiveSeeds are real archives as tug save writes them.
func fuzzArchiveSeeds() [][]byte {
	fb := newFuzzBlobs()
	si := saveImage{names: []string{"localhost/a:v1"}, config: fb.config, id: digestOf(fb.config).Hex}
	si.layers = []saveLayer{{diffID: digestOf(fb.layer), open: func() (io.ReadCloser, int64, error) {
		return io.NopCloser(bytes.NewReader(fb.layer)), int64(len(fb.layer)), nil
	}}}
	var out [][]byte
	for _, docker := range []bool{true, false} {
		var b bytes.Buffer
		err := writeTar(&b, func(sk sink) error {
			aw := &archiveWriter{ctx: context.Background(), sink: sk, written: map[string]int64{}}
			if docker {
				return aw.dockerArchive([]saveImage{si})
			}
			return aw.ociLayout([]saveImage{si})
		})
		if err != nil {
			panic(err)
		}
		out = append(out, b.Bytes())
	}
	return out
}

// FuzzTarIndex indexes a tar archive as load does and looks a name up:
// what it finds is a regular file, under a valid name, whatever links
// (loops, links out of the archive) lead there.
func FuzzTarIndex(f *testing.F) {
	hostile.AddSeeds(func(a ...any) { f.Add(a[0].([]byte), "evil/etc/passwd") })
	f.Add([]byte("l a\tb\nl b\ta\n"), "a")
	f.Add([]byte("l a\t../../../etc/passwd\n"), "a")
	f.Add([]byte("f real\tx\nl a\t/real\nh b\ta\n"), "b")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		a := hostile.Tar(data, "/outside")
		p := filepath.Join(t.TempDir(), "a.tar")
		if err := os.WriteFile(p, a.Tar, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		tfs, err := indexTar(f, "a.tar")
		if err != nil {
			return
		}
		for n := range tfs.entries {
			if !fs.ValidPath(n) {
				t.Fatalf("indexed the invalid name %q", n)
			}
		}
		file, err := tfs.Open(cleanArchivePath(name))
		if err != nil {
			return
		}
		defer file.Close()
		fi, _ := file.Stat()
		if !fi.Mode().IsRegular() {
			t.Fatalf("%q opened as %v, not a regular file", name, fi.Mode())
		}
		if _, err := io.Copy(io.Discard, file); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("reading %q: %v", name, err)
		}
	})
}

// fakeImage is a registry image as go-containerregistry's remote sees
// one: a raw manifest and config.
type fakeImage struct{ manifest, config []byte }

func (f *fakeImage) RawConfigFile() ([]byte, error) { return f.config, nil }
func (f *fakeImage) RawManifest() ([]byte, error)   { return f.manifest, nil }
func (f *fakeImage) MediaType() (types.MediaType, error) {
	var m struct{ MediaType types.MediaType }
	json.Unmarshal(f.manifest, &m)
	return m.MediaType, nil
}
func (f *fakeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	return nil, errors.New("no layers in a fuzzed image")
}

// FuzzPrepare runs pull's checks of a manifest and config (prepare): an
// image is accepted only with a config that hashes to the manifest's
// digest and one diff id per layer; nothing panics.
func FuzzPrepare(f *testing.F) {
	fb := newFuzzBlobs()
	f.Add(fb.manifest, fb.config)
	f.Add(fb.manifest, []byte(`{"rootfs":{"diff_ids":[]}}`))
	f.Add([]byte(`{"schemaVersion":2,"config":{"digest":"sha256:x"},"layers":[{"digest":"../../etc"}]}`), []byte("{}"))
	f.Fuzz(func(t *testing.T, manifest, config []byte) {
		img, err := partial.CompressedToImage(&fakeImage{manifest: manifest, config: config})
		if err != nil {
			return
		}
		p, err := prepare(img, "fuzz", record{})
		if err != nil {
			return
		}
		if digestOf(config) != p.cfgDigest {
			t.Fatalf("accepted a config that hashes to %s, not %s", digestOf(config), p.cfgDigest)
		}
		if len(p.layers) != len(p.diffIDs) {
			t.Fatalf("accepted %d layers with %d diff ids", len(p.layers), len(p.diffIDs))
		}
	})
}

// FuzzDiffID hashes a layer blob as pull does while downloading (gzip,
// zstd or plain, detected): the same bytes give the same answer.
func FuzzDiffID(f *testing.F) {
	fb := newFuzzBlobs()
	f.Add(fb.layer)
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if tooLarge(data) {
			return
		}
		h1, err1 := diffID(bytes.NewReader(data))
		h2, err2 := diffID(bytes.NewReader(data))
		if h1 != h2 || (err1 == nil) != (err2 == nil) {
			t.Fatalf("two runs: %v %v, %v %v", h1, err1, h2, err2)
		}
	})
}

// FuzzImageName runs the name handling of Lookup, tag and build -t: a
// name that parses has a canonical form that parses back to itself, and
// splits into repository and tag or digest that give it back; a local
// name (LocalName) is stable too.
func FuzzImageName(f *testing.F) {
	for _, s := range []string{"busybox", "busybox:1.36", "docker.io/library/busybox", "localhost/app:v1", "127.0.0.1:5000/a/b:c", "a@sha256:" + strings.Repeat("a", 64), "sha256:" + strings.Repeat("b", 64), "abc123", "../../etc/passwd", "UPPER/x", "a:b:c", "[::1]:5000/x"} {
		f.Add(s)
	}
	hexID := regexp.MustCompile(`^(sha256:)?[0-9a-f]{1,64}$`)
	f.Fuzz(func(t *testing.T, s string) {
		if isHexID(s) != hexID.MatchString(s) {
			t.Fatalf("isHexID(%q) = %v, the expression it stands for says %v", s, isHexID(s), !isHexID(s))
		}
		r, err := remote.ParseReference(s)
		if err != nil {
			if !strings.Contains(err.Error(), "invalid reference format") {
				t.Fatalf("ParseReference(%q): %v", s, err)
			}
			return
		}
		c := remote.Canonical(r)
		r2, err := remote.ParseReference(c)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", c, s, err)
		}
		if c2 := remote.Canonical(r2); c2 != c {
			t.Fatalf("canonical form of %q is %q, and of that %q", s, c, c2)
		}
		repo, tag, dig := splitName(c)
		switch {
		case dig != "" && repo+"@"+dig != c, tag != "" && repo+":"+tag != c, dig == "" && tag == "":
			t.Fatalf("splitName(%q) = %q %q %q", c, repo, tag, dig)
		}
		remote.IsLoopback(r.Context().RegistryStr())
		local, err := LocalName(s)
		if err != nil {
			t.Fatalf("LocalName(%q): %v, though it parses", s, err)
		}
		if again, err := LocalName(local); err != nil || again != local {
			t.Fatalf("LocalName(%q) = %q, and of that %q (%v)", s, local, again, err)
		}
	})
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
