#!/usr/bin/env bash
# Benchmark: throughput into a container through a published port, rootless,
# side by side in one run: tug's default network (private, in-process
# netstack), tug with pasta, tug with slirp4netns, and Podman's rootless
# default network (slirp4netns with its port handler, in Podman 4.3).
#
# For each, a container runs `nc -l -p 5000 >/dev/null` with -p PORT:5000;
# tug-fixture sends MB MiB of zeros to 127.0.0.1:PORT and times it until the
# receiver has read everything and closed. Prints the median MiB/s of ROUNDS
# and each other/tug-private ratio. Run as an unprivileged user with a
# subordinate id range; needs podman, passt, slirp4netns, docker-registry and
# a /dev/net/tun the user may open (mode 0666, as distributions ship it).
#
#   bench/net.sh [ROUNDS] [MB]        (default 3 rounds of 300 MiB)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
rounds=${1:-3}
mb=${2:-300}
bench_need podman pasta slirp4netns docker-registry
bench_setup
bench_registry src
ref="$(cat "$tmp/src.addr")/bench/busybox:latest"
"$tmp/tug-fixture" push-busybox "$ref" >/dev/null
t="$tmp/stores/tug"
p="$tmp/stores/podman"
mkdir -p "$t" "$p"
tug=("$tmp/tug" --root "$t/root" --runroot "$t/run")
podman=(podman --root "$p/root" --runroot "$p/run" --storage-driver overlay --runtime runc)
"${tug[@]}" pull -q "$ref" >/dev/null
"${podman[@]}" pull -q --tls-verify=false "$ref" >/dev/null

port=$((20000 + RANDOM % 20000))
# The receiver; its stdin stays open (nc would hang up at its EOF).
server='sleep 1000 | nc -l -p 5000 >/dev/null'
# one TOOL: one transfer; prints MiB/s.
one() {
  local secs
  case $1 in
    podman) "${podman[@]}" run -d --name bench-net -p "$port:5000" "$ref" sh -c "$server" >/dev/null ;;
    *) "${tug[@]}" run -d --name bench-net --network "$1" -p "$port:5000" "$ref" sh -c "$server" >/dev/null ;;
  esac
  secs=$("$tmp/tug-fixture" send "127.0.0.1:$port" "$mb")
  case $1 in
    podman) "${podman[@]}" rm -f bench-net >/dev/null ;;
    *) "${tug[@]}" rm -f bench-net >/dev/null ;;
  esac
  awk -v s="$secs" -v m="$mb" 'BEGIN {printf "%.1f\n", m / s}'
}

modes=(private pasta slirp4netns podman)
declare -A r=()
for _ in $(seq "$rounds"); do
  for m in "${modes[@]}"; do r[$m]+="$(one "$m") "; done
done
echo "$mb MiB host -> container through -p, median MiB/s of $rounds, user $(id -un), $(nproc) cores, $(uname -r)"
printf '%-22s %10s %8s\n' network MiB/s ratio
base=$(echo ${r[private]} | tr ' ' '\n' | median)
for m in "${modes[@]}"; do
  v=$(echo ${r[$m]} | tr ' ' '\n' | median)
  name="tug $m"
  [ "$m" = podman ] && name="podman (default)"
  printf '%-22s %10.1f %8.2f\n' "$name" "$v" "$(ratio "$v" "$base")"
done
