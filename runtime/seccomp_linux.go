package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/tugcli/tug/runtime/initproc"
)

// This file turns a Docker seccomp profile into a classic BPF program in
// pure Go (libseccomp needs cgo) and loads it on the calling thread. The
// program follows what runc builds with libseccomp for a Docker profile:
//
//   - A syscall from another architecture than the one compiled for (a 32-bit
//     int 0x80 call on amd64, AArch32 on arm64) kills the process
//     (SECCOMP_RET_KILL_PROCESS); so does an x32 syscall (nr >= 0x40000000)
//     on amd64. Docker's profile also allows
//     the x86/x32 (arm) sub-architectures; only the native one is compiled.
//   - When the default action refuses, syscall numbers above the highest
//     one the profile names get ENOSYS instead (runc's patchbpf), so that a
//     libc trying a syscall newer than the profile falls back to an older one.
//   - A rule whose action is the default action is skipped (runc); args with
//     a repeated index make one rule per arg, ORed (runc); for one syscall,
//     rules with args are tried in profile order before its rule without
//     args, and two rules without args but different actions are an error
//     (libseccomp's EEXIST).
//   - includes/excludes by caps and arches are applied; minKernel conditions
//     are taken as met (every minKernel in Docker's profile is <= 4.8).
//   - Names the architecture's table lacks are skipped, as libseccomp does.
//   - The profile's "flags", "listenerPath" and "architectures"/"archMap"
//     are not used.
//
// Actions: SCMP_ACT_ALLOW, SCMP_ACT_ERRNO (errnoRet, EPERM when unset),
// SCMP_ACT_KILL and SCMP_ACT_KILL_THREAD (kill the thread), SCMP_ACT_KILL_PROCESS,
// SCMP_ACT_TRAP (SIGSYS), SCMP_ACT_LOG (allow and log) and SCMP_ACT_TRACE,
// which hands the syscall to a ptrace tracer with errnoRet (EPERM when
// unset) as the event message, and fails it with ENOSYS when no tracer is
// attached (the kernel's behaviour). SCMP_ACT_NOTIFY needs a listener and is
// refused.

// seccomp_data offsets (linux/seccomp.h). Both supported architectures are
// little-endian: an argument's low word comes first.
const (
	seccompDataNr   = 0
	seccompDataArch = 4
	seccompDataArgs = 16

	// bpfMaxInsns is the kernel's limit on a filter's length (BPF_MAXINSNS).
	bpfMaxInsns = initproc.BPFMaxInsns
	// x32SyscallBit marks x32 ABI syscalls on x86_64 (__X32_SYSCALL_BIT).
	x32SyscallBit = 0x40000000
)

// DefaultSeccompProfile returns Docker's default seccomp profile.
func DefaultSeccompProfile() *seccomp.Seccomp {
	return seccomp.DefaultProfile()
}

// LoadSeccompProfile reads a seccomp profile in Docker's JSON format, as
// given to --security-opt seccomp=FILE.
func LoadSeccompProfile(path string) (*seccomp.Seccomp, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading seccomp profile: %w", err)
	}
	var p seccomp.Seccomp
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decoding seccomp profile %s: %w (it must be in Docker's JSON format)", path, err)
	}
	if p.DefaultAction == "" {
		return nil, fmt.Errorf("seccomp profile %s has no defaultAction (use --security-opt seccomp=unconfined to run without seccomp)", path)
	}
	if len(p.Architectures) != 0 && len(p.ArchMap) != 0 {
		return nil, fmt.Errorf("seccomp profile %s has both \"architectures\" and \"archMap\": use one", path)
	}
	return &p, nil
}

// seccompArch is what the compiler needs to know of an architecture.
type seccompArch struct {
	name     string // libseccomp's name, which profiles' "arches" use
	audit    uint32 // AUDIT_ARCH_* in seccomp_data.arch
	x32      bool   // block the x32 ABI's syscall numbers
	syscalls map[string]uint32
}

func seccompArchFor(goarch string) (seccompArch, error) {
	switch goarch {
	case "amd64":
		return seccompArch{name: "amd64", audit: unix.AUDIT_ARCH_X86_64, x32: true, syscalls: seccompSyscallsAMD64()}, nil
	case "arm64":
		return seccompArch{name: "arm64", audit: unix.AUDIT_ARCH_AARCH64, syscalls: seccompSyscallsARM64()}, nil
	}
	return seccompArch{}, fmt.Errorf("compiling seccomp profile: architecture %q is not supported (only amd64 and arm64)", goarch)
}

// seccompAction turns a profile action into a SECCOMP_RET_* value.
func seccompAction(act specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	data := func(def uint) (uint32, error) {
		n := def
		if errnoRet != nil {
			n = *errnoRet
		}
		if n > unix.SECCOMP_RET_DATA {
			return 0, fmt.Errorf("errnoRet %d is out of range", n)
		}
		return uint32(n), nil
	}
	switch act {
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActErrno:
		n, err := data(uint(unix.EPERM))
		return unix.SECCOMP_RET_ERRNO | n, err
	case specs.ActTrap:
		n, err := data(0)
		return unix.SECCOMP_RET_TRAP | n, err
	case specs.ActTrace:
		n, err := data(uint(unix.EPERM))
		return unix.SECCOMP_RET_TRACE | n, err
	case specs.ActNotify:
		return 0, errors.New("action SCMP_ACT_NOTIFY is not supported (it needs a seccomp listener)")
	case "":
		return 0, errors.New("no action")
	}
	return 0, fmt.Errorf("unknown action %q", act)
}

