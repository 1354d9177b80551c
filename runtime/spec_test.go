package runtime

import (
	"encoding/json"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSeccompFilterJSON(t *testing.T) {
	f := SeccompFilter{{Code: 0x20, K: 4}, {Code: 0x15, Jt: 1, Jf: 2, K: 0xc000003e}, {Code: 0x6, K: 0x7fff0000}}
	b, err := json.Marshal(Spec{Config: Config{Seccomp: f}})
	if err != nil {
		t.Fatal(err)
	}
	var got Spec
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Seccomp, f) {
		t.Fatalf("round trip: got %v, want %v", got.Seccomp, f)
	}
	// What an older tug saved with a created container: an array.
	old, _ := json.Marshal(struct{ Seccomp []unix.SockFilter }{f})
	got = Spec{}
	if err := json.Unmarshal(old, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Seccomp, f) {
		t.Fatalf("array: got %v, want %v", got.Seccomp, f)
	}
	// Unconfined stays nil both ways.
	b, _ = json.Marshal(Spec{})
	got = Spec{Config: Config{Seccomp: f}}
	if err := json.Unmarshal(b, &got); err != nil || got.Seccomp != nil {
		t.Fatalf("nil filter: got %v, %v", got.Seccomp, err)
	}
	if err := json.Unmarshal([]byte(`{"Seccomp":"AAAA"}`), &got); err == nil {
		t.Fatal("a filter of 3 bytes was accepted")
	}
}

// A Spec in JSON (what Run sends the init, and what is saved with a
// created container) has the init's Config fields at its top level, next
// to the rest; the init reads its part of it and ignores the rest.
func TestSpecJSONIsFlat(t *testing.T) {
	b, err := json.Marshal(Spec{Config: Config{Rootfs: "/r", Args: []string{"true"}}, Network: &Network{Mode: "none"}})
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	if top["Rootfs"] != "/r" || top["Network"] == nil || top["Config"] != nil {
		t.Fatalf("spec JSON %s: want Rootfs and Network at the top level", b)
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.Rootfs != "/r" || !reflect.DeepEqual(cfg.Args, []string{"true"}) {
		t.Fatalf("the init read %+v, %v from %s", cfg, err, b)
	}
}
