package runtime

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	stdruntime "runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/tugcli/tug/runtime/initproc"
)

// bpfCheck asserts what the kernel's checker would: every jump lands
// inside the program and the last instruction returns.
func bpfCheck(t *testing.T, prog []unix.SockFilter) {
	t.Helper()
	if len(prog) == 0 || len(prog) > bpfMaxInsns {
		t.Fatalf("program has %d instructions", len(prog))
	}
	if last := prog[len(prog)-1]; last.Code != unix.BPF_RET|unix.BPF_K {
		t.Fatalf("last instruction %+v is not RET", last)
	}
	for pc, in := range prog {
		switch {
		case in.Code == unix.BPF_JMP|unix.BPF_JA:
			if pc+1+int(in.K) >= len(prog) {
				t.Fatalf("JA at %d jumps past the end", pc)
			}
		case in.Code&0x07 == unix.BPF_JMP:
			if pc+1+int(max(in.Jt, in.Jf)) >= len(prog) {
				t.Fatalf("jump at %d (%+v) lands past the end", pc, in)
			}
		}
	}
}

// bpfRun is a classic BPF interpreter for the instructions seccomp
// programs use, run on a struct seccomp_data.
func bpfRun(t *testing.T, prog []unix.SockFilter, data []byte) uint32 {
	t.Helper()
	var a, x uint32
	var mem [16]uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if in.K%4 != 0 || int(in.K)+4 > len(data) {
				t.Fatalf("pc %d: load at %d", pc, in.K)
			}
			a = binary.LittleEndian.Uint32(data[in.K:])
		case unix.BPF_LD | unix.BPF_MEM:
			a = mem[in.K]
		case unix.BPF_LDX | unix.BPF_MEM:
			x = mem[in.K]
		case unix.BPF_ST:
			mem[in.K] = a
		case unix.BPF_STX:
			mem[in.K] = x
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			a &= in.K
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			var ok bool
			switch in.Code & 0xf0 {
			case unix.BPF_JEQ:
				ok = a == in.K
			case unix.BPF_JGT:
				ok = a > in.K
			case unix.BPF_JGE:
				ok = a >= in.K
			case unix.BPF_JSET:
				ok = a&in.K != 0
			}
			if ok {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return in.K
		default:
			t.Fatalf("pc %d: unexpected instruction %+v", pc, in)
		}
	}
	t.Fatal("the program ran off its end")
	return 0
}

// seccompData builds a struct seccomp_data (little-endian).
func seccompData(nr, arch uint32, args ...uint64) []byte {
	b := make([]byte, 64)
	binary.LittleEndian.PutUint32(b[0:], nr)
	binary.LittleEndian.PutUint32(b[4:], arch)
	for i, v := range args {
		binary.LittleEndian.PutUint64(b[16+8*i:], v)
	}
	return b
}

// seccompCall runs prog for syscall name of arch with args.
func seccompCall(t *testing.T, prog []unix.SockFilter, arch, name string, args ...uint64) uint32 {
	t.Helper()
	sa, err := seccompArchFor(arch)
	if err != nil {
		t.Fatal(err)
	}
	nr, ok := sa.syscalls[name]
	if !ok {
		t.Fatalf("no syscall %q on %s", name, arch)
	}
	return bpfRun(t, prog, seccompData(nr, sa.audit, args...))
}

const (
	retAllow  = unix.SECCOMP_RET_ALLOW
	retEPERM  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retENOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	retKill   = unix.SECCOMP_RET_KILL_PROCESS
)

func compileDefault(t *testing.T, caps []string, arch string) []unix.SockFilter {
	t.Helper()
	prog, err := CompileSeccomp(seccomp.DefaultProfile(), caps, arch)
	if err != nil {
		t.Fatal(err)
	}
	bpfCheck(t, prog)
	return prog
}

func TestSeccompDefaultProfileSize(t *testing.T) {
	all := initproc.AllCapabilities()
	for _, arch := range []string{"amd64", "arm64"} {
		for name, caps := range map[string][]string{"default caps": DefaultCapabilities, "all caps": all} {
			prog := compileDefault(t, caps, arch)
			t.Logf("%s, %s: %d instructions", arch, name, len(prog))
		}
	}
}