// seccompRuleApplies evaluates a rule's includes and excludes for the
// container's capabilities and the architecture (libseccomp's name).
func seccompRuleApplies(call *seccomp.Syscall, caps map[string]bool, arch string) bool {
	if ex := call.Excludes; ex != nil {
		if slices.Contains(ex.Arches, arch) {
			return false
		}
		for _, c := range ex.Caps {
			if caps[strings.ToUpper(c)] {
				return false
			}
		}
		if ex.MinKernel != nil {
			return false // the kernel is taken to be at least MinKernel
		}
	}
	if in := call.Includes; in != nil {
		if len(in.Arches) > 0 && !slices.Contains(in.Arches, arch) {
			return false
		}
		for _, c := range in.Caps {
			if !caps[strings.ToUpper(c)] {
				return false
			}
		}
	}
	return true
}

// seccompConditionSets splits a rule's args into the sets of conditions that
// are each ANDed, the sets being ORed: one set of all args, or one set per
// arg when an index repeats (runc, opencontainers/runc#2735).
func seccompConditionSets(args []specs.LinuxSeccompArg) ([][]specs.LinuxSeccompArg, error) {
	var count [6]int
	repeated := false
	for _, a := range args {
		if a.Index >= uint(len(count)) {
			return nil, fmt.Errorf("argument index %d is out of range (0 to 5)", a.Index)
		}
		switch a.Op {
		case specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
			specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual:
		default:
			return nil, fmt.Errorf("unknown argument operator %q", a.Op)
		}
		count[a.Index]++
		repeated = repeated || count[a.Index] > 1
	}
	if !repeated {
		return [][]specs.LinuxSeccompArg{args}, nil
	}
	sets := make([][]specs.LinuxSeccompArg, len(args))
	for i := range args {
		sets[i] = args[i : i+1]
	}
	return sets, nil
}

// seccompRule is one conditional rule of a syscall.
type seccompRule struct {
	conds []specs.LinuxSeccompArg
	ret   uint32
}

// seccompSyscall is everything the profile says about one syscall number.
type seccompSyscall struct {
	nr        uint32
	name      string
	rules     []seccompRule // with args, tried in order
	hasUncond bool
	uncond    uint32
}

