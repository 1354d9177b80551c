package runtime

// Resources are a container's cgroup limits (docker run's --memory,
// --cpus, --pids-limit, ...).
type Resources struct{}

// cgroup is a container's cgroup, removed when the container has exited.
type cgroup struct{}

// startCgroup creates the container's cgroup and moves pid into it; a nil
// res needs none and returns a nil *cgroup.
func startCgroup(res *Resources, pid int) (*cgroup, error) { return nil, nil }

// remove deletes the cgroup; a nil receiver does nothing.
func (c *cgroup) remove() {}
