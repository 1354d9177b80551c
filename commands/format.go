package commands

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"text/tabwriter"
	"text/template"
	"unicode"
)

// templateFuncs are Docker's template functions (docker/cli templates),
// with Docker's semantics: title capitalises every word, pad leaves an
// empty string empty, join takes any slice (and a map's values, sorted).
var templateFuncs = template.FuncMap{
	"json":     toJSON,
	"join":     join,
	"split":    strings.Split,
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"title":    title,
	"truncate": truncate,
	"pad":      pad,
	"println":  fmt.Sprintln,
}

// headerFuncs replace templateFuncs when a table's header row is rendered,
// as Docker's HeaderFunctions do: a column title stays whole, whatever the
// row template does to the value. pad is kept, so that the header lines up.
var headerFuncs = template.FuncMap{
	"json":     func(v string) string { return v },
	"split":    func(v, _ string) string { return v },
	"join":     func(v, _ string) string { return v },
	"title":    func(v string) string { return v },
	"lower":    func(v string) string { return v },
	"upper":    func(v string) string { return v },
	"truncate": func(v string, _ int) string { return v },
}

func toJSON(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSpace(b.String()), nil
}

// join joins a slice's elements (fmt.Sprint of each) with sep; a map's
// values are sorted first, as Docker does.
func join(elems any, sep string) (string, error) {
	switch v := elems.(type) {
	case nil:
		return "", nil
	case []string:
		return strings.Join(v, sep), nil
	}
	rv := reflect.ValueOf(elems)
	switch rv.Kind() {
	case reflect.Array, reflect.Slice:
		out := make([]string, rv.Len())
		for i := range out {
			out[i] = fmt.Sprint(rv.Index(i).Interface())
		}
		return strings.Join(out, sep), nil
	case reflect.Map:
		out := make([]string, 0, rv.Len())
		for _, k := range rv.MapKeys() {
			out = append(out, fmt.Sprint(rv.MapIndex(k).Interface()))
		}
		sort.Strings(out)
		return strings.Join(out, sep), nil
	}
	return "", fmt.Errorf("join: expected a slice, got %T", elems)
}

// title upper-cases the first letter of every word, as strings.Title
// (Docker's "title") does.
func title(s string) string {
	var b strings.Builder
	prev := ' '
	for _, r := range s {
		if !isWordRune(prev) {
			r = unicode.ToTitle(r)
		}
		b.WriteRune(r)
		prev = r
	}
	return b.String()
}

func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)
}

// truncate keeps the first n characters of s.
func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n && n >= 0 {
		return string(r[:n])
	}
	return s
}

// pad surrounds s with spaces; an empty s stays empty (Docker's padWithSpace).
func pad(s string, before, after int) string {
	if s == "" {
		return s
	}
	return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
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
		format = rest
		f.tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		f.w = f.tw
	}
	// Docker trims spaces, but keeps other white space (a trailing \n).
	format = strings.Trim(format, " ")
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
		// As Docker's fallback: a key the JSON lacks is an error, not
		// "<no value>".
		if err2 := f.tmpl.Option("missingkey=error").Execute(&b, generic); err2 != nil {
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
	t = t.Funcs(headerFuncs).Option("missingkey=zero")
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
// "json" prints the array on one line, as docker inspect --format json
// does. A template that does not parse exits 64, as Docker's inspect.
func writeObjects(w io.Writer, format string, objs []any) error {
	if format == "" || format == "json" {
		if objs == nil {
			objs = []any{}
		}
		b, err := json.MarshalIndent(objs, "", "    ")
		if format == "json" {
			b, err = json.Marshal(objs)
		}
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	f, err := NewFormatter(w, format, nil)
	if err != nil {
		return &ExitError{Code: 64, Err: err}
	}
	for _, o := range objs {
		if err := f.Write(o); err != nil {
			return err
		}
	}
	return f.Flush()
}

// writeObject prints one object as docker version and docker info do:
// through format when it is set ("json" is {{json .}}), else as indented
// JSON.
func writeObject(w io.Writer, format string, obj any) error {
	if format == "json" {
		format = "{{json .}}"
	}
	if format == "" {
		b, err := json.MarshalIndent(obj, "", "    ")
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
	if err := f.Write(obj); err != nil {
		return err
	}
	return f.Flush()
}

// listFormatter is the Formatter of a listing command, with Docker's
// choices: -q prints quietTmpl, "json" one JSON object per row, an empty
// format or a bare "table" the default table.
func listFormatter(w io.Writer, format string, quiet bool, quietTmpl, table string, headers map[string]string) (*Formatter, error) {
	switch {
	case quiet:
		format = quietTmpl
	case format == "json":
		format = "{{json .}}"
	case format == "" || strings.TrimSpace(format) == "table":
		format = table
	}
	return NewFormatter(w, format, headers)
}
