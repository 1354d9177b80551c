// Package userns is the part of tug's entry into its user namespace that
// needs little of the rest of tug: the id maps for the user (subordinate
// ranges from /etc/subuid and /etc/subgid, written by newuidmap and
// newgidmap) and the parent's part of a run cloned by tug's entry point,
// which runs in this package's init (see entry_linux.go), before most of
// tug's packages are initialized.
package userns

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// IDMap is one line of a uid_map or gid_map: Size ids starting at ContainerID
// inside the namespace are HostID... outside it.
type IDMap struct {
	ContainerID, HostID, Size int
}

// IDRange is one line of /etc/subuid or /etc/subgid for the user.
type IDRange struct {
	Start, Count int
}

// HelperCheck is newuidmap or newgidmap.
type HelperCheck struct {
	Path     string // empty when not on PATH
	Setuid   bool   // setuid and owned by root
	FileCaps bool   // has a security.capability xattr
}

// Usable reports whether the helper can write a map for an unprivileged
// caller: found, and privileged by setuid or file capabilities, which
// no_new_privs takes away.
func (h HelperCheck) Usable(noNewPrivs bool) bool {
	return h.Path != "" && (h.Setuid || h.FileCaps) && !noNewPrivs
}

// ParseStatus reads Seccomp: and NoNewPrivs: from /proc/PID/status.
func ParseStatus(s string) (seccomp int, noNewPrivs bool) {
	seccomp = -1
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Seccomp":
			if n, err := strconv.Atoi(v); err == nil {
				seccomp = n
			}
		case "NoNewPrivs":
			noNewPrivs = v == "1"
		}
	}
	return seccomp, noNewPrivs
}

// ReadSubIDs returns the ranges of the user (by name or numeric uid) in a
// subuid or subgid file, as shadow-utils reads it.
func ReadSubIDs(path, name string, uid int) []IDRange {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []IDRange
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) != 3 || (f[0] != name && f[0] != strconv.Itoa(uid)) {
			continue
		}
		start, err1 := strconv.Atoi(f[1])
		count, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || count <= 0 {
			continue
		}
		out = append(out, IDRange{Start: start, Count: count})
	}
	return out
}

// helperProblem says why the setuid helper at path cannot map ids for
// this process, or "" when it can.
func helperProblem(path string) string {
	status, _ := os.ReadFile("/proc/self/status")
	_, nnp := ParseStatus(string(status))
	c := HelperCheck{Path: path}
	if fi, err := os.Stat(path); err == nil {
		st, ok := fi.Sys().(*syscall.Stat_t)
		c.Setuid = fi.Mode()&os.ModeSetuid != 0 && ok && st.Uid == 0
	}
	if !c.Setuid {
		_, err := unix.Getxattr(path, "security.capability", nil)
		c.FileCaps = err == nil
	}
	switch {
	case c.Usable(nnp):
		return ""
	case nnp:
		return "no_new_privs is set on this process, so " + path + " cannot gain its privileges"
	}
	return path + " is neither setuid root nor has file capabilities"
}

// Plan is the user namespace tug sets up for an unprivileged user: who
// the user is, the maps it will write and, when it has to fall back to
// mapping the user alone, the warning that says so and how to fix it.
type Plan struct {
	User     string
	UID, GID int
	UIDMap   []IDMap
	GIDMap   []IDMap
	// Warning is non-empty when only the user's own id can be mapped.
	Warning string
	// NewUIDMap and NewGIDMap are the helpers' paths.
	NewUIDMap, NewGIDMap string
}

