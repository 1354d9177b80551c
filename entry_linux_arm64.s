// tug's ELF entry point with -ldflags=-E=main.entry: on arm64 it makes
// nothing before Go's runtime starts (see entry_linux_amd64.s), and tug
// enters its user namespace the way it does without the flag.

#include "textflag.h"

TEXT ·entry(SB),NOSPLIT|NOFRAME,$0
	JMP	_rt0_arm64_linux(SB)
