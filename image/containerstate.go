package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.podman.io/storage"
	"go.podman.io/storage/pkg/ioutils"
)

// Container states, in Docker's words.
const (
	StateCreated = "created"
	StateRunning = "running"
	StateExited  = "exited"
	// StateRestarting: the container exited and its monitor will start it
	// again (--restart).
	StateRestarting = "restarting"
)

// stateKey is the container big-data item holding tug's record.
const stateKey = "tug-state"

// ContainerState is tug's record of a container, kept with it in the store.
type ContainerState struct {
	ID         string
	Name       string
	Image      string // as the user named it
	ImageID    string
	Command    []string
	Hostname   string
	Env        []string
	Created    time.Time
	Status     string
	Pid        int // the container's init, while it runs
	TugPid     int // the tug process that runs it
	StartedAt  time.Time
	FinishedAt time.Time
	ExitCode   int
	// AutoRemove: the container goes when it exits (--rm).
	AutoRemove bool
	// OpenStdin: -i; a detached container's stdin then stays open (with
	// nothing written to it), as Docker keeps it for -dit.
	OpenStdin bool `json:",omitempty"`
	// StopSignal and StopTimeout are what stop uses: --stop-signal or the
	// image's STOPSIGNAL, and --stop-timeout.
	StopSignal  string `json:",omitempty"`
	StopTimeout *int   `json:",omitempty"`
	// Restart is the --restart policy; RestartCount how often the monitor
	// has restarted the container.
	Restart      string `json:",omitempty"`
	RestartCount int    `json:",omitempty"`
	// Volumes are the named volumes the container uses; AnonymousVolumes
	// those among them made for it (-v DEST), which go with it under
	// --rm and rm -v.
	Volumes          []string `json:",omitempty"`
	AnonymousVolumes []string `json:",omitempty"`
	// Network is the container's network mode; Ports its published ports.
	Network string        `json:",omitempty"`
	Ports   []PortBinding `json:",omitempty"`
	// Labels are the image's labels with --label and --label-file's over
	// them.
	Labels map[string]string `json:",omitempty"`
}

// PortBinding is one published port.
type PortBinding struct {
	HostIP        string `json:",omitempty"`
	HostPort      uint16
	ContainerPort uint16
	Protocol      string
}

// Running reports whether the container runs now: its record says so and
// the tug process that runs it is alive. A record left "running" by a tug
// that was killed reads as exited.
func (c *ContainerState) Running() bool {
	return (c.Status == StateRunning || c.Status == StateRestarting) && c.TugPid > 0 && processAlive(c.TugPid)
}

// abandoned reports whether the container was to be removed as it exited
// (--rm) and nothing will: it has exited and the tug that ran it is gone
// (killed before it could remove it).
func (c *ContainerState) abandoned() bool {
	return c.AutoRemove && c.Status == StateExited && !(c.TugPid > 0 && processAlive(c.TugPid))
}

// removeAbandoned removes an abandoned container and the anonymous
// volumes made for it, as its tug would have; it reports whether the
// container went.
func (s *Store) removeAbandoned(st *ContainerState) bool {
	if s.DeleteContainer(st.ID) != nil {
		return false
	}
	for _, v := range st.AnonymousVolumes {
		_ = s.RemoveVolume(v)
	}
	return true
}

// Settle turns a stale "running" record into an exited one.
func (c *ContainerState) Settle() {
	if (c.Status == StateRunning || c.Status == StateRestarting) && !c.Running() {
		c.Status = StateExited
		c.ExitCode = 137
		if c.FinishedAt.IsZero() {
			c.FinishedAt = c.StartedAt
		}
	}
}

// SaveState writes a container's record.
func (s *Store) SaveState(st *ContainerState) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := s.s.SetContainerBigData(st.ID, stateKey, raw); err != nil {
		return fmt.Errorf("recording the state of container %s: %w", shortHex(st.ID), err)
	}
	return nil
}

// runStateFile, in a container's run directory, is the record of a
// container that `run --rm` runs in the foreground: gone with the
// container, and cheaper to write than the record a kept container has
// (stateKey), which rewrites the store's list of containers.
const runStateFile = "tug-state.json"

// SaveRunState writes the record of a container that is removed when it
// exits (`run --rm` in the foreground), so that ps, stop, kill and wait
// find it while it runs.
func (s *Store) SaveRunState(st *ContainerState) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	dir, err := s.s.ContainerRunDirectory(st.ID)
	if err == nil {
		err = ioutils.AtomicWriteFile(filepath.Join(dir, runStateFile), raw, 0o600)
	}
	if err != nil {
		return fmt.Errorf("recording the state of container %s: %w", shortHex(st.ID), err)
	}
	return nil
}

// exitsDir, in the run root, keeps the exit status of each container
// removed as it exited (--rm) for exitsKept: wait and start -a may look
// for it after the container has gone (they poll every 50 ms).
const (
	exitsDir  = "tug-exits"
	exitsKept = 10 * time.Minute
	// exitsPruned, in exitsDir, is touched at each pruning: at most one a
	// minute, so that a busy host's runs do not each list the directory.
	exitsPruned = ".pruned"
)

