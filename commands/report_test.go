package commands

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// --debug follows every branch of an error: the errors it joins
// (errors.Join, or several %w) each get a "caused by:" line and their
// own causes under them; without --debug it is still one line.
func TestErrorReportJoined(t *testing.T) {
	t.Parallel()
	full := errors.New("no space left on device")
	err := fmt.Errorf("pulling x: %w", errors.Join(
		fmt.Errorf("fetching layer a: %w", fmt.Errorf("write /s/a: %w", full)),
		fmt.Errorf("storing layer b: %w", full),
	))
	// kong joins a command's error with its AfterRun hooks' (nil): a
	// join of one, which says nothing more.
	err = errors.Join(err, nil)
	var b bytes.Buffer
	report(&b, err, false)
	if got := b.String(); strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "Error: pulling x: fetching layer a: write /s/a: no space left on device storing layer b:") {
		t.Errorf("without --debug:\n%s", got)
	}
	b.Reset()
	report(&b, err, true)
	want := `  caused by: fetching layer a: write /s/a: no space left on device storing layer b: no space left on device
  caused by: fetching layer a: write /s/a: no space left on device
    caused by: write /s/a: no space left on device
    caused by: no space left on device
  caused by: storing layer b: no space left on device
    caused by: no space left on device
`
	if _, got, _ := strings.Cut(b.String(), "\n"); got != want {
		t.Errorf("with --debug:\n%s\nwant:\n%s", got, want)
	}
}
