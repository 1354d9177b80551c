package runtime

import "github.com/tugcli/tug/runtime/initproc"

// DefaultCapabilities is Docker's default capability set (see initproc).
var DefaultCapabilities = initproc.DefaultCapabilities

// ResolveCapabilities applies --cap-add and --cap-drop to the default set
// (see initproc.ResolveCapabilities).
func ResolveCapabilities(add, drop []string, privileged bool) ([]string, error) {
	return initproc.ResolveCapabilities(add, drop, privileged)
}
