package commands

import (
	"errors"
	"fmt"
	"math/big"
	"path"
	goruntime "runtime"
	"strconv"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/docker/go-units"
	"github.com/sirupsen/logrus"

	rt "github.com/tugcli/tug/runtime"
)

// ResourceFlags are docker run's cgroup limits, taken by run and create.
type ResourceFlags struct {
	Memory       string      `short:"m" help:"Memory limit, e.g. 512m or 1g." placeholder:"BYTES"`
	MemorySwap   signedValue `name:"memory-swap" help:"Memory plus swap limit: -1 leaves swap unlimited (default: twice --memory)." placeholder:"BYTES"`
	CPUs         string      `name:"cpus" help:"Number of CPUs, e.g. 1.5." placeholder:"DECIMAL"`
	CPUShares    int64       `name:"cpu-shares" short:"c" help:"CPU shares (relative weight; 1024 is the default)."`
	PidsLimit    signedValue `name:"pids-limit" help:"Most processes the container may have (0 or -1: unlimited)." placeholder:"INT"`
	CgroupParent string      `name:"cgroup-parent" help:"Cgroup to make the container's cgroup in: absolute from the cgroup root, or relative to the one tug may write." placeholder:"PATH"`

	// res is what the flags ask for, once resolve has checked them; nil
	// when the container gets no cgroup.
	res *rt.Resources
}

// minMemory is Docker's smallest --memory.
const minMemory = 6 * 1024 * 1024

// resolve parses the flags with Docker's checks and decides whether the
// container gets a cgroup of its own: it does wherever tug can make one.
// Without cgroups, limits are an error that says what is missing; no
// limits is fine (said once with --debug).
func (f *ResourceFlags) resolve() error {
	res, err := f.parse()
	if err != nil {
		return err
	}
	if err := rt.CheckCgroups(res); err != nil {
		if res.Limited() {
			flags, verb := f.given(), "needs"
			if len(flags) > 1 {
				verb = "need"
			}
			return fmt.Errorf("%s %s a cgroup for the container: %w", strings.Join(flags, ", "), verb, err)
		}
		logrus.Debugf("the container gets no cgroup of its own, so no resource limits or stats: %v", err)
		return nil
	}
	f.res = res
	return nil
}

// resources is the container's cgroup, named after it, or nil.
func (f *ResourceFlags) resources(id string) *rt.Resources {
	if f.res == nil {
		return nil
	}
	res := *f.res
	res.Name = "tug-" + id
	return &res
}

// given names the limit flags that were set, for messages.
func (f *ResourceFlags) given() []string {
	var out []string
	for _, x := range []struct {
		set  bool
		name string
	}{
		{f.Memory != "", "--memory"}, {f.MemorySwap != "", "--memory-swap"}, {f.CPUs != "", "--cpus"},
		{f.CPUShares != 0, "--cpu-shares"}, {f.PidsLimit != "", "--pids-limit"}, {f.CgroupParent != "", "--cgroup-parent"},
	} {
		if x.set {
			out = append(out, x.name)
		}
	}
	return out
}

func (f *ResourceFlags) parse() (*rt.Resources, error) {
	res := &rt.Resources{}
	var err error
	if f.Memory != "" {
		if res.Memory, err = units.RAMInBytes(f.Memory); err != nil {
			return nil, fmt.Errorf("invalid argument %q for \"-m, --memory\" flag: %w", f.Memory, err)
		}
		if res.Memory != 0 && res.Memory < minMemory {
			return nil, errors.New("Minimum memory limit allowed is 6MB")
		}
	}
	switch f.MemorySwap {
	case "":
	case "-1":
		res.MemorySwap = -1
	default:
		if res.MemorySwap, err = units.RAMInBytes(string(f.MemorySwap)); err != nil {
			return nil, fmt.Errorf("invalid argument %q for \"--memory-swap\" flag: %w", f.MemorySwap, err)
		}
	}
	if res.MemorySwap != 0 && res.Memory == 0 {
		return nil, errors.New("You should always set the Memory limit when using Memoryswap limit, see usage")
	}
	if res.MemorySwap > 0 && res.MemorySwap < res.Memory {
		return nil, errors.New("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if f.CPUs != "" {
		nano, err := nanoCPUs(f.CPUs)
		if err != nil {
			return nil, fmt.Errorf("invalid argument %q for \"--cpus\" flag: %w", f.CPUs, err)
		}
		ncpu := int64(goruntime.NumCPU())
		if nano < 0 || nano > ncpu*1e9 || nano > 0 && nano < 1e7 {
			return nil, fmt.Errorf("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", ncpu, ncpu)
		}
		// Docker's period: 100ms; --cpus 1.5 is 150ms of it.
		res.CPUPeriod, res.CPUQuota = 100000, nano*100000/1e9
	}
	switch {
	case f.CPUShares < 0:
		return nil, fmt.Errorf("invalid --cpu-shares %d: shares are a positive weight", f.CPUShares)
	case f.CPUShares > 0:
		// As Docker: the kernel's range, 2 to 262144.
		res.CPUShares = uint64(min(max(f.CPUShares, 2), 262144))
	}
	if f.PidsLimit != "" {
		n, err := strconv.ParseInt(string(f.PidsLimit), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid argument %q for \"--pids-limit\" flag: %w", f.PidsLimit, err)
		}
		// As Docker: 0 or less is unlimited.
		res.PidsLimit = max(n, 0)
	}
	if f.CgroupParent != "" {
		p := path.Clean(f.CgroupParent)
		if p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "/../") || p == "/" || p == "." {
			return nil, fmt.Errorf("invalid --cgroup-parent %q: give a cgroup below the root of the tree", f.CgroupParent)
		}
		res.Parent = p
	}
	return res, nil
}

// nanoCPUs reads a decimal number of CPUs as Docker's --cpus does.
func nanoCPUs(s string) (int64, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("failed to parse %v as a rational number", s)
	}
	nano := r.Mul(r, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return 0, fmt.Errorf("value is too precise")
	}
	if !nano.Num().IsInt64() {
		return 0, fmt.Errorf("value is too large")
	}
	return nano.Num().Int64(), nil
}

// signedValue is a flag value that may be negative, as Docker's -1 for
// "unlimited": kong would take a "-1" after the flag for a short flag.
type signedValue string

// Decode implements kong.MapperValue.
func (v *signedValue) Decode(ctx *kong.DecodeContext) error {
	t := ctx.Scan.Peek()
	if s, ok := t.Value.(string); ok && t.Type == kong.UntypedToken && len(s) > 1 && s[0] == '-' {
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			ctx.Scan.Pop()
			*v = signedValue(s)
			return nil
		}
	}
	var s string
	if err := ctx.Scan.PopValueInto("value", &s); err != nil {
		return err
	}
	*v = signedValue(s)
	return nil
}