func TestSeccompDefaultProfileAMD64(t *testing.T) {
	prog := compileDefault(t, DefaultCapabilities, "amd64")
	tests := []struct {
		name string
		args []uint64
		want uint32
	}{
		{"read", nil, retAllow},
		{"write", nil, retAllow},
		{"execve", nil, retAllow},
		{"futex", nil, retAllow},
		{"arch_prctl", nil, retAllow},
		{"chroot", nil, retAllow}, // CAP_SYS_CHROOT is a default
		{"mount", nil, retEPERM},
		{"umount2", nil, retEPERM},
		{"unshare", nil, retEPERM},
		{"setns", nil, retEPERM},
		{"reboot", nil, retEPERM},
		{"kexec_load", nil, retEPERM},
		{"init_module", nil, retEPERM},
		{"bpf", nil, retEPERM},
		{"ptrace", nil, retAllow}, // kernel >= 4.8
		{"open_by_handle_at", nil, retEPERM},
		{"clone3", nil, retENOSYS},
		{"clone", []uint64{uint64(unix.SIGCHLD)}, retAllow},
		{"clone", []uint64{unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD | unix.CLONE_SYSVSEM | unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID}, retAllow},
		{"clone", []uint64{unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)}, retEPERM},
		{"clone", []uint64{unix.CLONE_NEWNS}, retEPERM},
		{"clone", []uint64{unix.CLONE_NEWCGROUP}, retEPERM},
		{"clone", []uint64{1 << 40}, retAllow}, // high bits are not namespace flags
		{"personality", []uint64{0}, retAllow},
		{"personality", []uint64{0x0008}, retAllow},
		{"personality", []uint64{0x20000}, retAllow},
		{"personality", []uint64{0x20008}, retAllow},
		{"personality", []uint64{0xffffffff}, retAllow},
		{"personality", []uint64{0x0040000}, retEPERM}, // ADDR_NO_RANDOMIZE
		{"personality", []uint64{1 << 32}, retEPERM},   // 64-bit compare
		{"personality", []uint64{0xffffffff_ffffffff}, retEPERM},
		{"socket", []uint64{unix.AF_UNIX}, retAllow},
		{"socket", []uint64{unix.AF_INET}, retAllow},
		{"socket", []uint64{unix.AF_INET6}, retAllow},
		{"socket", []uint64{unix.AF_NETLINK}, retAllow},
		{"socket", []uint64{unix.AF_PACKET}, retAllow},
		{"socket", []uint64{unix.AF_XDP}, retAllow},
		{"socket", []uint64{unix.AF_ALG}, retEPERM},
		{"socket", []uint64{unix.AF_VSOCK}, retEPERM},
		{"socket", []uint64{unix.AF_DECnet}, retEPERM},
		{"socket", []uint64{unix.AF_INET | 1<<32}, retEPERM},
	}
	for _, tt := range tests {
		if got := seccompCall(t, prog, "amd64", tt.name, tt.args...); got != tt.want {
			t.Errorf("%s(%#x) = %#x, want %#x", tt.name, tt.args, got, tt.want)
		}
	}

	// Another ABI, x32, and numbers beyond the profile.
	if got := bpfRun(t, prog, seccompData(0, unix.AUDIT_ARCH_I386)); got != retKill {
		t.Errorf("i386 syscall = %#x, want kill", got)
	}
	if got := bpfRun(t, prog, seccompData(0, unix.AUDIT_ARCH_AARCH64)); got != retKill {
		t.Errorf("aarch64 syscall = %#x, want kill", got)
	}
	if got := bpfRun(t, prog, seccompData(x32SyscallBit|0, unix.AUDIT_ARCH_X86_64)); got != retKill {
		t.Errorf("x32 read = %#x, want kill", got)
	}
	if got := bpfRun(t, prog, seccompData(1000, unix.AUDIT_ARCH_X86_64)); got != retENOSYS {
		t.Errorf("syscall 1000 = %#x, want ENOSYS", got)
	}
	if got := bpfRun(t, prog, seccompData(400, unix.AUDIT_ARCH_X86_64)); got != retEPERM {
		t.Errorf("unassigned syscall 400 = %#x, want EPERM", got)
	}
}

