package build

import "testing"

// RUN's history text: the stage's ARGs in declaration order, each once
// with its latest value (an ENV of the same name wins), as BuildKit's
// runCommandString writes them.
func TestRunHistory(t *testing.T) {
	t.Parallel()
	st := &stageState{args: map[string]string{"A": "2", "B": "", "C": "arg"}, argOrder: []string{"A", "B", "A", "C"}}
	st.cfg.Config.Env = []string{"C=env"}
	if got, want := runHistory(st, []string{"/bin/sh", "-c", "echo hi"}), "RUN |3 A=2 B= C=env /bin/sh -c echo hi"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got, want := runHistory(&stageState{}, []string{"echo", "x"}), "RUN echo x"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
