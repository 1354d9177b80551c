package remote

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// explain says what failed in tug's words and keeps the registry's answer
// as the cause: --debug prints it, and errors.Is/As still see the
// sentinel and the transport error.
func TestExplainKeepsCause(t *testing.T) {
	t.Parallel()
	c := &Client{}
	ref := mustParse(t, "127.0.0.1:5000/app:1")
	for _, tc := range []struct {
		name    string
		err     *transport.Error
		msg     string
		unknown bool
	}{
		{"MANIFEST_UNKNOWN", &transport.Error{StatusCode: 404, Errors: []transport.Diagnostic{{Code: transport.ManifestUnknownErrorCode, Message: "manifest unknown"}}},
			"127.0.0.1:5000/app:1: manifest unknown", true},
		{"NAME_UNKNOWN", &transport.Error{StatusCode: 404, Errors: []transport.Diagnostic{{Code: transport.NameUnknownErrorCode, Message: "repository name not known to registry"}}},
			"127.0.0.1:5000/app:1: manifest unknown: repository app not found in registry 127.0.0.1:5000", true},
		{"bare 404", &transport.Error{StatusCode: 404}, "127.0.0.1:5000/app:1: manifest unknown", true},
		{"DENIED", &transport.Error{StatusCode: 403, Errors: []transport.Diagnostic{{Code: transport.DeniedErrorCode, Message: "requested access to the resource is denied"}}},
			"127.0.0.1:5000/app:1: access denied by 127.0.0.1:5000: requested access to the resource is denied (if it needs credentials, run 'tug login 127.0.0.1:5000'", false},
		{"bare 401", &transport.Error{StatusCode: http.StatusUnauthorized}, "127.0.0.1:5000/app:1: access denied by 127.0.0.1:5000 (if it needs", false},
		{"500", &transport.Error{StatusCode: 500}, "127.0.0.1:5000/app:1: reaching registry 127.0.0.1:5000: GET: unexpected status code 500", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.explain(ref, fmt.Errorf("GET: %w", tc.err))
			if !strings.HasPrefix(err.Error(), tc.msg) {
				t.Errorf("message %q, want it to start %q", err, tc.msg)
			}
			if got := errors.Is(err, ErrManifestUnknown); got != tc.unknown {
				t.Errorf("errors.Is(ErrManifestUnknown) = %v", got)
			}
			var te *transport.Error
			if !errors.As(err, &te) || te != tc.err {
				t.Errorf("the registry's answer is not the cause: %v", err)
			}
			if errors.Unwrap(err) == nil {
				t.Errorf("nothing for --debug to show under %v", err)
			}
		})
	}
}