func TestSeccompDefaultProfileCapabilities(t *testing.T) {
	caps := append([]string{"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_MODULE"}, DefaultCapabilities...)
	prog := compileDefault(t, caps, "amd64")
	tests := []struct {
		name string
		args []uint64
		want uint32
	}{
		{"mount", nil, retAllow},
		{"unshare", nil, retAllow},
		{"clone", []uint64{unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)}, retAllow},
		{"clone3", nil, retAllow},
		{"reboot", nil, retAllow},
		{"init_module", nil, retAllow},
		{"kexec_load", nil, retEPERM}, // no capability allows it
		{"open_by_handle_at", nil, retEPERM},
		{"personality", []uint64{0x0040000}, retEPERM},
	}
	for _, tt := range tests {
		if got := seccompCall(t, prog, "amd64", tt.name, tt.args...); got != tt.want {
			t.Errorf("%s(%#x) = %#x, want %#x", tt.name, tt.args, got, tt.want)
		}
	}

	// Without CAP_SYS_CHROOT, chroot is refused.
	noChroot, err := ResolveCapabilities(nil, []string{"sys_chroot"}, false)
	if err != nil {
		t.Fatal(err)
	}
	prog = compileDefault(t, noChroot, "amd64")
	if got := seccompCall(t, prog, "amd64", "chroot"); got != retEPERM {
		t.Errorf("chroot without CAP_SYS_CHROOT = %#x, want EPERM", got)
	}
}

func TestSeccompDefaultProfileARM64(t *testing.T) {
	prog := compileDefault(t, DefaultCapabilities, "arm64")
	tests := []struct {
		name string
		args []uint64
		want uint32
	}{
		{"read", nil, retAllow},
		{"execve", nil, retAllow},
		{"openat", nil, retAllow},
		{"mount", nil, retEPERM},
		{"reboot", nil, retEPERM},
		{"clone", []uint64{unix.CLONE_NEWUSER}, retEPERM},
		{"clone", []uint64{uint64(unix.SIGCHLD)}, retAllow},
		{"personality", []uint64{0x0040000}, retEPERM},
	}
	for _, tt := range tests {
		if got := seccompCall(t, prog, "arm64", tt.name, tt.args...); got != tt.want {
			t.Errorf("%s(%#x) = %#x, want %#x", tt.name, tt.args, got, tt.want)
		}
	}
	if got := bpfRun(t, prog, seccompData(0, unix.AUDIT_ARCH_X86_64)); got != retKill {
		t.Errorf("x86_64 syscall = %#x, want kill", got)
	}
	if got := bpfRun(t, prog, seccompData(x32SyscallBit, unix.AUDIT_ARCH_AARCH64)); got != retENOSYS {
		t.Errorf("syscall 0x40000000 = %#x, want ENOSYS", got)
	}
}

