// Bodyless functions in fork_linux.go are linked to the runtime
// (go:linkname); the compiler wants an assembly file beside them.
