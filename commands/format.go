package commands

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"unicode"
)

// templateFuncs are Docker's template functions (docker/cli templates).
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", err
		}
		return strings.TrimSpace(b.String()), nil
	},
	"join":  strings.Join,
	"split": strings.Split,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"title": func(s string) string {
		r := []rune(s)
		if len(r) > 0 {
			r[0] = unicode.ToUpper(r[0])
		}
		return string(r)
	},
	"truncate": func(s string, n int) string {
		if r := []rune(s); len(r) > n {
			return string(r[:n])
		}
		return s
	},
	"pad": func(s string, before, after int) string {
		return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
	},
	"println": fmt.Sprintln,
}

// Formatter writes rows with a Go template, Docker style: a format that
// starts with "table" prints a header row and aligns columns.
type Formatter struct {
	w       io.Writer
	tmpl    *template.Template
	table   bool
	headers map[string]string
	tw      *tabwriter.Writer
	wrote   bool
}

// NewFormatter parses format. headers maps a field name ("ID") to its
// column title ("IMAGE ID") for table output.
func NewFormatter(w io.Writer, format string, headers map[string]string) (*Formatter, error) {
	f := &Formatter{w: w, headers: headers}
	if rest, ok := strings.CutPrefix(format, "table"); ok {
		f.table = true
		format = strings.TrimSpace(rest)
		f.tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		f.w = f.tw
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	t, err := template.New("format").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %w", err)
	}
	f.tmpl = t
	return f, nil
}

// Write renders one row.
func (f *Formatter) Write(v any) error {
	if f.table && !f.wrote {
		// Render the header by running the template over the titles.
		h, err := f.header()
		if err != nil {
			return err
		}
		fmt.Fprintln(f.w, h)
	}
	f.wrote = true
	var b bytes.Buffer
	if err := f.tmpl.Execute(&b, v); err != nil {
		// Like docker inspect: a template written against the JSON names
		// ({{.Id}}) is retried on the JSON form of the value.
		generic, jerr := asJSONValue(v)
		if jerr != nil {
			return fmt.Errorf("template: %w", err)
		}
		b.Reset()
		if err2 := f.tmpl.Execute(&b, generic); err2 != nil {
			return fmt.Errorf("template: %w", err)
		}
	}
	fmt.Fprintln(f.w, strings.TrimRight(b.String(), "\n"))
	return nil
}

func (f *Formatter) header() (string, error) {
	// Replace each {{.Field}} with its title: execute the template over a
	// map from field names to titles.
	m := map[string]string{}
	for k, v := range f.headers {
		m[k] = v
	}
	var b bytes.Buffer
	t, err := f.tmpl.Clone()
	if err != nil {
		return "", err
	}
	t = t.Option("missingkey=zero")
	if err := t.Execute(&b, m); err != nil {
		return "", nil
	}
	return strings.TrimRight(b.String(), "\n"), nil
}

// Flush ends the output; a table with no rows still gets its header.
func (f *Formatter) Flush() error {
	if f.table && !f.wrote {
		if h, err := f.header(); err == nil {
			fmt.Fprintln(f.w, h)
		}
	}
	if f.tw != nil {
		return f.tw.Flush()
	}
	return nil
}

func asJSONValue(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return out, dec.Decode(&out)
}

// writeObjects prints objects as Docker's inspect commands do: one line per
// object through format when it is set, else an indented JSON array.
func writeObjects(w io.Writer, format string, objs []any) error {
	if format == "" {
		if objs == nil {
			objs = []any{}
		}
		b, err := json.MarshalIndent(objs, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	f, err := NewFormatter(w, format, nil)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := f.Write(o); err != nil {
			return err
		}
	}
	return f.Flush()
}

// listFormatter is the Formatter of a listing command, with Docker's
// choices: -q prints quietTmpl, "json" one JSON object per row, an empty
// format the default table.
func listFormatter(w io.Writer, format string, quiet bool, quietTmpl, table string, headers map[string]string) (*Formatter, error) {
	switch {
	case quiet:
		format = quietTmpl
	case format == "json":
		format = "{{json .}}"
	case format == "":
		format = table
	}
	return NewFormatter(w, format, headers)
}
