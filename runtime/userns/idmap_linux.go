// Package userns is the part of tug's entry into its user namespace that
// needs little of the rest of tug: the id maps for the user (subordinate
// ranges from /etc/subuid and /etc/subgid, written by newuidmap and
// newgidmap) and the parent's part of a run cloned by tug's entry point,
// which runs in this package's init (see entry_linux.go).
//
// That init comes early, before most of tug's packages are initialized,
// only as long as this package imports nothing that waits behind them:
// Go initializes packages in import-path order as their imports are
// ready, and every package using unicode's tables (strings, bytes, bufio,
// fmt, os/user, os/exec, golang.org/x/sys/unix) comes about 2 ms later
// in a start here (26th of 232 packages against 133rd). So it reads its
// few files (/etc/passwd, /etc/subuid, /proc/self/status) and looks up
// its two helpers with the small readers below, and starts them with
// syscall (TestEarlyImports keeps it so).
package userns

import (
	"errors"
	"io"
	"os"
	"slices"
	"strconv"
	"syscall"
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

// eachLine calls f with each line of b, spaces and tabs trimmed from both
// ends, until f returns false.
func eachLine(b []byte, f func(line []byte) bool) {
	for len(b) > 0 {
		line := b
		if i := slices.Index(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		for len(line) > 0 && (line[0] == ' ' || line[0] == '\t' || line[0] == '\r') {
			line = line[1:]
		}
		for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t' || line[len(line)-1] == '\r') {
			line = line[:len(line)-1]
		}
		if !f(line) {
			return
		}
	}
}

// fields splits line at each colon.
func fields(line []byte) []string {
	var out []string
	for {
		i := slices.Index(line, ':')
		if i < 0 {
			return append(out, string(line))
		}
		out = append(out, string(line[:i]))
		line = line[i+1:]
	}
}

// ParseStatus reads Seccomp: and NoNewPrivs: from /proc/PID/status.
func ParseStatus(s string) (seccomp int, noNewPrivs bool) {
	seccomp = -1
	eachLine([]byte(s), func(line []byte) bool {
		i := slices.Index(line, ':')
		if i < 0 {
			return true
		}
		k, v := string(line[:i]), line[i+1:]
		for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
			v = v[1:]
		}
		switch k {
		case "Seccomp":
			if n, err := strconv.Atoi(string(v)); err == nil {
				seccomp = n
			}
		case "NoNewPrivs":
			noNewPrivs = string(v) == "1"
		}
		return true
	})
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
	eachLine(b, func(line []byte) bool {
		f := fields(line)
		if len(f) != 3 || (f[0] != name && f[0] != strconv.Itoa(uid)) {
			return true
		}
		start, err1 := strconv.Atoi(f[1])
		count, err2 := strconv.Atoi(f[2])
		if err1 == nil && err2 == nil && count > 0 {
			out = append(out, IDRange{Start: start, Count: count})
		}
		return true
	})
	return out
}

// userName is the name /etc/passwd gives uid (the first entry with it, as
// os/user reads it), or uid as a number.
func userName(uid int) string {
	name := strconv.Itoa(uid)
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return name
	}
	eachLine(b, func(line []byte) bool {
		if len(line) == 0 || line[0] == '#' {
			return true
		}
		if f := fields(line); len(f) >= 3 && f[2] == strconv.Itoa(uid) && f[0] != "" {
			name = f[0]
			return false
		}
		return true
	})
	return name
}

// lookPath finds an executable regular file named file in the absolute
// directories of $PATH, as exec.LookPath does (which refuses relative ones).
func lookPath(file string) (string, bool) {
	dirs := []byte(os.Getenv("PATH"))
	for {
		dir := dirs
		i := slices.Index(dirs, ':')
		if i >= 0 {
			dir, dirs = dirs[:i], dirs[i+1:]
		}
		if len(dir) > 0 && dir[0] == '/' {
			p := string(dir) + "/" + file
			if dir[len(dir)-1] == '/' {
				p = string(dir) + file
			}
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return p, true
			}
		}
		if i < 0 {
			return "", false
		}
	}
}

// SetuidRoot reports whether the file at path is setuid and owned by root.
func SetuidRoot(path string) bool {
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return fi.Mode()&os.ModeSetuid != 0 && ok && st.Uid == 0
}

