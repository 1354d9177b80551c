package commands

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestFormatterTable(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	f, err := NewFormatter(&b, "table {{.Repository}}\t{{.ID}}", imageHeaders)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(imageRow{Repository: "docker.io/library/busybox", ID: "0123456789ab"})
	f.Flush()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "REPOSITORY") || !strings.Contains(lines[0], "IMAGE ID") {
		t.Fatalf("table output:\n%s", b.String())
	}
	if !strings.HasPrefix(lines[1], "docker.io/library/busybox   0123456789ab") {
		t.Fatalf("row not aligned: %q", lines[1])
	}
}

func TestFormatterFuncs(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	f, err := NewFormatter(&b, `{{json .Repository}} {{upper .Tag}} {{truncate .ID 4}} {{join (split .Repository "/") ","}}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(imageRow{Repository: "a/b", Tag: "v1", ID: "abcdef"})
	f.Flush()
	if got := strings.TrimSpace(b.String()); got != `"a/b" V1 abcd a,b` {
		t.Fatalf("got %q", got)
	}
}

// Usage errors exit 125 with one line, as Docker's do; kong's own code is 80.
func TestUsageErrorExit125(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"nosuchcommand"}, {"images", "--nosuchflag"}, {"pull"}} {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &out, &errb)
		if code != 125 {
			t.Errorf("tug %v exited %d, want 125", args, code)
		}
		if !strings.HasPrefix(errb.String(), "Error: ") {
			t.Errorf("tug %v printed %q, want an 'Error: ' line", args, errb.String())
		}
	}
}

func TestHelpExitsZero(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &out, &errb); code != 0 {
		t.Fatalf("--help exited %d", code)
	}
	if !strings.Contains(out.String(), "pull") {
		t.Fatalf("--help does not list pull:\n%s", out.String())
	}
}