// NewPlan works out the id maps for the user with ids uid and gid the way
// Podman does: the user is 0 inside, its subordinate ranges from
// /etc/subuid and /etc/subgid (lowest first) follow from 1. Without a
// range, or without newuidmap and newgidmap, only the user is mapped and
// Warning says what to install or add.
func NewPlan(uid, gid int) *Plan {
	p := &Plan{UID: uid, GID: gid, User: strconv.Itoa(uid)}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		p.User = u.Username
	}
	p.UIDMap = []IDMap{{ContainerID: 0, HostID: uid, Size: 1}}
	p.GIDMap = []IDMap{{ContainerID: 0, HostID: gid, Size: 1}}

	var missing []string
	var err error
	if p.NewUIDMap, err = exec.LookPath("newuidmap"); err != nil {
		missing = append(missing, "newuidmap")
	}
	if p.NewGIDMap, err = exec.LookPath("newgidmap"); err != nil {
		missing = append(missing, "newgidmap")
	}
	if len(missing) > 0 {
		p.Warning = fmt.Sprintf("%s not found: using single-id mapping (every file in an image is owned by you, chown is ignored); install the 'uidmap' package to map subordinate ids", strings.Join(missing, " and "))
		return p
	}
	for _, helper := range []string{p.NewUIDMap, p.NewGIDMap} {
		if problem := helperProblem(helper); problem != "" {
			p.Warning = problem + ": using single-id mapping (every file in an image is owned by you, chown is ignored)"
			return p
		}
	}
	subUIDs := ReadSubIDs("/etc/subuid", p.User, uid)
	subGIDs := ReadSubIDs("/etc/subgid", p.User, uid)
	if len(subUIDs) == 0 || len(subGIDs) == 0 {
		p.Warning = fmt.Sprintf("no subordinate ids for user %s in /etc/subuid and /etc/subgid: using single-id mapping (every file in an image is owned by you, chown is ignored); to map more ids run 'sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s'", p.User, p.User)
		return p
	}
	p.UIDMap = appendRanges(p.UIDMap, subUIDs)
	p.GIDMap = appendRanges(p.GIDMap, subGIDs)
	return p
}

// appendRanges maps the ranges, lowest first, one after the other from 1.
func appendRanges(m []IDMap, rs []IDRange) []IDMap {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b IDRange) int {
		if a.Start != b.Start {
			return a.Start - b.Start
		}
		return a.Count - b.Count
	})
	next := 1
	for _, r := range rs {
		m = append(m, IDMap{ContainerID: next, HostID: r.Start, Size: r.Count})
		next += r.Count
	}
	return m
}

// WriteMaps writes the maps of process pid, which is in a user namespace
// the user made: through the setuid helpers for a subordinate range, or
// directly for the user alone (the kernel lets a process map its own ids
// into a child namespace).
func (p *Plan) WriteMaps(pid int) error {
	if len(p.UIDMap) > 1 {
		// The two helpers are independent: both are started before
		// either is waited for. (Started from two goroutines, the second
		// waited for a Go processor while the first one's thread sat in
		// its blocking wait: they ran one after the other.)
		uid := startHelper(p.NewUIDMap, "/etc/subuid", pid, p.UIDMap)
		gid := startHelper(p.NewGIDMap, "/etc/subgid", pid, p.GIDMap)
		return errors.Join(uid.wait(), gid.wait())
	}
	proc := "/proc/" + strconv.Itoa(pid)
	if err := os.WriteFile(proc+"/setgroups", []byte("deny"), 0); err != nil {
		return fmt.Errorf("writing %s/setgroups: %w", proc, err)
	}
	if err := os.WriteFile(proc+"/uid_map", []byte(fmt.Sprintf("0 %d 1", p.UID)), 0); err != nil {
		return fmt.Errorf("writing %s/uid_map: %w", proc, err)
	}
	if err := os.WriteFile(proc+"/gid_map", []byte(fmt.Sprintf("0 %d 1", p.GID)), 0); err != nil {
		return fmt.Errorf("writing %s/gid_map: %w", proc, err)
	}
	return nil
}

// helper is newuidmap or newgidmap started for one process.
type helper struct {
	cmd       *exec.Cmd
	out       bytes.Buffer
	subidFile string
	err       error
}

func startHelper(path, subidFile string, pid int, maps []IDMap) *helper {
	args := []string{strconv.Itoa(pid)}
	for _, m := range maps {
		args = append(args, strconv.Itoa(m.ContainerID), strconv.Itoa(m.HostID), strconv.Itoa(m.Size))
	}
	h := &helper{cmd: exec.Command(path, args...), subidFile: subidFile}
	h.cmd.Stdout, h.cmd.Stderr = &h.out, &h.out
	h.err = h.cmd.Start()
	return h
}

func (h *helper) wait() error {
	if h.err == nil {
		h.err = h.cmd.Wait()
	}
	if h.err != nil {
		path := h.cmd.Path
		return fmt.Errorf("writing id map with %s %s: %w: %s (%s must be setuid root or have file capabilities, and %s must give you that range)",
			path, strings.Join(h.cmd.Args[1:], " "), h.err, strings.TrimSpace(h.out.String()), path, h.subidFile)
	}
	return nil
}
