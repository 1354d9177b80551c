// tug's ELF entry point, linked in with -ldflags=-E=main.entry (see
// entry_asm.go). It runs before Go's runtime starts, while the process has one
// thread: the one moment a Go program may make a user namespace of its own.

#include "textflag.h"

#define SYS_read 0
#define SYS_write 1
#define SYS_open 2
#define SYS_close 3
#define SYS_fstat 5
#define SYS_rt_sigaction 13
#define SYS_dup2 33
#define SYS_getpid 39
#define SYS_clone 56
#define SYS_execve 59
#define SYS_wait4 61
#define SYS_kill 62
#define SYS_geteuid 107
#define SYS_getegid 108
#define SYS_prctl 157
#define SYS_exit_group 231
#define SYS_pipe2 293
#define O_RDWR 2
#define O_NOFOLLOW 0x20000
#define O_CLOEXEC 0x80000
#define PR_SET_PDEATHSIG 1
#define SIGKILL 9
#define SIGCHLD 17
#define EINTR 4
#define SA_RESTORER 0x04000000
#define SA_RESTART 0x10000000
#define S_IFMT 0xf000
#define S_IFREG 0x8000
// Stages (package userns's Stage).
#define HELPERS_FAILED 1
#define STATUS_READ 2
// CLONE_NEWUSER | CLONE_NEWNS | SIGCHLD
#define CLONE_FLAGS 0x10020011

// The parent's frame below the kernel's stack, while it works from the
// cache.
#define F_PATH 0	// the cache file's path
#define F_PATHEND 4000
#define F_MSG 4096	// 'C', then the file
#define F_BUF 4097
#define MAXCACHE 3900
#define F_ARGV1 8192	// newuidmap's argv: MAXARGS and a NULL
#define F_ARGV2 8448	// newgidmap's
#define MAXARGS 30
#define F_PID 8704	// the child's pid, in decimal
#define F_NUM 8720	// the uid or gid, in decimal
#define F_STAT 8736	// struct stat
#define F_STMODE 8760
#define F_STUID 8764
#define F_STSIZE 8784
#define F_ACT 8880	// struct sigaction: handler, flags, restorer, mask
#define F_ACT8 8888
#define F_ACT16 8896
#define F_ACT24 8904
#define F_WS 8912	// a helper's wait status
#define F_STATUS 8916	// the child's exit status
#define FRAME 9216

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
// unprivileged user's arguments hold the word "run": the child starts Go's
// runtime, told its part in entryRole; the parent writes its id maps from
// the cache where it can (see cached below) and otherwise starts Go's
// runtime too. Anything else, or a failure, starts the runtime as if entry
// were not there. tug decides the rest in Go (package runtime/userns).
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
	JMP	cached
child:
	MOVL	$1, ·entryRole(SB)
	// The child dies with the parent (checked again in Go, in case the
	// parent died first).
	MOVQ	$PR_SET_PDEATHSIG, DI
	MOVQ	$SIGKILL, SI
	MOVQ	$SYS_prctl, AX
	SYSCALL
	JMP	start

	// The parent's part from the id-map cache (package userns,
	// cache_linux.go): where a usable cache names the helpers and their
	// arguments, start them now, tell the child, and wait for its
	// status, all without Go's runtime. Anything short of that goes on
	// in Go, which entryStage tells how far this got.
cached:
	MOVQ	SP, R12	// the kernel's stack, until Go starts
	SUBQ	$FRAME, SP
	// The path: $XDG_CACHE_HOME/tug/userns-maps, else
	// $HOME/.cache/tug/userns-maps; absolute only (MapCachePath).
	LEAQ	F_PATH(SP), DI
	LEAQ	F_PATHEND(SP), DX
	LEAQ	envXDG<>(SB), SI
	CALL	envGet<>(SB)
	TESTQ	AX, AX
	JEQ	home
	CMPB	0(AX), $0
	JEQ	home
	CMPB	0(AX), $'/'
	JNE	parentgo
	MOVQ	AX, SI
	CALL	appendStr<>(SB)
	TESTQ	AX, AX
	JNE	parentgo
	JMP	file
