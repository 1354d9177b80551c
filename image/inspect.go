package image

import (
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Inspect is an image in the shape of Docker's `docker image inspect`.
type Inspect struct {
	ID            string `json:"Id"`
	RepoTags      []string
	RepoDigests   []string
	Parent        string
	Comment       string
	Created       string
	DockerVersion string
	Author        string
	Config        *v1.Config
	Architecture  string
	Variant       string `json:",omitempty"`
	Os            string
	OsVersion     string `json:",omitempty"`
	Size          int64
	GraphDriver   GraphDriver
	RootFS        RootFS
	Metadata      Metadata
}

// GraphDriver names the storage driver, as in Docker's inspect.
type GraphDriver struct {
	Name string
	Data map[string]string
}

// RootFS lists the image's layers by diff id.
type RootFS struct {
	Type   string
	Layers []string
}

// Metadata is Docker's inspect metadata.
type Metadata struct {
	LastTagTime string
}

// Inspect describes the image ref the way `docker image inspect` does.
func (s *Store) Inspect(ref string) (*Inspect, error) {
	img, err := s.Lookup(ref)
	if err != nil {
		return nil, err
	}
	s.withSize(img)
	c := img.Config
	out := &Inspect{
		ID:            "sha256:" + img.ID,
		RepoTags:      nonNil(img.RepoTags()),
		RepoDigests:   nonNil(img.RepoDigests()),
		Comment:       historyComment(c),
		Created:       c.Created.UTC().Format(time.RFC3339Nano),
		DockerVersion: c.DockerVersion,
		Author:        c.Author,
		Config:        &c.Config,
		Architecture:  c.Architecture,
		Variant:       c.Variant,
		Os:            c.OS,
		OsVersion:     c.OSVersion,
		Size:          img.Size,
		GraphDriver:   GraphDriver{Name: s.s.GraphDriverName(), Data: map[string]string{}},
		RootFS:        RootFS{Type: "layers"},
		Metadata:      Metadata{LastTagTime: "0001-01-01T00:00:00Z"},
	}
	for _, d := range c.RootFS.DiffIDs {
		out.RootFS.Layers = append(out.RootFS.Layers, d.String())
	}
	return out, nil
}

func historyComment(c v1.ConfigFile) string {
	if n := len(c.History); n > 0 {
		return c.History[n-1].Comment
	}
	return ""
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
