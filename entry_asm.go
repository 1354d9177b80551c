//go:build linux && (amd64 || arm64)

package main

// entry is in entry_linux_$GOARCH.s.
func entry()
