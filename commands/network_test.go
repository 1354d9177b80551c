package commands

import (
	"reflect"
	"strings"
	"testing"

	rt "github.com/tugcli/tug/runtime"
)

func TestParsePublish(t *testing.T) {
	for in, want := range map[string][]rt.PortMapping{
		"80":                  {{ContainerPort: 80, Protocol: "tcp"}},
		"8080:80":             {{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
		"8080:80/udp":         {{HostPort: 8080, ContainerPort: 80, Protocol: "udp"}},
		"127.0.0.1:8080:80":   {{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
		"127.0.0.1::80":       {{HostIP: "127.0.0.1", ContainerPort: 80, Protocol: "tcp"}},
		"[::1]:8080:80":       {{HostIP: "::1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
		"8000-8001:80-81/TCP": {{HostPort: 8000, ContainerPort: 80, Protocol: "tcp"}, {HostPort: 8001, ContainerPort: 81, Protocol: "tcp"}},
	} {
		got, err := parsePublish(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("parsePublish(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "80/sctp", "x:80", "1.2.3:8080:80", "70000:80", "1:2:3:4", "8000-8002:80-81", "90-80", "[::1:80"} {
		if _, err := parsePublish(in); err == nil || !strings.Contains(err.Error(), "invalid -p") {
			t.Errorf("parsePublish(%q) = %v, want an invalid -p error", in, err)
		}
	}
}