// CompileSeccomp compiles profile p into a classic BPF program for arch
// (GOARCH: "amd64" or "arm64") and a container with capabilities caps
// (canonical names, as ResolveCapabilities returns), which select the
// profile's rules with includes/excludes. See the comment at the top of this
// file for how libseccomp's and runc's behaviour is followed.
func CompileSeccomp(p *seccomp.Seccomp, caps []string, arch string) ([]unix.SockFilter, error) {
	if p == nil {
		return nil, errors.New("compiling seccomp profile: no profile")
	}
	sa, err := seccompArchFor(arch)
	if err != nil {
		return nil, err
	}
	defRet, err := seccompAction(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("compiling seccomp profile: defaultAction: %w", err)
	}
	have := make(map[string]bool, len(caps))
	for _, c := range caps {
		c = strings.ToUpper(c)
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		have[c] = true
	}

	calls := map[uint32]*seccompSyscall{}
	var maxNr uint32
	for i, call := range p.Syscalls {
		if call == nil {
			continue
		}
		names := call.Names
		if call.Name != "" {
			if len(names) != 0 {
				return nil, fmt.Errorf("compiling seccomp profile: syscalls[%d] has both \"name\" and \"names\": use \"names\"", i)
			}
			names = []string{call.Name}
		}
		for _, n := range names {
			if nr, ok := sa.syscalls[n]; ok {
				maxNr = max(maxNr, nr)
			}
		}
		if !seccompRuleApplies(call, have, sa.name) {
			continue
		}
		ret, err := seccompAction(call.Action, call.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("compiling seccomp profile: syscalls[%d] (%s): %w", i, strings.Join(names, ", "), err)
		}
		if ret == defRet {
			continue // the default action does the same
		}
		sets, err := seccompConditionSets(call.Args)
		if err != nil {
			return nil, fmt.Errorf("compiling seccomp profile: syscalls[%d] (%s): %w", i, strings.Join(names, ", "), err)
		}
		for _, n := range names {
			nr, ok := sa.syscalls[n]
			if !ok {
				continue // not a syscall of this architecture
			}
			s := calls[nr]
			if s == nil {
				s = &seccompSyscall{nr: nr, name: n}
				calls[nr] = s
			}
			if len(call.Args) == 0 {
				if s.hasUncond && s.uncond != ret {
					return nil, fmt.Errorf("compiling seccomp profile: syscall %q has two rules without args and different actions (syscalls[%d])", n, i)
				}
				s.hasUncond, s.uncond = true, ret
				continue
			}
			for _, set := range sets {
				s.rules = append(s.rules, seccompRule{conds: set, ret: ret})
			}
		}
	}
	sorted := make([]*seccompSyscall, 0, len(calls))
	for _, s := range calls {
		if s.hasUncond {
			// A rule with args and the same action as the rule without
			// adds nothing.
			s.rules = slices.DeleteFunc(s.rules, func(r seccompRule) bool { return r.ret == s.uncond })
		}
		sorted = append(sorted, s)
	}
	slices.SortFunc(sorted, func(a, b *seccompSyscall) int { return int(a.nr) - int(b.nr) })

	var prog bpfProgram
	const (
		ld  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		ret = unix.BPF_RET | unix.BPF_K
		jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jgt = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
		jge = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	)
	// The architecture check: seccomp_data.nr means nothing for another ABI.
	archOK := prog.newLabel()
	prog.stmt(ld, seccompDataArch)
	prog.jump(jeq, sa.audit, archOK, bpfNext)
	prog.stmt(ret, unix.SECCOMP_RET_KILL_PROCESS)
	prog.mark(archOK)
	prog.stmt(ld, seccompDataNr)
	if sa.x32 {
		notX32 := prog.newLabel()
		prog.jump(jge, x32SyscallBit, bpfNext, notX32)
		prog.stmt(ret, unix.SECCOMP_RET_KILL_PROCESS)
		prog.mark(notX32)
	}
	enosys := unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	if defRet&unix.SECCOMP_RET_ACTION_FULL != unix.SECCOMP_RET_ALLOW &&
		defRet&unix.SECCOMP_RET_ACTION_FULL != unix.SECCOMP_RET_LOG && defRet != enosys && maxNr > 0 {
		known := prog.newLabel()
		prog.jump(jgt, maxNr, bpfNext, known)
		prog.stmt(ret, enosys)
		prog.mark(known)
	}

	// Syscalls with a single action, grouped by action: a run of JEQs that
	// all jump to one RET, short enough for 8-bit jump offsets.
	const run = 200
	byAction := map[uint32][]uint32{}
	var actions []uint32
	for _, s := range sorted {
		if len(s.rules) > 0 {
			continue
		}
		if _, ok := byAction[s.uncond]; !ok {
			actions = append(actions, s.uncond)
		}
		byAction[s.uncond] = append(byAction[s.uncond], s.nr)
	}
	slices.SortFunc(actions, func(a, b uint32) int { // ALLOW first: the most common
		if (a == unix.SECCOMP_RET_ALLOW) != (b == unix.SECCOMP_RET_ALLOW) {
			if a == unix.SECCOMP_RET_ALLOW {
				return -1
			}
			return 1
		}
		return int(int64(a) - int64(b))
	})
	for _, act := range actions {
		// Consecutive numbers are tested as one range: Docker's profile
		// allows long runs of them, and the kernel runs the program for
		// every syscall number when it loads it (its action cache) and
		// then for each syscall the cache does not answer. Docker's
		// profile on amd64: 257 instructions instead of 508, loaded in
		// 0.13 ms instead of 0.35 (a process loading it, 20 times).
		for chunk := range slices.Chunk(seccompRanges(byAction[act]), run) {
			target := prog.newLabel()
			for i, r := range chunk {
				last := i == len(chunk)-1
				after := target
				if last {
					after = prog.newLabel()
				}
				switch {
				case r[0] == r[1] && !last:
					prog.jump(jeq, r[0], target, bpfNext)
				case r[0] == r[1]:
					prog.jump(jeq, r[0], bpfNext, after)
				default:
					out := prog.newLabel()
					if last {
						out = after
					}
					prog.jump(jge, r[0], bpfNext, out)
					if last {
						prog.jump(jgt, r[1], out, bpfNext)
					} else {
						prog.jump(jgt, r[1], out, target)
						prog.mark(out)
					}
				}
				if last {
					prog.mark(target)
					prog.stmt(ret, act)
					prog.mark(after)
				}
			}
		}
	}
	// Syscalls with argument rules: each a block that ends in RET, so the
	// accumulator holds nr again whenever the next JEQ is reached.
	for _, s := range sorted {
		if len(s.rules) == 0 {
			continue
		}
		next := prog.newLabel()
		prog.jump(jeq, s.nr, bpfNext, next)
		for _, r := range s.rules {
			fail := prog.newLabel()
			for _, c := range r.conds {
				prog.condition(c, fail)
			}
			prog.stmt(ret, r.ret)
			prog.mark(fail)
		}
		last := defRet
		if s.hasUncond {
			last = s.uncond
		}
		prog.stmt(ret, last)
		prog.mark(next)
	}
	prog.stmt(ret, defRet)
	filter, err := prog.assemble()
	if err != nil {
		return nil, fmt.Errorf("compiling seccomp profile: %w", err)
	}
	if len(filter) > bpfMaxInsns {
		return nil, fmt.Errorf("compiling seccomp profile: the program has %d instructions, more than the kernel's %d", len(filter), bpfMaxInsns)
	}
	return filter, nil
}

