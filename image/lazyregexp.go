package image

import (
	"regexp"
	"sync"
)

// lazyRegexp is a regular expression compiled on first use rather than at
// package init: every tug process pays for package init at start (the
// container's init and tug's namespace child among them), and {64}
// alone expands to 64 copies of its class.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
