package initproc

import (
	"encoding/binary"
	"strings"
	"syscall"
	"testing"
)

// The forked child reports a failed step as three native uint32s (step,
// errno, index); Failure turns them into Main's exit code and words, and
// passes notes on.
func TestForkPlanFailure(t *testing.T) {
	record := func(step uint32, errno syscall.Errno, index uint32) []byte {
		var b []byte
		for _, v := range []uint32{step, uint32(errno), index} {
			b = binary.NativeEndian.AppendUint32(b, v)
		}
		return b
	}
	plan := func(args ...string) *ForkPlan {
		return &ForkPlan{spec: &Config{Args: args, Cwd: "/w", UID: 1000, Rootfs: "/r"}, candidateNames: []string{"/usr/bin/" + args[0], "/bin/" + args[0]}}
	}
	for _, tc := range []struct {
		plan *ForkPlan
		raw  []byte
		code int
		msg  string
	}{
		{plan("nosuch"), record(stepExec, syscall.ENOENT, 0), 127, `"nosuch": executable file not found in $PATH`},
		{plan("/nosuch"), record(stepExec, syscall.ENOENT, 0), 127, `"/nosuch": stat /nosuch: no such file or directory`},
		{plan("x"), record(stepExec, syscall.EACCES, 1), 126, `"/bin/x": permission denied`},
		{plan("x"), record(stepExec, syscall.EISDIR, 0), 126, `"/usr/bin/x": is a directory: permission denied`},
		{plan("x"), record(stepExec, syscall.ENOEXEC, 0), 126, "exec x: exec format error"},
		{plan("x"), record(stepChdir, syscall.EACCES, 0), 125, "entering working directory /w: permission denied"},
		{plan("x"), record(stepSetuid, syscall.EINVAL, 0), 125, "switching to user 1000: invalid argument (is it mapped in the user namespace?)"},
		{plan("x"), record(stepSeccomp, syscall.EINVAL, 0), 125, "loading seccomp filter: invalid argument"},
		{plan("x"), append(record(stepProcNote, syscall.EPERM, 0), record(stepPivotRoot, syscall.EINVAL, 0)...), 125, "pivot_root (/r): invalid argument"},
		{plan("x"), record(stepProcNote, syscall.EPERM, 0), 0, ""},
		{plan("x"), nil, 0, ""},
	} {
		var notes []string
		code, err := tc.plan.Failure(tc.raw, func(f string, a ...any) { notes = append(notes, f) })
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if code != tc.code || msg != tc.msg {
			t.Errorf("%x: code %d, %q; want %d, %q", tc.raw, code, msg, tc.code, tc.msg)
		}
		if wantNote := len(tc.raw) >= 12 && binary.NativeEndian.Uint32(tc.raw) == stepProcNote; wantNote != (len(notes) == 1 && strings.Contains(notes[0], "/proc")) {
			t.Errorf("%x: notes %q", tc.raw, notes)
		}
	}
}
