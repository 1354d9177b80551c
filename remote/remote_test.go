package remote

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"docker.io/busybox", "docker.io/library/busybox:latest"},
		{"index.docker.io/library/busybox", "docker.io/library/busybox:latest"},
		{"alice/app", "docker.io/alice/app:latest"},
		{"127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"},
		{"localhost/app:v1", "localhost/app:v1"},
		{"quay.io/org/app@sha256:" + strings.Repeat("a", 64), "quay.io/org/app@sha256:" + strings.Repeat("a", 64)},
	} {
		ref, err := ParseReference(tc.in)
		if err != nil {
			t.Fatalf("ParseReference(%q): %v", tc.in, err)
		}
		if got := Canonical(ref); got != tc.want {
			t.Errorf("Canonical(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseReferenceRejects(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "UPPER/case", "a:b:c", "busybox@sha256:short"} {
		if _, err := ParseReference(in); err == nil || !strings.Contains(err.Error(), "invalid reference format") {
			t.Errorf("ParseReference(%q) = %v, want an invalid reference format error", in, err)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"localhost:5000", true},
		{"localhost", true},
		{"registry.localhost:80", true},
		{"127.0.0.1:5000", true},
		{"127.3.4.5", true},
		{"[::1]:5000", true},
		{"10.0.0.1:5000", false},
		{"192.168.1.10", false},
		{"172.16.0.1:443", false},
		{"127.0.0.1.evil.com", false},
		{"example.com", false},
	} {
		if got := IsLoopback(tc.host); got != tc.want {
			t.Errorf("IsLoopback(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}

// Plain HTTP goes to loopback registries only, unless the user said
// --tls-verify=false: private addresses do not get it as they would with
// go-containerregistry's defaults.
func TestSchemePolicy(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	no := func(string) bool { return false }
	yes := func(string) bool { return true }
	strict := &dockerSchemePolicy{verify: http.DefaultTransport, insecure: no}
	loose := &dockerSchemePolicy{noVerify: http.DefaultTransport, insecure: yes}

	req, _ := http.NewRequest("GET", srv.URL+"/v2/", nil) // 127.0.0.1: allowed
	if resp, err := strict.RoundTrip(req); err != nil {
		t.Fatalf("loopback over http refused: %v", err)
	} else {
		resp.Body.Close()
	}
	// Nothing may be sent to a private address, even if the policy broke.
	sent := roundTripFunc(func(*http.Request) (*http.Response, error) {
		t.Error("a plain HTTP request to a private address was sent")
		return nil, errors.New("not sent")
	})
	never := &dockerSchemePolicy{verify: sent, noVerify: sent, insecure: no}
	req, _ = http.NewRequest("GET", "http://10.1.2.3:5000/v2/", nil)
	_, err := never.RoundTrip(req)
	if err == nil || !strings.Contains(err.Error(), "--tls-verify=false") {
		t.Fatalf("plain http to 10.1.2.3 = %v, want a refusal naming --tls-verify=false", err)
	}
	req, _ = http.NewRequest("GET", srv.URL+"/v2/", nil)
	if resp, err := loose.RoundTrip(req); err != nil {
		t.Fatalf("insecure client refused http: %v", err)
	} else {
		resp.Body.Close()
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
