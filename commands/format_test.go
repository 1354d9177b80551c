package commands

import (
	"bytes"
	"context"
	"errors"
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

// Docker's template functions, with Docker's semantics.
func TestTemplateFuncs(t *testing.T) {
	t.Parallel()
	row := struct {
		Name   string
		Empty  string
		Labels map[string]string
		Ports  []int
		Words  []string
	}{Name: "hello world-wide web_app", Labels: map[string]string{"b": "2", "a": "1"}, Ports: []int{80, 443}, Words: []string{"x", "y"}}
	for tmpl, want := range map[string]string{
		`{{title .Name}}`:                      "Hello World-Wide Web_app",
		`{{upper .Name}}`:                      "HELLO WORLD-WIDE WEB_APP",
		`{{lower "AbC"}}`:                      "abc",
		`{{truncate .Name 5}}`:                 "hello",
		`{{truncate "héllo" 2}}`:               "hé",
		`{{truncate "ab" 5}}`:                  "ab",
		`[{{pad "x" 1 2}}]`:                    "[ x  ]",
		`[{{pad .Empty 1 2}}]`:                 "[]",
		`{{join .Words ","}}`:                  "x,y",
		`{{join .Ports ", "}}`:                 "80, 443",
		`{{join .Labels ";"}}`:                 "1;2",
		`{{join (split "a/b/c" "/") " "}}`:     "a b c",
		`{{json .Words}}`:                      `["x","y"]`,
		`{{json "<&>"}}`:                       `"<&>"`,
		`{{range .Words}}{{println .}}{{end}}`: "x\ny",
	} {
		var b bytes.Buffer
		f, err := NewFormatter(&b, tmpl, nil)
		if err != nil {
			t.Fatalf("%s: %v", tmpl, err)
		}
		if err := f.Write(row); err != nil {
			t.Fatalf("%s: %v", tmpl, err)
		}
		if got := strings.TrimRight(b.String(), "\n"); got != want {
			t.Errorf("%s = %q, want %q", tmpl, got, want)
		}
	}
}

// A table's header keeps each column's title whole, whatever the row
// template does to the value (Docker's HeaderFunctions).
func TestFormatterTableHeaderFuncs(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	f, err := NewFormatter(&b, `table {{truncate .ID 4}}\t{{upper .Repository}}\t{{json .Tag}}\t{{join (split .Repository "/") ","}}`, imageHeaders)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(imageRow{Repository: "a/b", Tag: "v1", ID: "abcdef"})
	f.Flush()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "IMAGE ID REPOSITORY TAG REPOSITORY" {
		t.Errorf("header %q", lines[0])
	}
	if got := strings.Fields(lines[1]); strings.Join(got, " ") != `abcd A/B "v1" a,b` {
		t.Errorf("row %q", lines[1])
	}
}

// listFormatter: -q, json, a bare "table" and the default.
func TestListFormatter(t *testing.T) {
	t.Parallel()
	rows := []imageRow{{Repository: "a", Tag: "1", ID: "abc"}, {Repository: "b", Tag: "2", ID: "def"}}
	for _, tc := range []struct {
		format string
		quiet  bool
		want   string
	}{
		{"", false, "REPOSITORY TAG\na 1\nb 2"},
		{"table", false, "REPOSITORY TAG\na 1\nb 2"},
		{"", true, "abc\ndef"},
		{"{{.Tag}}", true, "abc\ndef"},
		{"json", false, `{"ID":"abc","Repository":"a","Tag":"1","Digest":"","CreatedSince":"","CreatedAt":"","Size":"","Containers":""}` + "\n" +
			`{"ID":"def","Repository":"b","Tag":"2","Digest":"","CreatedSince":"","CreatedAt":"","Size":"","Containers":""}`},
		{"table {{.ID}}", false, "IMAGE ID\nabc\ndef"},
		{" {{.Tag}} ", false, "1\n2"},
	} {
		var b bytes.Buffer
		f, err := listFormatter(&b, tc.format, tc.quiet, "{{.ID}}", "table {{.Repository}}\t{{.Tag}}", imageHeaders)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			f.Write(r)
		}
		f.Flush()
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
			got = append(got, strings.Join(strings.Fields(l), " "))
		}
		if tc.format == "json" {
			got = strings.Split(strings.TrimSpace(b.String()), "\n")
		}
		if strings.Join(got, "\n") != tc.want {
			t.Errorf("format %q quiet %v:\n%s\nwant\n%s", tc.format, tc.quiet, b.String(), tc.want)
		}
	}
}

// Inspect's output: an indented array, a compact one for json, a line a
// template; a template that does not parse exits 64; a key the JSON lacks
// is an error, as in Docker's fallback.
func TestWriteObjects(t *testing.T) {
	t.Parallel()
	objs := []any{map[string]any{"Id": "a", "N": 1}, map[string]any{"Id": "b", "N": 2}}
	for format, want := range map[string]string{
		"":           "[\n    {\n        \"Id\": \"a\",\n        \"N\": 1\n    },\n    {\n        \"Id\": \"b\",\n        \"N\": 2\n    }\n]\n",
		"json":       `[{"Id":"a","N":1},{"Id":"b","N":2}]` + "\n",
		"{{.Id}}":    "a\nb\n",
		"{{json .}}": `{"Id":"a","N":1}` + "\n" + `{"Id":"b","N":2}` + "\n",
	} {
		var b bytes.Buffer
		if err := writeObjects(&b, format, objs); err != nil || b.String() != want {
			t.Errorf("format %q: %v\n%q\nwant\n%q", format, err, b.String(), want)
		}
	}
	var b bytes.Buffer
	err := writeObjects(&b, "{{.Id", objs)
	if ee := (*ExitError)(nil); !errors.As(err, &ee) || ee.Code != 64 {
		t.Errorf("bad template: %v, want exit 64", err)
	}
	type obj struct {
		ID string `json:"Id"`
	}
	if err := writeObjects(&b, "{{.Nope}}", []any{obj{"a"}}); err == nil {
		t.Errorf("{{.Nope}} on an object without it: no error, printed %q", b.String())
	}
	b.Reset()
	if err := writeObjects(&b, "{{.Id}}", []any{obj{"a"}}); err != nil || b.String() != "a\n" {
		t.Errorf("{{.Id}} through the JSON form: %v %q", err, b.String())
	}
	b.Reset()
	if err := writeObject(&b, "json", obj{"a"}); err != nil || b.String() != `{"Id":"a"}`+"\n" {
		t.Errorf("writeObject json: %v %q", err, b.String())
	}
}
