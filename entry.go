package main

import rt "github.com/tugcli/tug/runtime"

// What entry (entry_linux_amd64.s), tug's ELF entry point when linked
// with -ldflags=-E=main.entry, made of this process before Go's runtime
// started. Never written after.
var (
	entryRole               int32
	entryChild, entryParent int32
	entryUID, entryGID      int32
	entrySync, entryStatus  [2]int32
)

// earlyEntry is what entry made of this process, for package runtime.
func earlyEntry() rt.EarlyEntry {
	return rt.EarlyEntry{
		Role:   rt.EarlyRole(entryRole),
		Child:  int(entryChild),
		Parent: int(entryParent),
		UID:    int(entryUID),
		GID:    int(entryGID),
		SyncR:  int(entrySync[0]), SyncW: int(entrySync[1]),
		StatusR: int(entryStatus[0]), StatusW: int(entryStatus[1]),
	}
}
