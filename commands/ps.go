package commands

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/docker/go-units"

	"github.com/tugcli/tug/image"
	rt "github.com/tugcli/tug/runtime"
)

// PsCmd is `tug ps`.
type PsCmd struct {
	All     bool     `short:"a" help:"Show all containers (default shows just running)."`
	Quiet   bool     `short:"q" help:"Only display container IDs."`
	NoTrunc bool     `name:"no-trunc" help:"Don't truncate output."`
	Format  string   `help:"Format output using a Go template, or 'table TEMPLATE', or 'json'." placeholder:"STRING"`
	Filter  []string `short:"f" sep:"none" help:"Filter output: status=running|exited|created, name=NAME, id=ID, label=KEY[=VALUE]."`
}

// psRow is what --format templates see, with Docker's field names.
type psRow struct {
	ID         string
	Image      string
	Command    string
	CreatedAt  string
	RunningFor string
	Status     string
	State      string
	Ports      string
	Names      string
	// Labels is "k=v,k2=v2", sorted, as docker ps shows it.
	Labels string

	labels map[string]string
}

// Label is the value of one label ({{.Label "KEY"}}), as docker ps has it.
func (r psRow) Label(key string) string { return r.labels[key] }

var psHeaders = map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
	"RunningFor": "CREATED", "Status": "STATUS", "State": "STATE", "Ports": "PORTS", "Names": "NAMES", "Labels": "LABELS",
}

// Run lists containers, checking each "running" record against the live
// process, so a container whose tug was killed shows as exited.
func (c *PsCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	states, err := store.ContainerStates()
	if err != nil {
		return err
	}
	f, err := listFormatter(env.Stdout, c.Format, c.Quiet, "{{.ID}}",
		"table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}", psHeaders)
	if err != nil {
		return err
	}
	for _, st := range states {
		if !c.All && !st.Running() {
			continue
		}
		ok, err := c.matches(st)
		if err != nil {
			return &ExitError{Code: 125, Err: err}
		}
		if !ok {
			continue
		}
		if err := f.Write(c.row(st)); err != nil {
			return err
		}
	}
	return f.Flush()
}

func (c *PsCmd) matches(st *image.ContainerState) (bool, error) {
	for _, flt := range c.Filter {
		k, v, ok := strings.Cut(flt, "=")
		if !ok {
			return false, fmt.Errorf("bad format of filter %q (expected name=value)", flt)
		}
		switch k {
		case "status":
			if st.Status != v {
				return false, nil
			}
		case "name":
			if !strings.Contains(st.Name, v) {
				return false, nil
			}
		case "id":
			if !strings.HasPrefix(st.ID, v) {
				return false, nil
			}
		case "label":
			// label=KEY: has it; label=KEY=VALUE: has that value.
			lk, lv, withValue := strings.Cut(v, "=")
			if got, ok := st.Labels[lk]; !ok || withValue && got != lv {
				return false, nil
			}
		default:
			return false, fmt.Errorf("invalid filter %q: tug filters by status, name, id and label", k)
		}
	}
	return true, nil
}

func (c *PsCmd) row(st *image.ContainerState) psRow {
	id, cmd := st.ID, strings.Join(st.Command, " ")
	if !c.NoTrunc {
		id = id[:12]
		if len(cmd) > 20 {
			cmd = cmd[:19] + "…"
		}
	}
	return psRow{
		ID:         id,
		Image:      st.Image,
		Command:    fmt.Sprintf("%q", cmd),
		CreatedAt:  st.Created.Format("2006-01-02 15:04:05 -0700 MST"),
		RunningFor: units.HumanDuration(time.Since(st.Created)) + " ago",
		Status:     statusText(st),
		State:      st.Status,
		Names:      st.Name,
		Ports:      runningPorts(st),
		Labels:     joinLabels(st.Labels),
		labels:     st.Labels,
	}
}

// statusText is Docker's STATUS column: Up 3 seconds, Exited (0) 2 minutes ago, Created.
func statusText(st *image.ContainerState) string {
	switch st.Status {
	case image.StateRunning:
		return "Up " + units.HumanDuration(time.Since(st.StartedAt))
	case image.StateExited:
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, units.HumanDuration(time.Since(st.FinishedAt)))
	case image.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, units.HumanDuration(time.Since(st.FinishedAt)))
	}
	return "Created"
}

// RmCmd is `tug rm`.
type RmCmd struct {
	Force      bool     `short:"f" help:"Force the removal of a running container (uses SIGKILL)."`
	Volumes    bool     `short:"v" help:"Remove the container's anonymous volumes."`
	Containers []string `arg:"" name:"CONTAINER" help:"Containers to remove, by name or id."`
}

// Run removes each container and prints the name or id it was given, as
// Docker does; exits 1 if any failed.
func (c *RmCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	return eachRef(env, c.Containers, func(ref string) error {
		// -f kills the container's tug: its cgroup is left to remove here.
		var cgroup []string
		if st, err := store.LookupContainer(ref); err == nil && c.Force && st.Running() {
			cgroup = rt.ContainerCgroup(st.Pid)
		}
		st, err := store.RemoveContainer(ref, c.Force)
		rt.RemoveCgroup(cgroup)
		if err == nil && c.Volumes {
			removeVolumes(env, store, st.AnonymousVolumes)
		}
		return err
	})
}

