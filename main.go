// Command tug builds, ships and runs containers: one static binary, no
// daemon, no root.
package main

import (
	"fmt"
	"os"

	"go.podman.io/storage/pkg/reexec"

	"github.com/tugcli/tug/commands"
	rt "github.com/tugcli/tug/runtime"
)

func main() {
	// 0. A child cloned by tug's entry point (see entry_asm.go); its
	// parent's part ran in package userns's init.
	rt.StartEarlyEntry()
	// 1. Helper roles chosen by argv[0]: storage's re-exec'd layer appliers.
	if reexec.Init() {
		return
	}
	// Re-executed through /proc/self/exe or a descriptor, tug would show
	// in ps as "exe" or "4".
	rt.NameProcess()
	// 2. The child side of tug's user namespace entry (see runtime).
	if exit, code, err := rt.EnterUserNamespaceRole(); exit {
		if err != nil {
			fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		}
		os.Exit(code)
	}
	// 3. The CLI, in-process. A tug re-executed in its namespaces says its
	// status to the tug that waits for it before it exits.
	code := commands.Main(os.Args[1:])
	rt.ReportExit(code)
	os.Exit(code)
}