// seccompRanges groups sorted syscall numbers into runs of consecutive
// ones, each as its first and last number; seccompNoRanges (for tests)
// makes each number its own.
func seccompRanges(nrs []uint32) [][2]uint32 {
	var out [][2]uint32
	for _, nr := range nrs {
		if n := len(out); n > 0 && out[n-1][1]+1 == nr && !seccompNoRanges {
			out[n-1][1] = nr
			continue
		}
		out = append(out, [2]uint32{nr, nr})
	}
	return out
}

// seccompNoRanges has the compiler test each number on its own, as it
// did before ranges: the tests compare the two programs.
var seccompNoRanges = false

// bpfNext as a jump target means the next instruction (offset 0).
const bpfNext = -1

// bpfProgram assembles classic BPF with symbolic forward jump targets.
// Conditional jumps have 8-bit offsets; assemble routes a jump whose target
// is further than 255 instructions through a JA (32-bit offset) placed right
// after it.
type bpfProgram struct {
	insns  []bpfInsn
	labels []int // instruction index of each label, -1 until marked
}

type bpfInsn struct {
	code   uint16
	k      uint32
	jt, jf int // labels of a conditional jump
	to     int // label of a JA
}

func (p *bpfProgram) newLabel() int {
	p.labels = append(p.labels, -1)
	return len(p.labels) - 1
}

// mark places label l at the next instruction emitted.
func (p *bpfProgram) mark(l int) { p.labels[l] = len(p.insns) }

func (p *bpfProgram) stmt(code uint16, k uint32) {
	p.insns = append(p.insns, bpfInsn{code: code, k: k, jt: bpfNext, jf: bpfNext, to: bpfNext})
}

func (p *bpfProgram) jump(code uint16, k uint32, jt, jf int) {
	p.insns = append(p.insns, bpfInsn{code: code, k: k, jt: jt, jf: jf, to: bpfNext})
}

// condition emits the 64-bit comparison a, compared as two 32-bit halves,
// falling through when it holds and jumping to fail when not.
func (p *bpfProgram) condition(a specs.LinuxSeccompArg, fail int) {
	const (
		ld  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		and = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
		jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jgt = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
		jge = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	)
	lo := uint32(seccompDataArgs + 8*a.Index)
	hi := lo + 4
	vlo, vhi := uint32(a.Value), uint32(a.Value>>32)
	ok := p.newLabel()
	switch a.Op {
	case specs.OpEqualTo:
		p.stmt(ld, hi)
		p.jump(jeq, vhi, bpfNext, fail)
		p.stmt(ld, lo)
		p.jump(jeq, vlo, bpfNext, fail)
	case specs.OpNotEqual:
		p.stmt(ld, hi)
		p.jump(jeq, vhi, bpfNext, ok)
		p.stmt(ld, lo)
		p.jump(jeq, vlo, fail, bpfNext)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		p.stmt(ld, hi)
		p.jump(jgt, vhi, ok, bpfNext)
		p.jump(jeq, vhi, bpfNext, fail)
		p.stmt(ld, lo)
		if a.Op == specs.OpGreaterThan {
			p.jump(jgt, vlo, bpfNext, fail)
		} else {
			p.jump(jge, vlo, bpfNext, fail)
		}
	case specs.OpLessThan, specs.OpLessEqual:
		p.stmt(ld, hi)
		p.jump(jgt, vhi, fail, bpfNext)
		p.jump(jeq, vhi, bpfNext, ok)
		p.stmt(ld, lo)
		if a.Op == specs.OpLessThan {
			p.jump(jge, vlo, fail, bpfNext)
		} else {
			p.jump(jgt, vlo, fail, bpfNext)
		}
	case specs.OpMaskedEqual: // (arg & Value) == ValueTwo
		dlo, dhi := uint32(a.ValueTwo), uint32(a.ValueTwo>>32)
		p.stmt(ld, hi)
		p.stmt(and, vhi)
		p.jump(jeq, dhi, bpfNext, fail)
		p.stmt(ld, lo)
		p.stmt(and, vlo)
		p.jump(jeq, dlo, bpfNext, fail)
	}
	p.mark(ok)
}

func bpfIsConditional(code uint16) bool {
	return code&0x07 == unix.BPF_JMP && code&0xf0 != unix.BPF_JA
}

// offset is the jump offset from instruction i to label l.
func (p *bpfProgram) offset(i, l int) int {
	if l == bpfNext {
		return 0
	}
	return p.labels[l] - (i + 1)
}

// trampoline inserts "JA l" at index at and returns a label for it.
func (p *bpfProgram) trampoline(at, l int) int {
	p.insns = slices.Insert(p.insns, at, bpfInsn{code: unix.BPF_JMP | unix.BPF_JA, jt: bpfNext, jf: bpfNext, to: l})
	for i, pos := range p.labels {
		if pos >= at {
			p.labels[i] = pos + 1
		}
	}
	t := p.newLabel()
	p.labels[t] = at
	return t
}

