package commands

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/docker/go-units"

	"github.com/tugcli/tug/image"
	rt "github.com/tugcli/tug/runtime"
)

// StatsCmd is `tug stats`.
type StatsCmd struct {
	All        bool     `short:"a" help:"Show all containers (default shows just running)."`
	NoStream   bool     `name:"no-stream" help:"Disable streaming stats and only pull the first result."`
	NoTrunc    bool     `name:"no-trunc" help:"Do not truncate output."`
	Format     string   `help:"Format output using a Go template, or 'table TEMPLATE', or 'json'." placeholder:"STRING"`
	Containers []string `arg:"" optional:"" name:"CONTAINER" help:"Containers to show (default: all running ones)."`
}

// statsRow is what --format templates see, with Docker's field names.
type statsRow struct {
	Container string
	ID        string
	Name      string
	CPUPerc   string
	MemUsage  string
	MemPerc   string
	NetIO     string
	BlockIO   string
	PIDs      string
}

var statsHeaders = map[string]string{
	"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
	"MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

const statsTable = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

// statsInterval is how often stats are read, and the span a CPU % is
// measured over.
const statsInterval = time.Second

// statsSample is one reading of one container.
type statsSample struct {
	ref   string // what the user named it, or its short id
	state *image.ContainerState
	usage *rt.Usage // nil when it does not run
	err   error     // why usage could not be read
	at    time.Time
}

// Run prints the containers' usage: once with --no-stream, else every
// second until interrupted. CPU % is measured between two readings, so
// the first table comes after one interval.
func (c *StatsCmd) Run(ctx context.Context, env *Env) error {
	if _, err := c.formatter(&bytes.Buffer{}); err != nil {
		return err
	}
	store, err := env.Store(ctx)
	if err != nil {
		return err
	}
	// Inside tug's user namespace now, rootless: what it may read there.
	if err := rt.CheckCgroups(nil); err != nil {
		return fmt.Errorf("tug stats reads the containers' cgroups, and there are none here: %w", err)
	}
	prev, err := c.sample(store, true)
	if err != nil {
		return err
	}
	clearScreen := !c.NoStream && liveTerminal(env.Stdout)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(statsInterval):
		}
		cur, err := c.sample(store, false)
		if err != nil {
			return err
		}
		var frame bytes.Buffer
		if clearScreen {
			frame.WriteString("\033[2J\033[H")
		}
		f, _ := c.formatter(&frame)
		for _, s := range cur {
			if err := f.Write(c.row(s, prev)); err != nil {
				return err
			}
		}
		if err := f.Flush(); err != nil {
			return err
		}
		if _, err := env.Stdout.Write(frame.Bytes()); err != nil {
			return err
		}
		if c.NoStream {
			return nil
		}
		prev = cur
	}
}

func (c *StatsCmd) formatter(w *bytes.Buffer) (*Formatter, error) {
	return listFormatter(w, c.Format, false, "", statsTable, statsHeaders)
}

// sample reads the containers to show. Named containers that are gone
// are an error the first time, and left out after.
func (c *StatsCmd) sample(store *image.Store, first bool) ([]*statsSample, error) {
	var out []*statsSample
	if len(c.Containers) > 0 {
		for _, ref := range c.Containers {
			st, err := store.LookupContainer(ref)
			if err != nil {
				if first {
					return nil, err
				}
				continue
			}
			out = append(out, &statsSample{ref: ref, state: st})
		}
	} else {
		states, err := store.ContainerStates()
		if err != nil {
			return nil, err
		}
		for _, st := range states {
			if c.All || st.Running() {
				out = append(out, &statsSample{ref: st.ID[:12], state: st})
			}
		}
	}
	for _, s := range out {
		s.at = time.Now()
		if s.state.Running() && s.state.Pid > 0 {
			s.usage, s.err = rt.ContainerUsage(s.state.Pid)
		}
	}
	return out, nil
}

// row formats a sample as Docker does: "--" where usage could not be
// read (a container without a cgroup of its own), zeros for one that
// does not run.
func (c *StatsCmd) row(s *statsSample, prev []*statsSample) statsRow {
	id := s.state.ID
	if !c.NoTrunc {
		id = id[:12]
	}
	r := statsRow{Container: s.ref, ID: id, Name: s.state.Name}
	if s.err != nil {
		r.CPUPerc, r.MemUsage, r.MemPerc, r.NetIO, r.BlockIO, r.PIDs = "--", "-- / --", "--", "--", "--", "--"
		return r
	}
	u := s.usage
	if u == nil {
		u = &rt.Usage{}
	}
	cpu := 0.0
	for _, p := range prev {
		if p.state.ID == s.state.ID && p.usage != nil && s.usage != nil && s.at.After(p.at) && u.CPU >= p.usage.CPU {
			cpu = float64(u.CPU-p.usage.CPU) / float64(s.at.Sub(p.at)) * 100
		}
	}
	mem := 0.0
	if u.MemoryLimit > 0 {
		mem = float64(u.Memory) / float64(u.MemoryLimit) * 100
	}
	r.CPUPerc = fmt.Sprintf("%.2f%%", cpu)
	r.MemUsage = units.BytesSize(float64(u.Memory)) + " / " + units.BytesSize(float64(u.MemoryLimit))
	r.MemPerc = fmt.Sprintf("%.2f%%", mem)
	r.NetIO = units.HumanSizeWithPrecision(float64(u.NetRx), 3) + " / " + units.HumanSizeWithPrecision(float64(u.NetTx), 3)
	if u.HostNetwork {
		r.NetIO = "--"
	}
	r.BlockIO = units.HumanSizeWithPrecision(float64(u.BlockRead), 3) + " / " + units.HumanSizeWithPrecision(float64(u.BlockWrite), 3)
	r.PIDs = fmt.Sprint(u.Pids)
	return r
}

// Help gives tug stats its examples.
func (*StatsCmd) Help() string {
	return `tug stats                             # every running container, refreshed each second
tug stats --no-stream web db          # one table, then exit
tug stats --no-stream --format '{{.Name}} {{.CPUPerc}} {{.MemUsage}}'`
}
