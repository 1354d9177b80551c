package runtime

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestReadIDMap(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "uid_map")
	if err := os.WriteFile(p, []byte("         0       1000          1\n         1     100000      65536\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadIDMap(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []IDMap{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadIDMap = %v, want %v", got, want)
	}
	if err := os.WriteFile(p, []byte("0 x 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadIDMap(p); err == nil {
		t.Fatal("ReadIDMap accepted a non-numeric host id")
	}
}

func TestPlanUserNamespaceMapsSelfFirst(t *testing.T) {
	ns, err := PlanUserNamespace()
	if err != nil {
		t.Fatal(err)
	}
	if len(ns.UIDMap) == 0 || ns.UIDMap[0] != (IDMap{ContainerID: 0, HostID: os.Getuid(), Size: 1}) {
		t.Fatalf("first uid map line = %v, want the caller mapped to 0", ns.UIDMap)
	}
	if len(ns.UIDMap) == 1 && ns.Warning == "" {
		t.Fatal("single-id mapping planned without a warning")
	}
	if len(ns.UIDMap) > 1 && ns.UIDMap[1].ContainerID != 1 {
		t.Fatalf("subordinate range starts at %d inside, want 1", ns.UIDMap[1].ContainerID)
	}
}