// TestSeccompArgumentOperators checks every comparison on 64-bit values
// whose halves differ, against Go's own comparison.
func TestSeccompArgumentOperators(t *testing.T) {
	values := []uint64{0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff, 1 << 32, 1<<32 + 1, 1<<32 - 1 + 1<<33,
		0x1_80000000, 0xffffffff_00000000, 0xffffffff_fffffffe, 0xffffffff_ffffffff}
	ops := map[specs.LinuxSeccompOperator]func(a, v uint64) bool{
		specs.OpEqualTo:      func(a, v uint64) bool { return a == v },
		specs.OpNotEqual:     func(a, v uint64) bool { return a != v },
		specs.OpLessThan:     func(a, v uint64) bool { return a < v },
		specs.OpLessEqual:    func(a, v uint64) bool { return a <= v },
		specs.OpGreaterThan:  func(a, v uint64) bool { return a > v },
		specs.OpGreaterEqual: func(a, v uint64) bool { return a >= v },
	}
	for op, want := range ops {
		for _, v := range values {
			p := profile(specs.ActErrno, rule([]string{"read"}, specs.ActAllow, arg(2, op, v, 0)))
			prog, err := CompileSeccomp(p, nil, "amd64")
			if err != nil {
				t.Fatal(err)
			}
			bpfCheck(t, prog)
			for _, a := range values {
				got := seccompCall(t, prog, "amd64", "read", 0, 0, a) == retAllow
				if got != want(a, v) {
					t.Errorf("%#x %s %#x: filter says %v", a, op, v, got)
				}
			}
		}
	}
	// MASKED_EQ: (arg & value) == valueTwo.
	for _, m := range []struct{ mask, datum uint64 }{{0xff, 0x12}, {1<<40 | 1, 1 << 40}, {0, 0}, {0xffffffff_ffffffff, 5}} {
		p := profile(specs.ActErrno, rule([]string{"read"}, specs.ActAllow, arg(0, specs.OpMaskedEqual, m.mask, m.datum)))
		prog, err := CompileSeccomp(p, nil, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range append(values, 0x12, 0x1012, 1<<40, 1<<40|1, 5) {
			got := seccompCall(t, prog, "amd64", "read", a) == retAllow
			if got != (a&m.mask == m.datum) {
				t.Errorf("%#x & %#x == %#x: filter says %v", a, m.mask, m.datum, got)
			}
		}
	}
}

func profile(def specs.LinuxSeccompAction, calls ...*seccomp.Syscall) *seccomp.Seccomp {
	return &seccomp.Seccomp{LinuxSeccomp: specs.LinuxSeccomp{DefaultAction: def}, Syscalls: calls}
}

func rule(names []string, act specs.LinuxSeccompAction, args ...specs.LinuxSeccompArg) *seccomp.Syscall {
	return &seccomp.Syscall{LinuxSyscall: specs.LinuxSyscall{Names: names, Action: act, Args: args}}
}

func arg(i uint, op specs.LinuxSeccompOperator, v, v2 uint64) specs.LinuxSeccompArg {
	return specs.LinuxSeccompArg{Index: i, Op: op, Value: v, ValueTwo: v2}
}

func TestSeccompRules(t *testing.T) {
	errno := func(n uint) *uint { return &n }
	t.Run("args AND, repeated index OR", func(t *testing.T) {
		p := profile(specs.ActErrno,
			rule([]string{"read"}, specs.ActAllow, arg(0, specs.OpEqualTo, 1, 0), arg(1, specs.OpEqualTo, 2, 0)),
			rule([]string{"write"}, specs.ActAllow, arg(0, specs.OpEqualTo, 1, 0), arg(0, specs.OpEqualTo, 2, 0)),
		)
		prog, err := CompileSeccomp(p, nil, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			args []uint64
			want uint32
		}{
			{"read", []uint64{1, 2}, retAllow}, {"read", []uint64{1, 3}, retEPERM}, {"read", []uint64{2, 2}, retEPERM},
			{"write", []uint64{1}, retAllow}, {"write", []uint64{2}, retAllow}, {"write", []uint64{3}, retEPERM},
		} {
			if got := seccompCall(t, prog, "amd64", c.name, c.args...); got != c.want {
				t.Errorf("%s(%v) = %#x, want %#x", c.name, c.args, got, c.want)
			}
		}
	})
	t.Run("actions", func(t *testing.T) {
		p := profile(specs.ActAllow,
			&seccomp.Syscall{LinuxSyscall: specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActErrno, ErrnoRet: errno(uint(unix.EACCES))}},
			rule([]string{"write"}, specs.ActKill),
			rule([]string{"openat"}, specs.ActKillProcess),
			rule([]string{"close"}, specs.ActTrap),
			rule([]string{"mount"}, specs.ActLog),
			rule([]string{"ptrace"}, specs.ActTrace),
			rule([]string{"getpid", "no_such_syscall"}, specs.ActAllow), // same as default: skipped
		)
		prog, err := CompileSeccomp(p, nil, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]uint32{
			"read":   unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES),
			"write":  unix.SECCOMP_RET_KILL_THREAD,
			"openat": unix.SECCOMP_RET_KILL_PROCESS,
			"close":  unix.SECCOMP_RET_TRAP,
			"mount":  unix.SECCOMP_RET_LOG,
			"ptrace": unix.SECCOMP_RET_TRACE | uint32(unix.EPERM),
			"getpid": retAllow,
		} {
			if got := seccompCall(t, prog, "amd64", name, 0); got != want {
				t.Errorf("%s = %#x, want %#x", name, got, want)
			}
		}
		// Default allow: no ENOSYS for unknown numbers.
		if got := bpfRun(t, prog, seccompData(1000, unix.AUDIT_ARCH_X86_64)); got != retAllow {
			t.Errorf("syscall 1000 = %#x, want allow", got)
		}
	})
	t.Run("legacy name field and default errno", func(t *testing.T) {
		p := &seccomp.Seccomp{
			LinuxSeccomp: specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: errno(uint(unix.ENOSYS))},
			Syscalls:     []*seccomp.Syscall{{Name: "read", LinuxSyscall: specs.LinuxSyscall{Action: specs.ActAllow}}},
		}
		prog, err := CompileSeccomp(p, nil, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		if got := seccompCall(t, prog, "amd64", "read"); got != retAllow {
			t.Errorf("read = %#x", got)
		}
		if got := seccompCall(t, prog, "amd64", "write"); got != retENOSYS {
			t.Errorf("write = %#x, want ENOSYS", got)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, c := range []struct {
			p    *seccomp.Seccomp
			arch string
			err  string
		}{
			{profile(specs.ActErrno, rule([]string{"read"}, specs.ActAllow), rule([]string{"read"}, specs.ActKill)), "amd64", `syscall "read" has two rules without args and different actions`},
			{profile(specs.ActErrno, rule([]string{"read"}, specs.ActNotify)), "amd64", "SCMP_ACT_NOTIFY is not supported"},
			{profile("SCMP_ACT_BOGUS"), "amd64", `unknown action "SCMP_ACT_BOGUS"`},
			{profile(specs.ActErrno, rule([]string{"read"}, specs.ActAllow, arg(6, specs.OpEqualTo, 0, 0))), "amd64", "argument index 6 is out of range"},
			{profile(specs.ActErrno, rule([]string{"read"}, specs.ActAllow, arg(0, "SCMP_CMP_XX", 0, 0))), "amd64", `unknown argument operator "SCMP_CMP_XX"`},
			{profile(specs.ActErrno), "riscv64", `architecture "riscv64" is not supported`},
		} {
			_, err := CompileSeccomp(c.p, nil, c.arch)
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("err = %v, want %q", err, c.err)
			}
		}
	})
}

