package runtime

import (
	"encoding/json"
	"fmt"
	"os"

	"go.podman.io/storage/pkg/reexec"
)

// CopyRole is argv[0] of tug cp's helper inside a running container: the
// container's init starts its own sealed binary under this name, through
// `tug exec`'s channel, so the copy runs in the container's namespaces
// with its capabilities and seccomp filter, as its root.
//
//	tug-copy stat PATH                     prints CopyStat as JSON
//	tug-copy out PATH TOP FOLLOW           writes a tar stream on stdout
//	tug-copy in PATH KEEP                  reads a tar stream on stdin
const CopyRole = "tug-copy"

func init() {
	reexec.Register(CopyRole, copyRole)
}

func copyRole() {
	if err := runCopyRole(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runCopyRole(args []string) error {
	switch {
	case len(args) == 2 && args[0] == "stat":
		st, err := StatInRoot("/", args[1])
		if err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(st)
	case len(args) == 4 && args[0] == "out":
		return CopyOut("/", args[1], args[2], args[3] == "1", os.Stdout)
	case len(args) == 3 && args[0] == "in":
		return CopyIn("/", args[1], os.Stdin, args[2] == "1")
	}
	return fmt.Errorf("%s: bad arguments %q", CopyRole, args)
}
