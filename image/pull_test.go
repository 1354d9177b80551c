package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func TestChainIDs(t *testing.T) {
	t.Parallel()
	a := v1.Hash{Algorithm: "sha256", Hex: "aa"}
	b := v1.Hash{Algorithm: "sha256", Hex: "bb"}
	ids := ChainIDs([]v1.Hash{a, b})
	sum := sha256.Sum256([]byte("aa+bb"))
	if ids[0] != "aa" || ids[1] != hex.EncodeToString(sum[:]) {
		t.Fatalf("ChainIDs = %v", ids)
	}
}

func TestDiffIDOfEachCompression(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("layer content "), 10000)
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	var zs bytes.Buffer
	ze, _ := zstd.NewWriter(&zs)
	ze.Write(data)
	ze.Close()

	for name, in := range map[string][]byte{"plain": data, "gzip": gz.Bytes(), "zstd": zs.Bytes()} {
		h, err := diffID(bytes.NewReader(in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if h.Hex != want {
			t.Errorf("%s: diff id %s, want %s", name, h.Hex, want)
		}
	}
	if _, err := diffID(bytes.NewReader(gz.Bytes()[:gz.Len()/2])); err == nil {
		t.Error("a truncated gzip stream hashed without error")
	}
}

func TestSplitName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, repo, tag, dig string }{
		{"docker.io/library/busybox:latest", "docker.io/library/busybox", "latest", ""},
		{"127.0.0.1:5000/app:v1", "127.0.0.1:5000/app", "v1", ""},
		{"127.0.0.1:5000/app", "127.0.0.1:5000/app", "", ""},
		{"quay.io/a/b@sha256:00", "quay.io/a/b", "", "sha256:00"},
	} {
		r, tg, d := splitName(tc.in)
		if r != tc.repo || tg != tc.tag || d != tc.dig {
			t.Errorf("splitName(%q) = %q %q %q", tc.in, r, tg, d)
		}
	}
}