home:
	LEAQ	envHome<>(SB), SI
	CALL	envGet<>(SB)
	TESTQ	AX, AX
	JEQ	parentgo
	CMPB	0(AX), $'/'
	JNE	parentgo
	MOVQ	AX, SI
	CALL	appendStr<>(SB)
	TESTQ	AX, AX
	JNE	parentgo
	LEAQ	dotCache<>(SB), SI
	CALL	appendStr<>(SB)
	TESTQ	AX, AX
	JNE	parentgo
file:
	LEAQ	cacheFile<>(SB), SI
	CALL	appendStr<>(SB)
	TESTQ	AX, AX
	JNE	parentgo
	MOVB	$0, 0(DI)

	// A regular file of this user's that no one else may write.
	LEAQ	F_PATH(SP), DI
	MOVQ	$(O_CLOEXEC|O_NOFOLLOW), SI
	XORQ	DX, DX
	MOVQ	$SYS_open, AX
	SYSCALL
	CMPQ	AX, $0
	JLT	parentgo
	MOVQ	AX, R13
	MOVQ	R13, DI
	LEAQ	F_STAT(SP), SI
	MOVQ	$SYS_fstat, AX
	SYSCALL
	TESTQ	AX, AX
	JNE	closecache
	MOVL	F_STMODE(SP), AX
	MOVL	AX, CX
	ANDL	$S_IFMT, CX
	CMPL	CX, $S_IFREG
	JNE	closecache
	TESTL	$0x12, AX	// group or others may write
	JNE	closecache
	MOVL	F_STUID(SP), AX
	CMPL	AX, ·entryUID(SB)
	JNE	closecache
	MOVQ	F_STSIZE(SP), R14
	CMPQ	R14, $1
	JLT	closecache
	CMPQ	R14, $MAXCACHE
	JGT	closecache
	MOVQ	R13, DI
	LEAQ	F_BUF(SP), SI
	MOVQ	$MAXCACHE, DX
	MOVQ	$SYS_read, AX
	SYSCALL
	CMPQ	AX, R14
	JNE	closecache
	MOVQ	R13, DI
	MOVQ	$SYS_close, AX
	SYSCALL

	// magic, uid, gid, then the two argvs; R14 is the end.
	LEAQ	F_BUF(SP), SI
	ADDQ	SI, R14
	CMPB	-1(R14), $0
	JNE	parentgo
	LEAQ	cacheMagic<>(SB), DI
	CALL	streq<>(SB)
	TESTQ	AX, AX
	JEQ	parentgo
	CALL	strend<>(SB)
	MOVQ	AX, BX
	LEAQ	F_NUM(SP), R13
	MOVL	·entryUID(SB), AX
	CALL	numeq<>(SB)
	TESTQ	AX, AX
	JEQ	parentgo
	MOVL	·entryGID(SB), AX
	CALL	numeq<>(SB)
	TESTQ	AX, AX
	JEQ	parentgo
	MOVL	·entryChild(SB), AX
	LEAQ	F_PID(SP), DI
	CALL	itoa<>(SB)
	MOVQ	AX, R15	// the child's pid, for "@PID"
	MOVQ	BX, SI
	LEAQ	F_ARGV1(SP), R8
	CALL	parseArgv<>(SB)
	TESTQ	AX, AX
	JEQ	parentgo
	MOVQ	AX, SI
	LEAQ	F_ARGV2(SP), R8
	CALL	parseArgv<>(SB)
	CMPQ	AX, R14
	JNE	parentgo

	// Past here Go's parent is told how far this got. Its ends it does
	// not use are closed first (a child that ends must end the read).
	MOVL	·entrySync+0(SB), DI
	MOVQ	$SYS_close, AX
	SYSCALL
	MOVL	$-1, ·entrySync+0(SB)
	MOVL	·entryStatus+4(SB), DI
	MOVQ	$SYS_close, AX
	SYSCALL
	MOVL	$-1, ·entryStatus+4(SB)
	// Signals a terminal or a script sends go on to the child, as
	// userns.ForwardSignals passes them.
	LEAQ	forward<>(SB), AX
	MOVQ	AX, F_ACT(SP)
	MOVQ	$(SA_RESTORER|SA_RESTART), F_ACT8(SP)
	LEAQ	sigreturn<>(SB), AX
	MOVQ	AX, F_ACT16(SP)
	MOVQ	$0, F_ACT24(SP)
	LEAQ	F_ACT(SP), SI
	MOVQ	$1, DI	// SIGHUP
	CALL	sigaction<>(SB)
	MOVQ	$2, DI	// SIGINT
	CALL	sigaction<>(SB)
	MOVQ	$3, DI	// SIGQUIT
	CALL	sigaction<>(SB)
	MOVQ	$15, DI	// SIGTERM
	CALL	sigaction<>(SB)

	LEAQ	F_ARGV1(SP), BX
	CALL	spawn<>(SB)
	CMPQ	AX, $0
	JLT	parentgo	// nothing ran: Go's parent does it all
	MOVQ	AX, R13
	LEAQ	F_ARGV2(SP), BX
	CALL	spawn<>(SB)
	MOVQ	AX, BX
	MOVQ	R13, DI
	LEAQ	F_WS(SP), SI
	CALL	reap<>(SB)
	MOVQ	AX, R13
	CMPQ	BX, $0
	JLT	failed
	MOVQ	BX, DI
	CALL	reap<>(SB)
	TESTQ	R13, R13
	JNE	failed
	MOVQ	AX, R13
	TESTQ	R13, R13
	JNE	failed

	// The maps are written: 'C' and the cache file, for the child to
	// check against the plan it works out. A child that has ended
	// already (a usage error) has closed its end: with SIGPIPE ignored,
	// the write fails instead of killing this process, which then says
	// the status the child said.
	MOVQ	$1, F_ACT(SP)	// SIG_IGN
	MOVQ	$0, F_ACT8(SP)
	LEAQ	F_ACT(SP), SI
	MOVQ	$13, DI	// SIGPIPE
	CALL	sigaction<>(SB)
	MOVB	$'C', F_MSG(SP)
	MOVL	·entrySync+4(SB), DI
	LEAQ	F_MSG(SP), SI
	MOVQ	R14, DX
	SUBQ	SI, DX
	MOVQ	$SYS_write, AX
	SYSCALL
	MOVL	·entrySync+4(SB), DI
	MOVQ	$SYS_close, AX
	SYSCALL
	MOVL	$-1, ·entrySync+4(SB)

	// The child's status: four bytes, little endian (runtime.ReportExit).
	XORQ	BX, BX
	MOVL	$0, F_STATUS(SP)