// TestSeccompLongJumps makes a syscall block longer than an 8-bit jump can
// skip, so that the assembler has to route jumps through JA.
func TestSeccompLongJumps(t *testing.T) {
	var args []specs.LinuxSeccompArg
	for i := range 120 {
		args = append(args, arg(0, specs.OpEqualTo, uint64(i)*3, 0)) // repeated index: ORed
	}
	p := profile(specs.ActErrno,
		rule([]string{"read"}, specs.ActAllow, args...),
		rule([]string{"write"}, specs.ActAllow),
		rule([]string{"personality"}, specs.ActAllow, args...),
	)
	prog, err := CompileSeccomp(p, nil, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	bpfCheck(t, prog)
	jas := 0
	for _, in := range prog {
		if in.Code == unix.BPF_JMP|unix.BPF_JA {
			jas++
		}
	}
	if jas == 0 {
		t.Errorf("%d instructions and no JA: the test does not exercise long jumps", len(prog))
	}
	for _, name := range []string{"read", "personality"} {
		for v := range uint64(400) {
			want := retEPERM
			if v%3 == 0 && v < 360 {
				want = retAllow
			}
			if got := seccompCall(t, prog, "amd64", name, v); got != want {
				t.Fatalf("%s(%d) = %#x, want %#x", name, v, got, want)
			}
		}
	}
	if got := seccompCall(t, prog, "amd64", "write"); got != retAllow {
		t.Errorf("write = %#x", got)
	}
	if got := bpfRun(t, prog, seccompData(0, unix.AUDIT_ARCH_I386)); got != retKill {
		t.Errorf("i386 = %#x, want kill", got)
	}
	if got := bpfRun(t, prog, seccompData(x32SyscallBit, unix.AUDIT_ARCH_X86_64)); got != retKill {
		t.Errorf("x32 = %#x, want kill", got)
	}
}

// TestSeccompKernelAcceptsPrograms has the kernel check programs without
// installing them: a socket filter goes through the same classic BPF
// checker (jump ranges, a final RET) as a seccomp filter.
func TestSeccompKernelAcceptsPrograms(t *testing.T) {
	var long []specs.LinuxSeccompArg
	for i := range 120 {
		long = append(long, arg(0, specs.OpEqualTo, uint64(i), 0))
	}
	longProg, err := CompileSeccomp(profile(specs.ActErrno, rule([]string{"read"}, specs.ActAllow, long...)), nil, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	programs := map[string][]unix.SockFilter{
		"amd64 all caps": compileDefault(t, initproc.AllCapabilities(), "amd64"),
		"arm64 default":  compileDefault(t, DefaultCapabilities, "arm64"),
		"long jumps":     longProg,
	}
	for name, prog := range programs {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Skip(err)
		}
		fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
			t.Errorf("%s: the kernel rejects the program: %v", name, err)
		}
		unix.Close(fd)
	}
}