// helperProblem says why the setuid helper at path cannot map ids for
// this process, or "" when it can.
func helperProblem(path string) string {
	status, _ := os.ReadFile("/proc/self/status")
	_, nnp := ParseStatus(string(status))
	c := HelperCheck{Path: path, Setuid: SetuidRoot(path)}
	if !c.Setuid {
		_, err := syscall.Getxattr(path, "security.capability", nil)
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

// singleID ends the warnings of a plan that maps the user alone.
const singleID = "using single-id mapping (every file in an image is owned by you, chown is ignored)"

// NewPlan works out the id maps for the user with ids uid and gid the way
// Podman does: the user is 0 inside, its subordinate ranges from
// /etc/subuid and /etc/subgid (lowest first) follow from 1. Without a
// range, or without newuidmap and newgidmap, only the user is mapped and
// Warning says what to install or add.
func NewPlan(uid, gid int) *Plan { return newPlan(uid, gid, true) }

// HelpersPlan is NewPlan for a process whose helpers have just written
// its maps, which shows they can: it does not look at their privileges
// (which a process in tug's user namespace cannot see, root being
// unmapped there).
func HelpersPlan(uid, gid int) *Plan { return newPlan(uid, gid, false) }

func newPlan(uid, gid int, checkHelpers bool) *Plan {
	p := &Plan{UID: uid, GID: gid, User: userName(uid)}
	p.UIDMap = []IDMap{{ContainerID: 0, HostID: uid, Size: 1}}
	p.GIDMap = []IDMap{{ContainerID: 0, HostID: gid, Size: 1}}

	var missing []string
	var ok bool
	if p.NewUIDMap, ok = lookPath("newuidmap"); !ok {
		missing = append(missing, "newuidmap")
	}
	if p.NewGIDMap, ok = lookPath("newgidmap"); !ok {
		missing = append(missing, "newgidmap")
	}
	if len(missing) > 0 {
		what := missing[0]
		if len(missing) == 2 {
			what += " and " + missing[1]
		}
		p.Warning = what + " not found: " + singleID + "; install the 'uidmap' package to map subordinate ids"
		return p
	}
	if checkHelpers {
		for _, helper := range []string{p.NewUIDMap, p.NewGIDMap} {
			if problem := helperProblem(helper); problem != "" {
				p.Warning = problem + ": " + singleID
				return p
			}
		}
	}
	subUIDs := ReadSubIDs("/etc/subuid", p.User, uid)
	subGIDs := ReadSubIDs("/etc/subgid", p.User, uid)
	if len(subUIDs) == 0 || len(subGIDs) == 0 {
		p.Warning = "no subordinate ids for user " + p.User + " in /etc/subuid and /etc/subgid: " + singleID + "; to map more ids run 'sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 " + p.User + "'"
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
		// either is waited for.
		uid := startHelper(p.NewUIDMap, "/etc/subuid", helperArgs(pid, p.UIDMap))
		gid := startHelper(p.NewGIDMap, "/etc/subgid", helperArgs(pid, p.GIDMap))
		return errors.Join(uid.wait(), gid.wait())
	}
	proc := "/proc/" + strconv.Itoa(pid)
	for _, f := range []struct{ name, data string }{
		{"setgroups", "deny"},
		{"uid_map", "0 " + strconv.Itoa(p.UID) + " 1"},
		{"gid_map", "0 " + strconv.Itoa(p.GID) + " 1"},
	} {
		if err := os.WriteFile(proc+"/"+f.name, []byte(f.data), 0); err != nil {
			return &wrapped{"writing " + proc + "/" + f.name, err, ""}
		}
	}
	return nil
}

// wrapped is err said after what failed, and before more words if any
// (fmt.Errorf's "%s: %w: %s").
type wrapped struct {
	what  string
	err   error
	after string
}

func (w *wrapped) Error() string {
	s := w.what + ": " + w.err.Error()
	if w.after != "" {
		s += ": " + w.after
	}
	return s
}

func (w *wrapped) Unwrap() error { return w.err }

// helper is newuidmap or newgidmap started for one process, its output
// (both streams) on a pipe.
type helper struct {
	path, subidFile string
	args            []string
	pid             int
	out             *os.File
	err             error
}

// helperArgs are the arguments of newuidmap or newgidmap for process pid.
func helperArgs(pid int, maps []IDMap) []string {
	args := []string{strconv.Itoa(pid)}
	for _, m := range maps {
		args = append(args, strconv.Itoa(m.ContainerID), strconv.Itoa(m.HostID), strconv.Itoa(m.Size))
	}
	return args
}

func startHelper(path, subidFile string, args []string) *helper {
	h := &helper{path: path, subidFile: subidFile, args: append([]string{path}, args...)}
	r, w, err := os.Pipe()
	if err != nil {
		h.err = err
		return h
	}
	defer w.Close()
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		r.Close()
		h.err = err
		return h
	}
	defer devNull.Close()
	h.pid, err = syscall.ForkExec(path, h.args, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{devNull.Fd(), w.Fd(), w.Fd()},
	})
	if err != nil {
		r.Close()
		h.err = &wrapped{"fork/exec " + path, err, ""}
		return h
	}
	h.out = r
	return h
}

func (h *helper) wait() error {
	var out []byte
	if h.err == nil {
		out, _ = io.ReadAll(h.out)
		h.out.Close()
		var ws syscall.WaitStatus
		_, err := wait4(h.pid, &ws)
		switch {
		case err != nil:
			h.err = &wrapped{"wait", err, ""}
		case ws.Signaled():
			h.err = errors.New("signal: " + ws.Signal().String())
		case ws.ExitStatus() != 0:
			h.err = errors.New("exit status " + strconv.Itoa(ws.ExitStatus()))
		}
	}
	if h.err == nil {
		return nil
	}
	line := ""
	for _, a := range h.args[1:] {
		line += " " + a
	}
	return &wrapped{"writing id map with " + h.path + line, h.err, trimBytes(out) +
		" (" + h.path + " must be setuid root or have file capabilities, and " + h.subidFile + " must give you that range)"}
}

// trimBytes is b as a string, white space trimmed from both ends.
func trimBytes(b []byte) string {
	s := ""
	eachLine(b, func(line []byte) bool {
		if s != "" {
			s += "\n"
		}
		s += string(line)
		return true
	})
	return s
}