readstatus:
	CMPQ	BX, $4
	JGE	statusread
	MOVL	·entryStatus+0(SB), DI
	LEAQ	F_STATUS(SP)(BX*1), SI
	MOVQ	$4, DX
	SUBQ	BX, DX
	MOVQ	$SYS_read, AX
	SYSCALL
	CMPQ	AX, $-EINTR
	JEQ	readstatus
	CMPQ	AX, $0
	JLE	statusread
	ADDQ	AX, BX
	JMP	readstatus
statusread:
	MOVL	BX, ·entryStatusN(SB)
	MOVL	F_STATUS(SP), AX
	MOVL	AX, ·entryCode(SB)
	MOVL	$STATUS_READ, ·entryStage(SB)
	CMPQ	BX, $4
	JNE	parentgo
	CMPL	AX, $-1	// userns.RedoStatus
	JEQ	parentgo
	MOVL	AX, DI
	MOVQ	$SYS_exit_group, AX
	SYSCALL

failed:
	// R13: the failed helper's wait status (0 where the other one could
	// not be started).
	MOVL	R13, ·entryCode(SB)
	MOVL	$HELPERS_FAILED, ·entryStage(SB)
	JMP	parentgo
closecache:
	MOVQ	R13, DI
	MOVQ	$SYS_close, AX
	SYSCALL
parentgo:
	MOVQ	R12, SP
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