func (p *bpfProgram) assemble() ([]unix.SockFilter, error) {
	for _, pos := range p.labels {
		if pos >= len(p.insns) {
			return nil, errors.New("internal error: a BPF label is past the last instruction")
		}
	}
	// "Next instruction" becomes a label, so that a trampoline inserted
	// after a jump does not become its target.
	for i := range p.insns {
		in := &p.insns[i]
		if !bpfIsConditional(in.code) || (in.jt != bpfNext && in.jf != bpfNext) {
			continue
		}
		next := p.newLabel()
		p.labels[next] = i + 1
		if in.jt == bpfNext {
			in.jt = next
		}
		if in.jf == bpfNext {
			in.jf = next
		}
	}
	for changed := true; changed; {
		changed = false
		for i := 0; i < len(p.insns); i++ {
			if !bpfIsConditional(p.insns[i].code) {
				continue
			}
			if p.offset(i, p.insns[i].jt) > 0xff {
				p.insns[i].jt = p.trampoline(i+1, p.insns[i].jt)
				changed = true
			}
			if p.offset(i, p.insns[i].jf) > 0xff {
				p.insns[i].jf = p.trampoline(i+1, p.insns[i].jf)
				changed = true
			}
		}
	}
	out := make([]unix.SockFilter, len(p.insns))
	for i, in := range p.insns {
		out[i] = unix.SockFilter{Code: in.code, K: in.k}
		for _, l := range []int{in.jt, in.jf, in.to} {
			if l != bpfNext && (p.labels[l] < 0 || p.offset(i, l) < 0) {
				return nil, fmt.Errorf("internal error: BPF instruction %d jumps to an unplaced or earlier label", i)
			}
		}
		switch {
		case in.code == unix.BPF_JMP|unix.BPF_JA:
			out[i].K = uint32(p.offset(i, in.to))
		case bpfIsConditional(in.code):
			out[i].Jt = uint8(p.offset(i, in.jt))
			out[i].Jf = uint8(p.offset(i, in.jf))
		}
	}
	return out, nil
}

