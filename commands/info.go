package commands

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/tugcli/tug/image"
	rt "github.com/tugcli/tug/runtime"
)

// InfoCmd is `tug info`.
type InfoCmd struct {
	Format string `short:"f" help:"Format output using a Go template." placeholder:"STRING"`
}

type infoReport struct {
	Version       string
	Rootless      bool
	IDMapping     string
	UIDMap        string
	GIDMap        string
	CgroupVersion string
	Store         image.StoreInfo
	Helpers       []rt.Helper
	// Config is the configuration file read, and the keys it set.
	Config string
	// FromPodman is what Podman's containers.conf set (see Config).
	FromPodman []string `json:",omitempty"`
	ConfigSet  []string
	// Host is what the host offers tug; Checks say what each part of it
	// means, one line each.
	Host   *rt.HostCheck
	Checks []rt.Finding
}

// Run reports the store and what this host offers tug.
func (c *InfoCmd) Run(ctx context.Context, env *Env) error {
	host := hostCheck(env)
	store, err := env.Store(ctx)
	if ee := (*ExitError)(nil); errors.As(err, &ee) && ee.Err == nil {
		// The namespace child printed the report.
		return err
	}
	if err != nil {
		// Without a store, the host section says why.
		r := infoReport{Version: Version, Rootless: rt.NeedsUserNamespace() || rt.InUserNamespace(), CgroupVersion: rt.CgroupVersion(), Helpers: rt.Helpers(), Host: host}
		r.Checks = append(hostFindings(host, r.Rootless, nil, err), isolationFinding(env))
		if c.Format != "" {
			writeObject(env.Stdout, c.Format, r)
		} else {
			writeHost(env.Stdout, host, r.Checks)
		}
		return err
	}
	si, err := store.Info()
	if err != nil {
		return err
	}
	r := infoReport{Version: Version, Store: si, CgroupVersion: rt.CgroupVersion(), Helpers: rt.Helpers(), Host: host}
	r.Rootless = rt.InUserNamespace()
	if env.Config != nil {
		if err := env.Config.fromPodman(); err != nil {
			return err
		}
		r.Config, r.ConfigSet, r.FromPodman = env.Config.Path, env.Config.Set, env.Config.FromPodman
	}
	r.Checks = append(hostFindings(host, r.Rootless, &si, nil), isolationFinding(env))
	uids, gids, err := rt.HostIDMaps()
	if err != nil {
		return fmt.Errorf("reading id maps: %w", err)
	}
	r.UIDMap, r.GIDMap = fmtMaps(uids), fmtMaps(gids)
	switch {
	case !r.Rootless:
		r.IDMapping = "none (running as root)"
	case rt.SingleIDMapping():
		r.IDMapping = "single-id: only your own id is mapped; files of pulled images are owned by you, and chown to another id in a RUN step fails"
	default:
		r.IDMapping = "subordinate ids from /etc/subuid and /etc/subgid"
	}
	if c.Format != "" {
		return writeObject(env.Stdout, c.Format, r)
	}
	w := env.Stdout
	fmt.Fprintf(w, "Client: tug %s\n", r.Version)
	fmt.Fprintf(w, " Rootless:       %t\n", r.Rootless)
	if r.Rootless {
		fmt.Fprintf(w, " Host user:      uid %s\n", os.Getenv("_CONTAINERS_ROOTLESS_UID"))
	}
	fmt.Fprintf(w, " ID mapping:     %s\n", r.IDMapping)
	fmt.Fprintf(w, "  UID map:       %s\n", r.UIDMap)
	fmt.Fprintf(w, "  GID map:       %s\n", r.GIDMap)
	fmt.Fprintf(w, " Cgroup version: %s\n", r.CgroupVersion)
	switch {
	case r.Config == "":
		fmt.Fprintf(w, " Config file:    none (%s would be read)\n", configPath())
	case len(r.ConfigSet) == 0:
		fmt.Fprintf(w, " Config file:    %s (sets nothing)\n", r.Config)
	default:
		fmt.Fprintf(w, " Config file:    %s (sets %s)\n", r.Config, strings.Join(r.ConfigSet, ", "))
	}
	for _, f := range r.FromPodman {
		fmt.Fprintf(w, " Podman config:  %s\n", f)
	}
	writeHost(w, r.Host, r.Checks)
	fmt.Fprintf(w, "Store:\n")
	fmt.Fprintf(w, " Graph root:     %s\n", si.GraphRoot)
	fmt.Fprintf(w, " Run root:       %s\n", si.RunRoot)
	fmt.Fprintf(w, " Storage driver: %s\n", si.Driver)
	for _, kv := range si.DriverStatus {
		fmt.Fprintf(w, "  %s: %s\n", kv[0], kv[1])
	}
	fmt.Fprintf(w, " Images:         %d\n", si.Images)
	fmt.Fprintf(w, " Containers:     %d\n", si.Containers)
	fmt.Fprintf(w, "Helpers:\n")
	for _, h := range r.Helpers {
		where := h.Path
		if where == "" {
			where = fmt.Sprintf("not found (package %s)", h.Package)
		}
		fmt.Fprintf(w, " %-15s %s\n", h.Name+":", where)
	}
	return nil
}

func fmtMaps(m []rt.IDMap) string {
	var parts []string
	for _, x := range m {
		parts = append(parts, fmt.Sprintf("%d:%d:%d", x.ContainerID, x.HostID, x.Size))
	}
	return strings.Join(parts, ",")
}
