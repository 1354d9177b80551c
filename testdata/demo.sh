#!/usr/bin/env bash
# tug's main job end to end, offline: start a registry on loopback, push a
# small busybox image to it (made here from Debian's busybox-static), pull
# it with tug into your own image store, list, inspect and run it, remove it.
# Run it as yourself (rootless) or as root.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=0

tmp=$(mktemp -d)
chmod 755 "$tmp"
go build -ldflags=-E=main.entry -o tug .
go build -o "$tmp/tug-fixture" ./fixture/cmd/tug-fixture

"$tmp/tug-fixture" registry "$tmp/registry" >"$tmp/addr" &
registry=$!
trap 'kill $registry 2>/dev/null; wait $registry 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do [ -s "$tmp/addr" ] && break; sleep 0.1; done
[ -s "$tmp/addr" ] || { echo "the registry did not start; see $tmp/registry/registry.log" >&2; exit 1; }
ref="$(cat "$tmp/addr")/demo/busybox:latest"

echo "+ push the test image to $ref"
"$tmp/tug-fixture" push-busybox "$ref" >/dev/null
set -x
./tug pull "$ref"
./tug images "$ref"
./tug inspect --format '{{.Id}} {{.Os}}/{{.Architecture}} {{json .Config.Cmd}}' "$ref"
# The default network needs /dev/net/tun, which distributions ship 0666;
# where this user cannot open it, the demo runs without a network.
net=()
if ! { : <>/dev/net/tun; } 2>/dev/null; then
  { set +x; } 2>/dev/null
  echo "+ /dev/net/tun is not open to $(id -un) (mode $(stat -c %a /dev/net/tun 2>/dev/null)): running with --network none" >&2
  net=(--network none)
  set -x
fi
./tug run --rm "${net[@]}" --hostname demo "$ref" sh -c 'id; hostname; cat /etc/tug-fixture; ps -o pid,comm; ls /sys/class/net'
./tug rmi "$ref"