// The strings the parent's part from the cache uses, NUL-terminated.
DATA	envXDG<>+0(SB)/8, $"XDG_CACH"
DATA	envXDG<>+8(SB)/8, $"E_HOME=\000"
GLOBL	envXDG<>(SB), RODATA, $16
DATA	envHome<>+0(SB)/8, $"HOME=\000\000\000"
GLOBL	envHome<>(SB), RODATA, $8
DATA	dotCache<>+0(SB)/8, $"/.cache\000"
GLOBL	dotCache<>(SB), RODATA, $8
DATA	cacheFile<>+0(SB)/8, $"/tug/use"
DATA	cacheFile<>+8(SB)/8, $"rns-maps"
DATA	cacheFile<>+16(SB)/8, $"\000\000\000\000\000\000\000\000"
GLOBL	cacheFile<>(SB), RODATA, $24
DATA	cacheMagic<>+0(SB)/8, $"tug-user"
DATA	cacheMagic<>+8(SB)/8, $"ns-maps-"
DATA	cacheMagic<>+16(SB)/8, $"1\000\000\000\000\000\000\000"
GLOBL	cacheMagic<>(SB), RODATA, $24
DATA	pidToken<>+0(SB)/8, $"@PID\000\000\000\000"
GLOBL	pidToken<>(SB), RODATA, $8
DATA	devNull<>+0(SB)/8, $"/dev/nul"
DATA	devNull<>+8(SB)/8, $"l\000\000\000\000\000\000\000"
GLOBL	devNull<>(SB), RODATA, $16

// envGet: AX = the value of the environment entry whose "NAME=" SI
// points at, or 0; R12 is the kernel's stack. Clobbers CX, R8-R11.
TEXT envGet<>(SB),NOSPLIT|NOFRAME,$0
	MOVQ	0(R12), CX
	LEAQ	16(R12)(CX*8), R8
next:
	MOVQ	0(R8), R9
	TESTQ	R9, R9
	JEQ	none
	MOVQ	SI, R10
cmp:
	MOVB	0(R10), CX
	TESTB	CX, CX
	JEQ	found
	CMPB	0(R9), CX
	JNE	skip
	INCQ	R9
	INCQ	R10
	JMP	cmp
skip:
	ADDQ	$8, R8
	JMP	next
found:
	MOVQ	R9, AX
	RET
none:
	XORQ	AX, AX
	RET

// appendStr copies the string at SI (without its NUL) to DI, short of
// DX; DI then points past it. AX = 0, or 1 where it does not fit.
// Clobbers R9.
TEXT appendStr<>(SB),NOSPLIT|NOFRAME,$0
loop:
	MOVB	0(SI), R9
	TESTB	R9, R9
	JEQ	done
	CMPQ	DI, DX
	JGE	over
	MOVB	R9, 0(DI)
	INCQ	DI
	INCQ	SI
	JMP	loop
done:
	XORQ	AX, AX
	RET
over:
	MOVQ	$1, AX
	RET

// itoa writes AX (32 bits) in decimal into the 16 bytes at DI, NUL
// ended, and returns its first digit in AX. Clobbers CX, DX, R9.
TEXT itoa<>(SB),NOSPLIT|NOFRAME,$0
	LEAQ	15(DI), R9
	MOVB	$0, 0(R9)
	MOVLQZX	AX, AX
	MOVQ	$10, CX
digit:
	XORQ	DX, DX
	DIVQ	CX
	ADDB	$'0', DX
	DECQ	R9
	MOVB	DX, 0(R9)
	TESTQ	AX, AX
	JNE	digit
	MOVQ	R9, AX
	RET

// streq: AX = 1 where the strings at SI and DI are equal, else 0.
// Clobbers CX, R9, R10.
TEXT streq<>(SB),NOSPLIT|NOFRAME,$0
	MOVQ	SI, R9
	MOVQ	DI, R10
loop:
	MOVB	0(R9), CX
	CMPB	0(R10), CX
	JNE	no
	TESTB	CX, CX
	JEQ	yes
	INCQ	R9
	INCQ	R10
	JMP	loop
yes:
	MOVQ	$1, AX
	RET
no:
	XORQ	AX, AX
	RET

// numeq checks that the string at BX is AX (32 bits) in decimal, with
// the 16 bytes at R13 to write it in: BX and AX then point to the string
// after it; else AX = 0. Clobbers CX, DX, DI, SI, R9, R10.
TEXT numeq<>(SB),NOSPLIT|NOFRAME,$0
	MOVQ	R13, DI
	CALL	itoa<>(SB)
	MOVQ	AX, DI
	MOVQ	BX, SI
	CALL	streq<>(SB)
	TESTQ	AX, AX
	JEQ	differ
	CALL	strend<>(SB)
	MOVQ	AX, BX
differ:
	RET

