package userns

import (
	"os"
	"slices"
	"strconv"
	"syscall"
)

// The id-map cache lets tug's entry point start newuidmap and newgidmap
// itself, before Go's runtime starts: a parent whose plan was cached
// never starts Go's runtime at all (its start and NewPlan are about 3 ms
// of a run here, which the child would wait for). The parent that works
// the plan out (the first run, or any run the entry point could not use
// the cache for) writes it; the child, whose maps came from the cache,
// checks it against the plan it works out itself meanwhile, and where
// they differ (/etc/subuid changed) writes the new one and has the line
// run again without the entry point, so that no command runs with a map
// tug would not choose now. A helper that fails has the line run again
// the same way, after the cache is removed.
//
// The file, in $XDG_CACHE_HOME/tug or else $HOME/.cache/tug (absolute
// paths only), is NUL-separated strings the entry point reads as they
// are: the magic, the user's uid and gid, then newuidmap's argv and
// newgidmap's, each ended by an empty string, the child's pid as "@PID".
// The entry point takes it only as a regular file of the user's that no
// one else may write, under 3900 bytes, whose uid and gid are the
// caller's, with at most 30 arguments a helper and an absolute path.

// cacheMagic is the file's first string (its format's version).
const cacheMagic = "tug-userns-maps-1"

// pidToken stands for the child's pid in the cached arguments.
const pidToken = "@PID"

// MapCachePath is where the id-map cache is kept, or "" where it is not
// (neither $XDG_CACHE_HOME nor $HOME is an absolute path). The entry point
// (entry_linux_amd64.s) works out the same path.
func MapCachePath() string {
	dir, err := os.UserCacheDir()
	if err != nil || dir[0] != '/' {
		return ""
	}
	return dir + "/tug/userns-maps"
}

// cacheBytes is the cache file for p, or nil for a plan without helpers
// (maps of the user alone, which the parent writes in no time).
func (p *Plan) cacheBytes() []byte {
	if len(p.UIDMap) < 2 {
		return nil
	}
	b := []byte(cacheMagic + "\x00" + strconv.Itoa(p.UID) + "\x00" + strconv.Itoa(p.GID) + "\x00")
	for _, h := range []struct {
		path string
		maps []IDMap
	}{{p.NewUIDMap, p.UIDMap}, {p.NewGIDMap, p.GIDMap}} {
		b = append(b, h.path+"\x00"+pidToken+"\x00"...)
		for _, m := range h.maps {
			for _, n := range []int{m.ContainerID, m.HostID, m.Size} {
				b = append(b, strconv.Itoa(n)+"\x00"...)
			}
		}
		b = append(b, 0)
	}
	return b
}

// CacheCurrent reports whether cached, the cache file the entry point
// wrote this process's maps from, is the one for p.
func CacheCurrent(cached []byte, p *Plan) bool {
	return slices.Equal(cached, p.cacheBytes())
}

// SaveCache writes p's cache file, or removes it for a plan without
// helpers. Errors are ignored: without the cache, a run takes the longer
// way.
func SaveCache(p *Plan) {
	path := MapCachePath()
	b := p.cacheBytes()
	if path == "" {
		return
	}
	if b == nil {
		RemoveCache()
		return
	}
	dir := path[:len(path)-len("/userns-maps")]
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	f, err := os.CreateTemp(dir, ".userns-maps-*")
	if err != nil {
		return
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
}

// RemoveCache removes the cache file.
func RemoveCache() {
	if path := MapCachePath(); path != "" {
		_ = syscall.Unlink(path)
	}
}
