package runtime

import stdruntime "runtime"

// DefaultConfinement gives spec what `tug run` gives a container by
// default: Docker's capability set, its seccomp profile and no_new_privs.
func DefaultConfinement(spec *Spec) error {
	caps, err := ResolveCapabilities(nil, nil, false)
	if err != nil {
		return err
	}
	spec.Capabilities = caps
	spec.NoNewPrivileges = true
	spec.Seccomp, err = CompileSeccomp(DefaultSeccompProfile(), caps, stdruntime.GOARCH)
	return err
}