// seccompSyscallsAMD64 (built on first use, not at every tug start) maps libseccomp's syscall names to their numbers on
// amd64 (generated from golang.org/x/sys/unix v0.50.0 zsysnum_linux_amd64.go).
var seccompSyscallsAMD64 = sync.OnceValue(func() map[string]uint32 {
	return map[string]uint32{
		"read": 0, "write": 1, "open": 2, "close": 3, "stat": 4, "fstat": 5, "lstat": 6, "poll": 7,
		"lseek": 8, "mmap": 9, "mprotect": 10, "munmap": 11, "brk": 12, "rt_sigaction": 13,
		"rt_sigprocmask": 14, "rt_sigreturn": 15, "ioctl": 16, "pread64": 17, "pwrite64": 18,
		"readv": 19, "writev": 20, "access": 21, "pipe": 22, "select": 23, "sched_yield": 24,
		"mremap": 25, "msync": 26, "mincore": 27, "madvise": 28, "shmget": 29, "shmat": 30,
		"shmctl": 31, "dup": 32, "dup2": 33, "pause": 34, "nanosleep": 35, "getitimer": 36,
		"alarm": 37, "setitimer": 38, "getpid": 39, "sendfile": 40, "socket": 41, "connect": 42,
		"accept": 43, "sendto": 44, "recvfrom": 45, "sendmsg": 46, "recvmsg": 47, "shutdown": 48,
		"bind": 49, "listen": 50, "getsockname": 51, "getpeername": 52, "socketpair": 53,
		"setsockopt": 54, "getsockopt": 55, "clone": 56, "fork": 57, "vfork": 58, "execve": 59,
		"exit": 60, "wait4": 61, "kill": 62, "uname": 63, "semget": 64, "semop": 65, "semctl": 66,
		"shmdt": 67, "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71, "fcntl": 72, "flock": 73,
		"fsync": 74, "fdatasync": 75, "truncate": 76, "ftruncate": 77, "getdents": 78, "getcwd": 79,
		"chdir": 80, "fchdir": 81, "rename": 82, "mkdir": 83, "rmdir": 84, "creat": 85, "link": 86,
		"unlink": 87, "symlink": 88, "readlink": 89, "chmod": 90, "fchmod": 91, "chown": 92,
		"fchown": 93, "lchown": 94, "umask": 95, "gettimeofday": 96, "getrlimit": 97, "getrusage": 98,
		"sysinfo": 99, "times": 100, "ptrace": 101, "getuid": 102, "syslog": 103, "getgid": 104,
		"setuid": 105, "setgid": 106, "geteuid": 107, "getegid": 108, "setpgid": 109, "getppid": 110,
		"getpgrp": 111, "setsid": 112, "setreuid": 113, "setregid": 114, "getgroups": 115,
		"setgroups": 116, "setresuid": 117, "getresuid": 118, "setresgid": 119, "getresgid": 120,
		"getpgid": 121, "setfsuid": 122, "setfsgid": 123, "getsid": 124, "capget": 125, "capset": 126,
		"rt_sigpending": 127, "rt_sigtimedwait": 128, "rt_sigqueueinfo": 129, "rt_sigsuspend": 130,
		"sigaltstack": 131, "utime": 132, "mknod": 133, "uselib": 134, "personality": 135,
		"ustat": 136, "statfs": 137, "fstatfs": 138, "sysfs": 139, "getpriority": 140,
		"setpriority": 141, "sched_setparam": 142, "sched_getparam": 143, "sched_setscheduler": 144,
		"sched_getscheduler": 145, "sched_get_priority_max": 146, "sched_get_priority_min": 147,
		"sched_rr_get_interval": 148, "mlock": 149, "munlock": 150, "mlockall": 151,
		"munlockall": 152, "vhangup": 153, "modify_ldt": 154, "pivot_root": 155, "_sysctl": 156,
		"prctl": 157, "arch_prctl": 158, "adjtimex": 159, "setrlimit": 160, "chroot": 161,
		"sync": 162, "acct": 163, "settimeofday": 164, "mount": 165, "umount2": 166, "swapon": 167,
		"swapoff": 168, "reboot": 169, "sethostname": 170, "setdomainname": 171, "iopl": 172,
		"ioperm": 173, "create_module": 174, "init_module": 175, "delete_module": 176,
		"get_kernel_syms": 177, "query_module": 178, "quotactl": 179, "nfsservctl": 180,
		"getpmsg": 181, "putpmsg": 182, "afs_syscall": 183, "tuxcall": 184, "security": 185,
		"gettid": 186, "readahead": 187, "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190,
		"getxattr": 191, "lgetxattr": 192, "fgetxattr": 193, "listxattr": 194, "llistxattr": 195,
		"flistxattr": 196, "removexattr": 197, "lremovexattr": 198, "fremovexattr": 199, "tkill": 200,
		"time": 201, "futex": 202, "sched_setaffinity": 203, "sched_getaffinity": 204,
		"set_thread_area": 205, "io_setup": 206, "io_destroy": 207, "io_getevents": 208,
		"io_submit": 209, "io_cancel": 210, "get_thread_area": 211, "lookup_dcookie": 212,
		"epoll_create": 213, "epoll_ctl_old": 214, "epoll_wait_old": 215, "remap_file_pages": 216,
		"getdents64": 217, "set_tid_address": 218, "restart_syscall": 219, "semtimedop": 220,
		"fadvise64": 221, "timer_create": 222, "timer_settime": 223, "timer_gettime": 224,
		"timer_getoverrun": 225, "timer_delete": 226, "clock_settime": 227, "clock_gettime": 228,
		"clock_getres": 229, "clock_nanosleep": 230, "exit_group": 231, "epoll_wait": 232,
		"epoll_ctl": 233, "tgkill": 234, "utimes": 235, "vserver": 236, "mbind": 237,
		"set_mempolicy": 238, "get_mempolicy": 239, "mq_open": 240, "mq_unlink": 241,
		"mq_timedsend": 242, "mq_timedreceive": 243, "mq_notify": 244, "mq_getsetattr": 245,
		"kexec_load": 246, "waitid": 247, "add_key": 248, "request_key": 249, "keyctl": 250,
		"ioprio_set": 251, "ioprio_get": 252, "inotify_init": 253, "inotify_add_watch": 254,
		"inotify_rm_watch": 255, "migrate_pages": 256, "openat": 257, "mkdirat": 258, "mknodat": 259,
		"fchownat": 260, "futimesat": 261, "newfstatat": 262, "unlinkat": 263, "renameat": 264,
		"linkat": 265, "symlinkat": 266, "readlinkat": 267, "fchmodat": 268, "faccessat": 269,
		"pselect6": 270, "ppoll": 271, "unshare": 272, "set_robust_list": 273, "get_robust_list": 274,
		"splice": 275, "tee": 276, "sync_file_range": 277, "vmsplice": 278, "move_pages": 279,
		"utimensat": 280, "epoll_pwait": 281, "signalfd": 282, "timerfd_create": 283, "eventfd": 284,
		"fallocate": 285, "timerfd_settime": 286, "timerfd_gettime": 287, "accept4": 288,
		"signalfd4": 289, "eventfd2": 290, "epoll_create1": 291, "dup3": 292, "pipe2": 293,
		"inotify_init1": 294, "preadv": 295, "pwritev": 296, "rt_tgsigqueueinfo": 297,
		"perf_event_open": 298, "recvmmsg": 299, "fanotify_init": 300, "fanotify_mark": 301,
		"prlimit64": 302, "name_to_handle_at": 303, "open_by_handle_at": 304, "clock_adjtime": 305,
		"syncfs": 306, "sendmmsg": 307, "setns": 308, "getcpu": 309, "process_vm_readv": 310,
		"process_vm_writev": 311, "kcmp": 312, "finit_module": 313, "sched_setattr": 314,
		"sched_getattr": 315, "renameat2": 316, "seccomp": 317, "getrandom": 318, "memfd_create": 319,
		"kexec_file_load": 320, "bpf": 321, "execveat": 322, "userfaultfd": 323, "membarrier": 324,
		"mlock2": 325, "copy_file_range": 326, "preadv2": 327, "pwritev2": 328, "pkey_mprotect": 329,
		"pkey_alloc": 330, "pkey_free": 331, "statx": 332, "io_pgetevents": 333, "rseq": 334,
		"uretprobe": 335, "uprobe": 336, "pidfd_send_signal": 424, "io_uring_setup": 425,
		"io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428, "move_mount": 429,
		"fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "pidfd_open": 434,
		"clone3": 435, "close_range": 436, "openat2": 437, "pidfd_getfd": 438, "faccessat2": 439,
		"process_madvise": 440, "epoll_pwait2": 441, "mount_setattr": 442, "quotactl_fd": 443,
		"landlock_create_ruleset": 444, "landlock_add_rule": 445, "landlock_restrict_self": 446,
		"memfd_secret": 447, "process_mrelease": 448, "futex_waitv": 449,
		"set_mempolicy_home_node": 450, "cachestat": 451, "fchmodat2": 452, "map_shadow_stack": 453,
		"futex_wake": 454, "futex_wait": 455, "futex_requeue": 456, "statmount": 457,
		"listmount": 458, "lsm_get_self_attr": 459, "lsm_set_self_attr": 460, "lsm_list_modules": 461,
		"mseal": 462, "setxattrat": 463, "getxattrat": 464, "listxattrat": 465, "removexattrat": 466,
		"open_tree_attr": 467, "file_getattr": 468, "file_setattr": 469, "listns": 470,
		"rseq_slice_yield": 471,
	}
})

