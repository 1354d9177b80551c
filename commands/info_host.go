package commands

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/tugcli/tug/image"
	rt "github.com/tugcli/tug/runtime"
)

// envHostCheck carries the outer tug's host check into its user namespace
// child, where `tug info` prints it: inside, the child is uid 0 in a
// namespace of its own and would see neither the user nor the host.
const envHostCheck = "_TUG_HOST_CHECK"

// hostCheck returns the host as the tug the user started sees it. The
// outer tug of a rootless command checks, and leaves the result in its
// environment for the namespace child it is about to start.
func hostCheck(env *Env) *rt.HostCheck {
	if rt.InUserNamespace() {
		var h rt.HostCheck
		if err := json.Unmarshal([]byte(os.Getenv(envHostCheck)), &h); err == nil {
			os.Unsetenv(envHostCheck)
			return &h
		}
	}
	h := rt.CheckHost()
	if c, err := env.isolation(); err == nil && c.UserNamespace() {
		if b, err := json.Marshal(h); err == nil {
			os.Setenv(envHostCheck, string(b))
		}
	}
	return h
}

// hostFindings is the host section of `tug info`: the host's findings
// with the storage driver's after the id mapping.
func hostFindings(h *rt.HostCheck, rootless bool, store *image.StoreInfo, storeErr error) []rt.Finding {
	var out []rt.Finding
	for _, f := range h.Findings(rootless) {
		out = append(out, f)
		if f.Name == "id mapping" {
			out = append(out, storageFinding(h, store, storeErr))
		}
	}
	return out
}

// isolationFinding says how run and build confine their commands here
// when --isolation is left out.
func isolationFinding(env *Env) rt.Finding {
	f := rt.Finding{Name: "isolation"}
	c, err := env.isolation()
	switch {
	case err != nil:
		f.State = "none works"
		f.Consequence = oneLine(err.Error())
	case c.Isolation == rt.IsolationChroot:
		f.State = "chroot (" + c.Why + ")"
		f.Consequence = "containers and RUN steps share this host's network, processes and IPC; --network must be host"
	default:
		f.State = string(c.Isolation) + " (" + c.Why + ")"
	}
	return f
}

func storageFinding(h *rt.HostCheck, si *image.StoreInfo, storeErr error) rt.Finding {
	f := rt.Finding{Name: "storage"}
	if storeErr != nil {
		f.State = "not opened"
		f.Consequence = oneLine(storeErr.Error())
		return f
	}
	c := si.DriverChoice
	if c.Driver == "" {
		c.Driver = si.Driver
	}
	f.State = c.String()
	switch {
	case si.Driver == "vfs":
		f.Consequence = "every layer is a full copy: pulls, builds and container starts are slower and use more disk"
	case c.MountProgram != "":
		f.Consequence = "layers are mounted through FUSE: slower than native overlay"
	}
	return f
}

// writeHost prints the host section.
func writeHost(w io.Writer, h *rt.HostCheck, checks []rt.Finding) {
	fmt.Fprintf(w, "Host:\n")
	fmt.Fprintf(w, " %-16s %s (uid %d, %s)\n", "kernel:", h.Kernel, h.UID, h.User)
	for _, f := range checks {
		s := f.State
		if f.Consequence != "" {
			s += ": " + f.Consequence
		}
		fmt.Fprintf(w, " %-16s %s\n", f.Name+":", s)
	}
}
