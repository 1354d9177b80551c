//go:build linux && (amd64 || arm64)

package main

// entry is tug's ELF entry point with -ldflags=-E=main.entry
// (entry_linux_$GOARCH.s). On amd64, for an unprivileged `tug run`, it
// clones the user-namespace child before Go's runtime starts and records
// what it made in variables that package runtime/userns defines under
// main's names (main.entryRole and the others), where the parent's part
// then runs; with a cached plan (runtime/userns's cache_linux.go) it does
// the parent's part itself, and that parent never starts Go's runtime.
// Without the flag it is not called, and nothing changes.
func entry()