func TestLoadSeccompProfile(t *testing.T) {
	b, err := json.Marshal(seccomp.DefaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := LoadSeccompProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := CompileSeccomp(p, DefaultCapabilities, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	builtin := compileDefault(t, DefaultCapabilities, "amd64")
	if len(fromFile) != len(builtin) {
		t.Fatalf("from JSON: %d instructions, built in: %d", len(fromFile), len(builtin))
	}
	for i := range builtin {
		if fromFile[i] != builtin[i] {
			t.Fatalf("instruction %d differs: %+v vs %+v", i, fromFile[i], builtin[i])
		}
	}

	for body, want := range map[string]string{
		`{"syscalls": [}`: "decoding seccomp profile",
		`{}`:              "has no defaultAction",
		`{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}`: `both "architectures" and "archMap"`,
	} {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadSeccompProfile(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", body, err, want)
		}
	}
}

// seccompHelperEnv names the directory TestSeccompHelperProcess tries to
// mount on in the re-executed test binary.
const seccompHelperEnv = "TUG_TEST_SECCOMP_HELPER"

// TestSeccompHelperProcess is not a test: TestLoadSeccomp runs it in a child
// process, because a seccomp filter cannot be removed.
func TestSeccompHelperProcess(t *testing.T) {
	dir := os.Getenv(seccompHelperEnv)
	if dir == "" {
		t.Skip("helper process for TestLoadSeccomp")
	}
	stdruntime.LockOSThread()
	fail := func(format string, args ...any) {
		fmt.Printf(format+"\n", args...)
		os.Exit(1)
	}
	filter, err := CompileSeccomp(DefaultSeccompProfile(), DefaultCapabilities, stdruntime.GOARCH)
	if err != nil {
		fail("%v", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fail("no_new_privs: %v", err)
	}
	if err := initproc.LoadSeccomp(filter); err != nil {
		fail("%v", err)
	}
	if err := unix.Mount("none", dir, "tmpfs", 0, ""); !errors.Is(err, unix.EPERM) {
		fail("mount: %v, want EPERM", err)
	}
	// Allowed to anyone by the kernel, refused by the profile.
	if _, _, errno := unix.Syscall(unix.SYS_PERSONALITY, 0x0040000, 0, 0); errno != unix.EPERM {
		fail("personality(ADDR_NO_RANDOMIZE): %v, want EPERM", errno)
	}
	if _, _, errno := unix.Syscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0); errno != 0 {
		fail("personality(0xffffffff): %v", errno)
	}
	fmt.Printf("pid %d\n", unix.Getpid())
	os.Exit(0)
}

func TestLoadSeccomp(t *testing.T) {
	if _, err := seccompArchFor(stdruntime.GOARCH); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSeccompHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), seccompHelperEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if want := "pid " + strconv.Itoa(cmd.Process.Pid) + "\n"; string(out) != want {
		t.Errorf("helper said %q, want %q", out, want)
	}
}

// Syscall numbers tested as ranges give every syscall the action each
// number tested on its own gives it: the two programs agree on every
// number (and beyond the highest), on both architectures, with Docker's
// capabilities and all of them, for arguments that the profile's rules
// look at and others.
func TestSeccompRangesAgree(t *testing.T) {
	compile := func(caps []string, arch string, ranges bool) []unix.SockFilter {
		t.Helper()
		seccompNoRanges = !ranges
		defer func() { seccompNoRanges = false }()
		return compileDefault(t, caps, arch)
	}
	argSets := [][]uint64{
		nil,
		{^uint64(0), ^uint64(0), ^uint64(0)},
		{0x8, 0, 0}, {0x20008, 0, 0}, {0xffffffff, 0, 0}, // personality
		{unix.CLONE_NEWUSER, 0, 0}, {unix.CLONE_NEWNS | unix.CLONE_NEWPID, 0, 0}, // clone
		{unix.AF_NETLINK, 0, unix.NETLINK_AUDIT}, {unix.AF_INET, unix.SOCK_RAW, 0}, // socket
		{0, 0, 0x7fffffff}, {1 << 32, 5, 3},
	}
	for _, arch := range []string{"amd64", "arm64"} {
		sa, err := seccompArchFor(arch)
		if err != nil {
			t.Fatal(err)
		}
		for name, caps := range map[string][]string{"default caps": DefaultCapabilities, "all caps": initproc.AllCapabilities()} {
			ranged, single := compile(caps, arch, true), compile(caps, arch, false)
			if len(ranged) >= len(single) {
				t.Errorf("%s, %s: %d instructions with ranges, %d without", arch, name, len(ranged), len(single))
			}
			for nr := uint32(0); nr < 1100; nr++ {
				for _, args := range argSets {
					d := seccompData(nr, sa.audit, args...)
					if a, b := bpfRun(t, ranged, d), bpfRun(t, single, d); a != b {
						t.Fatalf("%s, %s: syscall %d with args %x: %#x with ranges, %#x without", arch, name, nr, args, a, b)
					}
				}
			}
		}
	}
}
