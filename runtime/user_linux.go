package runtime

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/tugcli/tug/runtime/initproc"
)

// User is a container user resolved through the image's /etc/passwd and
// /etc/group.
type User struct {
	UID, GID       uint32
	AdditionalGIDs []uint32
	Home           string
}

// ResolveUser resolves Docker's --user forms (name, uid, name:group,
// uid:gid, ...) against the passwd and group files under rootfs, the way
// Docker does: a numeric uid absent from passwd is used as it is (with gid
// 0), a name that is absent is an error.
func ResolveUser(rootfs, spec string) (*User, error) {
	if spec == "" {
		spec = "0"
	}
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	passwd, err := readColonFile(rootfs, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	groups, err := readColonFile(rootfs, "/etc/group")
	if err != nil {
		return nil, err
	}
	u := &User{Home: "/"}
	var name string
	found := false
	for _, f := range passwd {
		if len(f) < 7 {
			continue
		}
		if f[0] == userPart || f[2] == userPart {
			uid, err1 := strconv.ParseUint(f[2], 10, 32)
			gid, err2 := strconv.ParseUint(f[3], 10, 32)
			if err1 != nil || err2 != nil {
				continue
			}
			u.UID, u.GID, u.Home, name, found = uint32(uid), uint32(gid), f[5], f[0], true
			break
		}
	}
	if !found {
		uid, err := strconv.ParseUint(userPart, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("unable to find user %s: no matching entries in passwd file", userPart)
		}
		u.UID, u.GID = uint32(uid), 0
	}
	if hasGroup {
		gid, ok := lookupGroup(groups, groupPart)
		if !ok {
			n, err := strconv.ParseUint(groupPart, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("unable to find group %s: no matching entries in group file", groupPart)
			}
			gid = uint32(n)
		}
		u.GID = gid
	}
	// Supplementary groups: the primary group, as Docker lists it, then
	// every group that lists the user by name.
	u.AdditionalGIDs = []uint32{u.GID}
	if name != "" {
		for _, f := range groups {
			if len(f) < 4 {
				continue
			}
			for _, member := range strings.Split(f[3], ",") {
				if member == name {
					if g, err := strconv.ParseUint(f[2], 10, 32); err == nil && uint32(g) != u.GID {
						u.AdditionalGIDs = append(u.AdditionalGIDs, uint32(g))
					}
				}
			}
		}
	}
	return u, nil
}

// AddGroups adds Docker's --group-add groups (names from the image's
// /etc/group, or numbers) to u's supplementary groups.
func AddGroups(rootfs string, u *User, add []string) error {
	if len(add) == 0 {
		return nil
	}
	groups, err := readColonFile(rootfs, "/etc/group")
	if err != nil {
		return err
	}
	for _, g := range add {
		gid, ok := lookupGroup(groups, g)
		if !ok {
			n, err := strconv.ParseUint(g, 10, 32)
			if err != nil {
				return fmt.Errorf("unable to find group %s: no matching entries in group file", g)
			}
			gid = uint32(n)
		}
		if !slices.Contains(u.AdditionalGIDs, gid) {
			u.AdditionalGIDs = append(u.AdditionalGIDs, gid)
		}
	}
	return nil
}

func lookupGroup(groups [][]string, s string) (uint32, bool) {
	for _, f := range groups {
		if len(f) >= 3 && (f[0] == s || f[2] == s) {
			if g, err := strconv.ParseUint(f[2], 10, 32); err == nil {
				return uint32(g), true
			}
		}
	}
	return 0, false
}

// readColonFile reads a passwd-style file from the image; a missing file
// is empty, as for Docker.
func readColonFile(rootfs, p string) ([][]string, error) {
	path, err := initproc.InRoot(rootfs, p)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s of the image: %w", p, err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out, sc.Err()
}
