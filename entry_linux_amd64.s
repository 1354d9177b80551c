// tug's ELF entry point, linked in with -ldflags=-E=main.entry (see
// entry_asm.go). It runs before Go's runtime starts, while the process has one
// thread: the one moment a Go program may make a user namespace of its own.

#include "textflag.h"

#define SYS_close 3
#define SYS_getpid 39
#define SYS_clone 56
#define SYS_geteuid 107
#define SYS_getegid 108
#define SYS_prctl 157
#define SYS_pipe2 293
#define O_CLOEXEC 0x80000
#define PR_SET_PDEATHSIG 1
#define SIGKILL 9
// CLONE_NEWUSER | CLONE_NEWNS | SIGCHLD
#define CLONE_FLAGS 0x10020011

// Environment entries (prefixes) that leave the process alone: tug's own
// children and the switch to its older way (TUG_USERNS_STAGE1=exec, for
// tests). NUL-terminated, then an empty one.
DATA	noEntry<>+0(SB)/8, $"_TUG_\000_C"
DATA	noEntry<>+8(SB)/8, $"ONTAINER"
DATA	noEntry<>+16(SB)/8, $"S_USERNS"
DATA	noEntry<>+24(SB)/8, $"_\000TUG_US"
DATA	noEntry<>+32(SB)/8, $"ERNS_STA"
DATA	noEntry<>+40(SB)/8, $"GE1=\000\000\000\000"
GLOBL	noEntry<>(SB), RODATA, $48

// entry clones a child in new user and mount namespaces when an
// unprivileged user's arguments hold the word "run": both processes then
// start Go's runtime, each told its part in entryRole. Anything else, or a
// failure, starts the runtime as if entry were not there. tug decides the
// rest in Go (package runtime/userns).
TEXT ·entry(SB),NOSPLIT|NOFRAME,$0
	// The kernel's stack: argc, argv..., NULL, envp..., NULL.
	MOVQ	0(SP), CX	// argc
	MOVQ	$1, R8
argv:
	CMPQ	R8, CX
	JGE	start
	MOVQ	8(SP)(R8*8), BX
	INCQ	R8
	CMPB	0(BX), $'r'
	JNE	argv
	CMPB	1(BX), $'u'
	JNE	argv
	CMPB	2(BX), $'n'
	JNE	argv
	CMPB	3(BX), $0
	JNE	argv

	MOVQ	$SYS_geteuid, AX
	SYSCALL
	TESTQ	AX, AX
	JEQ	start	// root: tug has its own way (a mount namespace)
	MOVL	AX, ·entryUID(SB)

	MOVQ	0(SP), CX
	LEAQ	16(SP)(CX*8), R8	// envp
env:
	MOVQ	0(R8), R9
	TESTQ	R9, R9
	JEQ	envdone
	LEAQ	noEntry<>(SB), R10
prefix:
	CMPB	0(R10), $0
	JEQ	nextenv	// no prefix matched
	MOVQ	R9, R11
match:
	MOVB	0(R10), DX
	TESTB	DX, DX
	JEQ	start	// the whole prefix matched
	CMPB	0(R11), DX
	JNE	skip
	INCQ	R10
	INCQ	R11
	JMP	match
skip:
	CMPB	0(R10), $0
	JEQ	nextprefix
	INCQ	R10
	JMP	skip
nextprefix:
	INCQ	R10
	JMP	prefix
nextenv:
	ADDQ	$8, R8
	JMP	env
envdone:

	MOVQ	$SYS_getegid, AX
	SYSCALL
	MOVL	AX, ·entryGID(SB)
	MOVQ	$SYS_getpid, AX
	SYSCALL
	MOVL	AX, ·entryParent(SB)
	LEAQ	·entrySync(SB), DI
	MOVQ	$O_CLOEXEC, SI
	MOVQ	$SYS_pipe2, AX
	SYSCALL
	TESTQ	AX, AX
	JNE	start
	LEAQ	·entryStatus(SB), DI
	MOVQ	$O_CLOEXEC, SI
	MOVQ	$SYS_pipe2, AX
	SYSCALL
	TESTQ	AX, AX
	JNE	closesync

	MOVQ	$CLONE_FLAGS, DI
	XORQ	SI, SI	// a copy of this stack, as fork
	XORQ	DX, DX
	XORQ	R10, R10
	XORQ	R8, R8
	MOVQ	$SYS_clone, AX
	SYSCALL
	CMPQ	AX, $0
	JLT	closeall	// no user namespace here: tug finds out why later
	JEQ	child
	MOVL	AX, ·entryChild(SB)
	MOVL	$2, ·entryRole(SB)
	JMP	start
child:
	MOVL	$1, ·entryRole(SB)
	// The child dies with the parent (checked again in Go, in case the
	// parent died first).
	MOVQ	$PR_SET_PDEATHSIG, DI
	MOVQ	$SIGKILL, SI
	MOVQ	$SYS_prctl, AX
	SYSCALL
	JMP	start

closeall:
	MOVL	·entryStatus+0(SB), DI
	MOVQ	$SYS_close, AX
	SYSCALL
	MOVL	·entryStatus+4(SB), DI
	MOVQ	$SYS_close, AX
	SYSCALL
closesync:
	MOVL	·entrySync+0(SB), DI
	MOVQ	$SYS_close, AX
	SYSCALL
	MOVL	·entrySync+4(SB), DI
	MOVQ	$SYS_close, AX
	SYSCALL
start:
	XORQ	DX, DX	// no exit function for the runtime (the kernel's value)
	JMP	_rt0_amd64_linux(SB)