// ContainerCmd is `tug container`, Docker's management command.
type ContainerCmd struct {
	Ls      PsCmd               `cmd:"" aliases:"list,ps" help:"List containers."`
	Rm      RmCmd               `cmd:"" aliases:"remove" help:"Remove one or more containers."`
	Run     RunCmd              `cmd:"" help:"Create and run a new container from an image."`
	Prune   ContainerPruneCmd   `cmd:"" help:"Remove all stopped containers."`
	Inspect ContainerInspectCmd `cmd:"" help:"Display detailed information on one or more containers."`
	Create  CreateCmd           `cmd:"" help:"Create a new container without starting it."`
	Start   StartCmd            `cmd:"" help:"Start one or more stopped containers."`
	Stop    StopCmd             `cmd:"" help:"Stop one or more running containers."`
	Restart RestartCmd          `cmd:"" help:"Restart one or more containers."`
	Kill    KillCmd             `cmd:"" help:"Kill one or more running containers."`
	Exec    ExecCmd             `cmd:"" help:"Execute a command in a running container."`
	Logs    LogsCmd             `cmd:"" help:"Fetch the logs of a container."`
	Port    PortCmd             `cmd:"" help:"List port mappings or a specific mapping for the container."`
	Rename  RenameCmd           `cmd:"" help:"Rename a container."`
	Wait    WaitCmd             `cmd:"" help:"Block until one or more containers stop, then print their exit codes."`
	Stats   StatsCmd            `cmd:"" help:"Display a live stream of container(s) resource usage statistics."`
	Cp      CpCmd               `cmd:"" help:"Copy files/folders between a container and the local filesystem."`
}

// ContainerPruneCmd is `tug container prune`.
type ContainerPruneCmd struct {
	Force bool `short:"f" help:"Do not prompt for confirmation (tug never prompts)."`
}

// Run removes every container that is not running.
func (c *ContainerPruneCmd) Run(ctx context.Context, env *Env) error {
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	removed, err := store.PruneContainers()
	fmt.Fprintln(env.Stdout, "Deleted Containers:")
	for _, id := range removed {
		fmt.Fprintln(env.Stdout, id)
	}
	return err
}

// ContainerInspectCmd is `tug container inspect`.
type ContainerInspectCmd struct {
	Format string   `short:"f" help:"Format output using a Go template." placeholder:"STRING"`
	Refs   []string `arg:"" name:"CONTAINER" help:"Containers to inspect."`
}

// Run prints containers the way docker container inspect does.
func (c *ContainerInspectCmd) Run(ctx context.Context, env *Env) error {
	return (&InspectCmd{Format: c.Format, Type: "container", Refs: c.Refs}).Run(ctx, env)
}

// containerInspect is a container in the shape of Docker's inspect.
type containerInspect struct {
	ID      string `json:"Id"`
	Created string
	Path    string
	Args    []string
	State   struct {
		Status     string
		Running    bool
		Restarting bool
		Pid        int
		ExitCode   int
		StartedAt  string
		FinishedAt string
	}
	Image        string
	Name         string
	RestartCount int
	HostConfig   struct {
		NetworkMode   string
		RestartPolicy struct {
			Name              string
			MaximumRetryCount int
		}
		PortBindings map[string][]portBinding
	}
	NetworkSettings struct {
		Ports map[string][]portBinding
	}
	Config struct {
		Hostname string
		Env      []string
		Cmd      []string
		Image    string
		Labels   map[string]string
	}
}

func inspectContainer(st *image.ContainerState) *containerInspect {
	out := &containerInspect{ID: st.ID, Created: st.Created.Format(time.RFC3339Nano), Image: "sha256:" + st.ImageID, Name: "/" + st.Name}
	if len(st.Command) > 0 {
		out.Path, out.Args = st.Command[0], st.Command[1:]
	}
	out.State.Status, out.State.Running, out.State.Pid, out.State.ExitCode = st.Status, st.Running(), st.Pid, st.ExitCode
	out.State.StartedAt, out.State.FinishedAt = st.StartedAt.Format(time.RFC3339Nano), st.FinishedAt.Format(time.RFC3339Nano)
	out.Config.Hostname, out.Config.Env, out.Config.Cmd, out.Config.Image = st.Hostname, st.Env, st.Command, st.Image
	out.Config.Labels = st.Labels
	if out.Config.Labels == nil {
		out.Config.Labels = map[string]string{}
	}
	out.State.Restarting = st.Status == image.StateRestarting
	out.RestartCount = st.RestartCount
	if p, err := parseRestart(st.Restart); err == nil {
		out.HostConfig.RestartPolicy.Name, out.HostConfig.RestartPolicy.MaximumRetryCount = p.name, p.max
	}
	out.HostConfig.NetworkMode = st.Network
	out.HostConfig.PortBindings = map[string][]portBinding{}
	for _, p := range st.Ports {
		k := fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)
		out.HostConfig.PortBindings[k] = append(out.HostConfig.PortBindings[k], portBinding{HostIP: p.HostIP, HostPort: fmt.Sprint(p.HostPort)})
	}
	if st.Running() {
		out.NetworkSettings.Ports = out.HostConfig.PortBindings
	}
	return out
}

// portBinding is one host side of a published port, as Docker's inspect
// shows it.
type portBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string
}

// runningPorts is the PORTS column: published ports while the container
// runs, as Docker shows them.
func runningPorts(st *image.ContainerState) string {
	if st.Status != image.StateRunning {
		return ""
	}
	return formatPorts(st.Ports)
}

// joinLabels is labels as "k=v,k2=v2", sorted by key.
func joinLabels(labels map[string]string) string {
	kvs := make([]string, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		kvs = append(kvs, k+"="+labels[k])
	}
	return strings.Join(kvs, ",")
}