// seccompSyscallsARM64 maps libseccomp's syscall names to their numbers on
// arm64 (generated from golang.org/x/sys/unix v0.50.0 zsysnum_linux_arm64.go).
var seccompSyscallsARM64 = sync.OnceValue(func() map[string]uint32 {
	return map[string]uint32{
		"io_setup": 0, "io_destroy": 1, "io_submit": 2, "io_cancel": 3, "io_getevents": 4,
		"setxattr": 5, "lsetxattr": 6, "fsetxattr": 7, "getxattr": 8, "lgetxattr": 9, "fgetxattr": 10,
		"listxattr": 11, "llistxattr": 12, "flistxattr": 13, "removexattr": 14, "lremovexattr": 15,
		"fremovexattr": 16, "getcwd": 17, "lookup_dcookie": 18, "eventfd2": 19, "epoll_create1": 20,
		"epoll_ctl": 21, "epoll_pwait": 22, "dup": 23, "dup3": 24, "fcntl": 25, "inotify_init1": 26,
		"inotify_add_watch": 27, "inotify_rm_watch": 28, "ioctl": 29, "ioprio_set": 30,
		"ioprio_get": 31, "flock": 32, "mknodat": 33, "mkdirat": 34, "unlinkat": 35, "symlinkat": 36,
		"linkat": 37, "renameat": 38, "umount2": 39, "mount": 40, "pivot_root": 41, "nfsservctl": 42,
		"statfs": 43, "fstatfs": 44, "truncate": 45, "ftruncate": 46, "fallocate": 47,
		"faccessat": 48, "chdir": 49, "fchdir": 50, "chroot": 51, "fchmod": 52, "fchmodat": 53,
		"fchownat": 54, "fchown": 55, "openat": 56, "close": 57, "vhangup": 58, "pipe2": 59,
		"quotactl": 60, "getdents64": 61, "lseek": 62, "read": 63, "write": 64, "readv": 65,
		"writev": 66, "pread64": 67, "pwrite64": 68, "preadv": 69, "pwritev": 70, "sendfile": 71,
		"pselect6": 72, "ppoll": 73, "signalfd4": 74, "vmsplice": 75, "splice": 76, "tee": 77,
		"readlinkat": 78, "newfstatat": 79, "fstat": 80, "sync": 81, "fsync": 82, "fdatasync": 83,
		"sync_file_range": 84, "timerfd_create": 85, "timerfd_settime": 86, "timerfd_gettime": 87,
		"utimensat": 88, "acct": 89, "capget": 90, "capset": 91, "personality": 92, "exit": 93,
		"exit_group": 94, "waitid": 95, "set_tid_address": 96, "unshare": 97, "futex": 98,
		"set_robust_list": 99, "get_robust_list": 100, "nanosleep": 101, "getitimer": 102,
		"setitimer": 103, "kexec_load": 104, "init_module": 105, "delete_module": 106,
		"timer_create": 107, "timer_gettime": 108, "timer_getoverrun": 109, "timer_settime": 110,
		"timer_delete": 111, "clock_settime": 112, "clock_gettime": 113, "clock_getres": 114,
		"clock_nanosleep": 115, "syslog": 116, "ptrace": 117, "sched_setparam": 118,
		"sched_setscheduler": 119, "sched_getscheduler": 120, "sched_getparam": 121,
		"sched_setaffinity": 122, "sched_getaffinity": 123, "sched_yield": 124,
		"sched_get_priority_max": 125, "sched_get_priority_min": 126, "sched_rr_get_interval": 127,
		"restart_syscall": 128, "kill": 129, "tkill": 130, "tgkill": 131, "sigaltstack": 132,
		"rt_sigsuspend": 133, "rt_sigaction": 134, "rt_sigprocmask": 135, "rt_sigpending": 136,
		"rt_sigtimedwait": 137, "rt_sigqueueinfo": 138, "rt_sigreturn": 139, "setpriority": 140,
		"getpriority": 141, "reboot": 142, "setregid": 143, "setgid": 144, "setreuid": 145,
		"setuid": 146, "setresuid": 147, "getresuid": 148, "setresgid": 149, "getresgid": 150,
		"setfsuid": 151, "setfsgid": 152, "times": 153, "setpgid": 154, "getpgid": 155, "getsid": 156,
		"setsid": 157, "getgroups": 158, "setgroups": 159, "uname": 160, "sethostname": 161,
		"setdomainname": 162, "getrlimit": 163, "setrlimit": 164, "getrusage": 165, "umask": 166,
		"prctl": 167, "getcpu": 168, "gettimeofday": 169, "settimeofday": 170, "adjtimex": 171,
		"getpid": 172, "getppid": 173, "getuid": 174, "geteuid": 175, "getgid": 176, "getegid": 177,
		"gettid": 178, "sysinfo": 179, "mq_open": 180, "mq_unlink": 181, "mq_timedsend": 182,
		"mq_timedreceive": 183, "mq_notify": 184, "mq_getsetattr": 185, "msgget": 186, "msgctl": 187,
		"msgrcv": 188, "msgsnd": 189, "semget": 190, "semctl": 191, "semtimedop": 192, "semop": 193,
		"shmget": 194, "shmctl": 195, "shmat": 196, "shmdt": 197, "socket": 198, "socketpair": 199,
		"bind": 200, "listen": 201, "accept": 202, "connect": 203, "getsockname": 204,
		"getpeername": 205, "sendto": 206, "recvfrom": 207, "setsockopt": 208, "getsockopt": 209,
		"shutdown": 210, "sendmsg": 211, "recvmsg": 212, "readahead": 213, "brk": 214, "munmap": 215,
		"mremap": 216, "add_key": 217, "request_key": 218, "keyctl": 219, "clone": 220, "execve": 221,
		"mmap": 222, "fadvise64": 223, "swapon": 224, "swapoff": 225, "mprotect": 226, "msync": 227,
		"mlock": 228, "munlock": 229, "mlockall": 230, "munlockall": 231, "mincore": 232,
		"madvise": 233, "remap_file_pages": 234, "mbind": 235, "get_mempolicy": 236,
		"set_mempolicy": 237, "migrate_pages": 238, "move_pages": 239, "rt_tgsigqueueinfo": 240,
		"perf_event_open": 241, "accept4": 242, "recvmmsg": 243, "arch_specific_syscall": 244,
		"wait4": 260, "prlimit64": 261, "fanotify_init": 262, "fanotify_mark": 263,
		"name_to_handle_at": 264, "open_by_handle_at": 265, "clock_adjtime": 266, "syncfs": 267,
		"setns": 268, "sendmmsg": 269, "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272,
		"finit_module": 273, "sched_setattr": 274, "sched_getattr": 275, "renameat2": 276,
		"seccomp": 277, "getrandom": 278, "memfd_create": 279, "bpf": 280, "execveat": 281,
		"userfaultfd": 282, "membarrier": 283, "mlock2": 284, "copy_file_range": 285, "preadv2": 286,
		"pwritev2": 287, "pkey_mprotect": 288, "pkey_alloc": 289, "pkey_free": 290, "statx": 291,
		"io_pgetevents": 292, "rseq": 293, "kexec_file_load": 294, "pidfd_send_signal": 424,
		"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428,
		"move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
		"pidfd_open": 434, "clone3": 435, "close_range": 436, "openat2": 437, "pidfd_getfd": 438,
		"faccessat2": 439, "process_madvise": 440, "epoll_pwait2": 441, "mount_setattr": 442,
		"quotactl_fd": 443, "landlock_create_ruleset": 444, "landlock_add_rule": 445,
		"landlock_restrict_self": 446, "memfd_secret": 447, "process_mrelease": 448,
		"futex_waitv": 449, "set_mempolicy_home_node": 450, "cachestat": 451, "fchmodat2": 452,
		"map_shadow_stack": 453, "futex_wake": 454, "futex_wait": 455, "futex_requeue": 456,
		"statmount": 457, "listmount": 458, "lsm_get_self_attr": 459, "lsm_set_self_attr": 460,
		"lsm_list_modules": 461, "mseal": 462, "setxattrat": 463, "getxattrat": 464,
		"listxattrat": 465, "removexattrat": 466, "open_tree_attr": 467, "file_getattr": 468,
		"file_setattr": 469, "listns": 470, "rseq_slice_yield": 471,
	}
})