// RecordExit keeps the exit status of container id, about to be removed,
// and now and then drops those kept longer than exitsKept.
func (s *Store) RecordExit(id string, code int) error {
	dir := filepath.Join(s.s.RunRoot(), exitsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("recording the exit status of container %s: %w", shortHex(id), err)
	}
	marker := filepath.Join(dir, exitsPruned)
	if fi, err := os.Stat(marker); err != nil || time.Since(fi.ModTime()) > time.Minute {
		_ = os.WriteFile(marker, nil, 0o600)
		now := time.Now()
		_ = os.Chtimes(marker, now, now)
		if entries, err := os.ReadDir(dir); err == nil {
			for _, e := range entries {
				if fi, err := e.Info(); err == nil && e.Name() != exitsPruned && time.Since(fi.ModTime()) > exitsKept {
					_ = os.Remove(filepath.Join(dir, e.Name()))
				}
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, id), []byte(strconv.Itoa(code)), 0o600); err != nil {
		return fmt.Errorf("recording the exit status of container %s: %w", shortHex(id), err)
	}
	return nil
}

// RecordedExit is the exit status RecordExit kept for container id (a
// full id), if any.
func (s *Store) RecordedExit(id string) (int, bool) {
	raw, err := os.ReadFile(filepath.Join(s.s.RunRoot(), exitsDir, filepath.Base(id)))
	if err != nil {
		return 0, false
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	return code, err == nil
}

// ContainerStates lists every container in the store, newest first. A
// container tug did not make (Podman's, say) gets a record built from the
// store's own. A --rm container whose tug was killed is removed instead
// of listed, as Docker's daemon would have removed it when it exited.
func (s *Store) ContainerStates() ([]*ContainerState, error) {
	ctrs, err := s.s.Containers()
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	var out []*ContainerState
	for i := range ctrs {
		st := s.stateOf(&ctrs[i])
		if st.abandoned() && s.removeAbandoned(st) {
			continue
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

func (s *Store) stateOf(c *storage.Container) *ContainerState {
	st := &ContainerState{}
	raw, err := s.s.ContainerBigData(c.ID, stateKey)
	if err != nil {
		if dir, derr := s.s.ContainerRunDirectory(c.ID); derr == nil {
			raw, err = os.ReadFile(filepath.Join(dir, runStateFile))
		}
	}
	if err == nil && json.Unmarshal(raw, st) == nil {
		st.Settle()
		// The store's name is the truth: a rename does not wait for the
		// container's monitor to rewrite its record.
		if len(c.Names) > 0 {
			st.Name = c.Names[0]
		}
		return st
	}
	st = &ContainerState{ID: c.ID, ImageID: c.ImageID, Created: c.Created, Status: StateCreated}
	if len(c.Names) > 0 {
		st.Name = c.Names[0]
	}
	st.Image = shortHex(c.ImageID)
	return st
}

// ErrNoSuchContainer is returned when no container matches.
var ErrNoSuchContainer = errors.New("no such container")

// LookupContainer finds a container by name, full id or unique id prefix.
func (s *Store) LookupContainer(ref string) (*ContainerState, error) {
	ctrs, err := s.s.Containers()
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	var prefix []*storage.Container
	for i := range ctrs {
		c := &ctrs[i]
		if c.ID == ref {
			return s.stateOf(c), nil
		}
		for _, n := range c.Names {
			if n == ref || n == strings.TrimPrefix(ref, "/") {
				return s.stateOf(c), nil
			}
		}
		if strings.HasPrefix(c.ID, ref) {
			prefix = append(prefix, c)
		}
	}
	if len(prefix) == 1 {
		return s.stateOf(prefix[0]), nil
	}
	if len(prefix) > 1 {
		return nil, fmt.Errorf("%s: container id prefix matches %d containers: give more digits", ref, len(prefix))
	}
	return nil, fmt.Errorf("%s: %w", ref, ErrNoSuchContainer)
}

// RemoveContainer removes a container. A running one is refused unless
// force, which kills it first (its tug then exits with 137).
func (s *Store) RemoveContainer(ref string, force bool) (*ContainerState, error) {
	st, err := s.LookupContainer(ref)
	if err != nil {
		return nil, err
	}
	if st.Running() {
		if !force {
			return nil, fmt.Errorf("cannot remove container %q: container is running: stop the container before removing it, or force remove with -f", ref)
		}
		if p, err := os.FindProcess(st.TugPid); err == nil {
			_ = p.Signal(os.Kill)
		}
		// The container (and what serves its network) dies after its tug.
		deadline := time.Now().Add(5 * time.Second)
		for (processAlive(st.TugPid) || (st.Pid > 0 && processAlive(st.Pid))) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := s.DeleteContainer(st.ID); err != nil {
		return nil, err
	}
	return st, nil
}

// validName is Docker's rule for container names.
var validName = lazyRegexp(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ValidateName checks a container name as Docker does.
func ValidateName(name string) error {
	if !validName().MatchString(strings.TrimPrefix(name, "/")) {
		return fmt.Errorf("invalid container name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least two characters", name)
	}
	return nil
}

// RenameContainer gives a container a new name.
func (s *Store) RenameContainer(ref, name string) error {
	name = strings.TrimPrefix(name, "/")
	if err := ValidateName(name); err != nil {
		return err
	}
	st, err := s.LookupContainer(ref)
	if err != nil {
		return err
	}
	if st.Name == name {
		return fmt.Errorf("renaming container %s: it is already named %s", ref, name)
	}
	if other, err := s.LookupContainer(name); err == nil && other.ID != st.ID && other.Name == name {
		return fmt.Errorf("the container name %q is already in use by container %s: remove that container or choose another name", name, shortHex(other.ID))
	}
	if err := s.s.SetNames(st.ID, []string{name}); err != nil {
		if errors.Is(err, storage.ErrDuplicateName) {
			return fmt.Errorf("the container name %q is already in use: remove that container or choose another name", name)
		}
		return fmt.Errorf("renaming container %s: %w", ref, err)
	}
	st.Name = name
	return s.SaveState(st)
}

// PruneContainers removes every container that is not running and
// returns their ids, in the order removed.
func (s *Store) PruneContainers() ([]string, error) {
	states, err := s.ContainerStates()
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, st := range states {
		if st.Running() {
			continue
		}
		if err := s.DeleteContainer(st.ID); err != nil {
			return removed, err
		}
		removed = append(removed, st.ID)
	}
	return removed, nil
}

// UniqueName returns a Docker-style adjective_surname name no container
// in the store has.
func (s *Store) UniqueName() (string, error) {
	ctrs, err := s.s.Containers()
	if err != nil {
		return "", fmt.Errorf("listing containers: %w", err)
	}
	taken := map[string]bool{}
	for _, c := range ctrs {
		for _, n := range c.Names {
			taken[n] = true
		}
	}
	for i := 0; ; i++ {
		n := adjectives[rand.IntN(len(adjectives))] + "_" + surnames[rand.IntN(len(surnames))]
		if i > 10 {
			n += strconv.Itoa(rand.IntN(10))
		}
		if !taken[n] {
			return n, nil
		}
	}
}

var adjectives = []string{
	"admiring", "adoring", "affectionate", "agitated", "amazing", "angry", "awesome", "beautiful",
	"blissful", "bold", "boring", "brave", "busy", "charming", "clever", "compassionate",
	"competent", "condescending", "confident", "cool", "cranky", "crazy", "dazzling", "determined",
	"distracted", "dreamy", "eager", "ecstatic", "elastic", "elated", "elegant", "eloquent",
	"epic", "exciting", "fervent", "festive", "flamboyant", "focused", "friendly", "frosty",
	"funny", "gallant", "gifted", "goofy", "gracious", "happy", "hardcore", "heuristic",
	"hopeful", "hungry", "infallible", "inspiring", "jolly", "jovial", "keen", "kind",
	"laughing", "loving", "lucid", "magical", "modest", "musing", "mystifying", "naughty",
	"nervous", "nice", "nifty", "nostalgic", "objective", "optimistic", "peaceful", "pedantic",
	"pensive", "practical", "priceless", "quirky", "quizzical", "relaxed", "reverent", "romantic",
	"sad", "serene", "sharp", "silly", "sleepy", "stoic", "strange", "stupefied", "suspicious",
	"sweet", "tender", "thirsty", "trusting", "unruffled", "upbeat", "vibrant", "vigilant",
	"vigorous", "wizardly", "wonderful", "xenodochial", "youthful", "zealous", "zen",
}

var surnames = []string{
	"agnesi", "albattani", "allen", "archimedes", "babbage", "banach", "bardeen", "bell",
	"bhabha", "black", "blackwell", "bohr", "booth", "borg", "bose", "brahmagupta", "brown",
	"cannon", "carson", "cerf", "chandrasekhar", "clarke", "curie", "darwin", "davinci",
	"dijkstra", "einstein", "elion", "engelbart", "euclid", "euler", "faraday", "fermat",
	"fermi", "feynman", "franklin", "galileo", "gauss", "goldberg", "goodall", "hamilton",
	"hawking", "heisenberg", "hermann", "hodgkin", "hopper", "hypatia", "jackson", "jang",
	"johnson", "kalam", "keller", "kepler", "khorana", "knuth", "kowalevski", "lalande",
	"lamport", "leakey", "lederberg", "lovelace", "lumiere", "mahavira", "mayer", "mccarthy",
	"mcclintock", "meitner", "mendel", "mirzakhani", "morse", "newton", "nightingale", "nobel",
	"noether", "pascal", "pasteur", "payne", "perlman", "pike", "poincare", "ptolemy", "raman",
	"ramanujan", "ride", "ritchie", "rosalind", "saha", "sammet", "shannon", "shockley",
	"sinoussi", "snyder", "stonebraker", "swartz", "tesla", "thompson", "torvalds", "turing",
	"varahamihira", "wescoff", "wiles", "williams", "wilson", "wozniak", "wright", "yalow", "yonath",
}