// strend: AX = the string after the one at SI, which ends before R14
// (the file's last byte is a NUL).
TEXT strend<>(SB),NOSPLIT|NOFRAME,$0
	MOVQ	SI, AX
loop:
	CMPB	0(AX), $0
	JEQ	end
	INCQ	AX
	JMP	loop
end:
	INCQ	AX
	RET

// parseArgv fills the argv at R8 with the strings from SI up to an
// empty one, "@PID" replaced by R15; the first must be an absolute path,
// and there are 2 to MAXARGS. AX = the string after the empty one, or 0.
// Clobbers BX, CX, DI, SI, R9, R10.
TEXT parseArgv<>(SB),NOSPLIT|NOFRAME,$0
	XORQ	BX, BX
arg:
	CMPQ	SI, R14
	JGE	bad
	CMPB	0(SI), $0
	JEQ	last
	CMPQ	BX, $MAXARGS
	JGE	bad
	MOVQ	SI, 0(R8)(BX*8)
	LEAQ	pidToken<>(SB), DI
	CALL	streq<>(SB)
	TESTQ	AX, AX
	JEQ	nextarg
	MOVQ	R15, 0(R8)(BX*8)
nextarg:
	INCQ	BX
	CALL	strend<>(SB)
	MOVQ	AX, SI
	JMP	arg
last:
	CMPQ	BX, $2
	JLT	bad
	MOVQ	$0, 0(R8)(BX*8)
	MOVQ	0(R8), R9
	CMPB	0(R9), $'/'
	JNE	bad
	LEAQ	1(SI), AX
	RET
bad:
	XORQ	AX, AX
	RET

// sigaction sets the action at SI for signal DI.
TEXT sigaction<>(SB),NOSPLIT|NOFRAME,$0
	XORQ	DX, DX
	MOVQ	$8, R10	// the mask's size
	MOVQ	$SYS_rt_sigaction, AX
	SYSCALL
	RET

// forward, the handler, sends the signal (DI) on to the child.
TEXT forward<>(SB),NOSPLIT|NOFRAME,$0
	MOVQ	DI, SI
	MOVL	·entryChild(SB), DI
	MOVQ	$SYS_kill, AX
	SYSCALL
	RET

TEXT sigreturn<>(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$15, AX	// rt_sigreturn
	SYSCALL
	INT	$3

// spawn forks a process that execs the argv at BX with the caller's
// environment (R12 is the kernel's stack), its standard streams on
// /dev/null (where a helper fails, Go's parent runs the line again and
// says what failed). AX = its pid, or a negative errno.
TEXT spawn<>(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$SIGCHLD, DI
	XORQ	SI, SI
	XORQ	DX, DX
	XORQ	R10, R10
	XORQ	R8, R8
	MOVQ	$SYS_clone, AX
	SYSCALL
	TESTQ	AX, AX
	JEQ	child
	RET
child:
	LEAQ	devNull<>(SB), DI
	MOVQ	$O_RDWR, SI
	XORQ	DX, DX
	MOVQ	$SYS_open, AX
	SYSCALL
	CMPQ	AX, $0
	JLT	exit
	MOVQ	AX, R9
	XORQ	SI, SI
dup:
	MOVQ	R9, DI
	MOVQ	$SYS_dup2, AX
	SYSCALL
	INCQ	SI
	CMPQ	SI, $3
	JLT	dup
	MOVQ	0(BX), DI
	MOVQ	BX, SI
	MOVQ	0(R12), CX
	LEAQ	16(R12)(CX*8), DX
	MOVQ	$SYS_execve, AX
	SYSCALL
exit:
	MOVQ	$127, DI
	MOVQ	$SYS_exit_group, AX
	SYSCALL

// reap waits for process DI, its wait status into the word at SI; AX =
// that status (0: it exited 0), or -1.
TEXT reap<>(SB),NOSPLIT|NOFRAME,$0
	MOVQ	DI, R9
	MOVL	$-1, 0(SI)
again:
	MOVQ	R9, DI
	XORQ	DX, DX
	XORQ	R10, R10
	MOVQ	$SYS_wait4, AX
	SYSCALL
	CMPQ	AX, $-EINTR
	JEQ	again
	CMPQ	AX, $0
	JLT	fail
	MOVL	0(SI), AX
	RET
fail:
	MOVQ	$-1, AX
	RET
