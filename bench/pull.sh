#!/usr/bin/env bash
# Benchmark: `tug pull` against `skopeo copy ... containers-storage:` and
# `podman pull` of the same images from the same local registry, each into
# a fresh store, in one run. Prints medians, the ratios other/tug (above
# 1 means tug is faster) and the median peak resident memory of each. Run
# as the user whose case you want to measure (rootless is the main one); it
# needs podman, skopeo, docker-registry and GNU time.
#
#   bench/pull.sh [ROUNDS]        (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
rounds=${1:-5}
bench_need podman skopeo docker-registry
[ -x /usr/bin/time ] || { echo "bench needs GNU time (apt-get install -y time)" >&2; exit 1; }
bench_setup
bench_registry registry
addr=$(cat "$tmp/registry.addr")

small="$addr/bench/busybox:latest"
large="$addr/bench/layers:latest"
"$tmp/tug-fixture" push-busybox "$small" >/dev/null
"$tmp/tug-fixture" push-layers "$large" 8 $((16 << 20)) >/dev/null

# run TOOL REF ROUND: one pull into a fresh store; prints "seconds
# peak-RSS-in-MB" (GNU time's maximum RSS of the process tree).
run() {
  local tool=$1 ref=$2 d="$tmp/stores/$1-$3-$RANDOM"
  mkdir -p "$d"
  local start end
  start=$(now)
  case $tool in
    tug) /usr/bin/time -f %M -o "$tmp/rss" "$tmp/tug" --root "$d/root" --runroot "$d/run" pull -q "$ref" >/dev/null ;;
    skopeo) /usr/bin/time -f %M -o "$tmp/rss" skopeo copy -q --src-tls-verify=false "docker://$ref" "containers-storage:[overlay@$d/root+$d/run]$ref" >/dev/null ;;
    podman) /usr/bin/time -f %M -o "$tmp/rss" podman --root "$d/root" --runroot "$d/run" --storage-driver overlay pull -q --tls-verify=false "$ref" >/dev/null ;;
  esac
  end=$(now)
  echo "$(seconds "$start" "$end") $(awk '{printf "%.0f", $1 / 1024}' "$tmp/rss")"
}

echo "tug pull vs skopeo copy vs podman pull, $rounds rounds each, fresh store per pull, user $(id -un)"
echo "host: $(nproc) cores, $(uname -r); podman $(podman --version | awk '{print $3}'), skopeo $(skopeo --version | awk '{print $3}')"
printf '%-28s %10s %10s %10s %14s %14s %7s %10s %10s\n' image tug_s skopeo_s podman_s skopeo/tug podman/tug tug_MB skopeo_MB podman_MB
for ref in "$small" "$large"; do
  declare -A times=() mem=()
  for r in $(seq "$rounds"); do
    # Interleave the tools so drift in the machine's load hits all alike.
    for tool in tug skopeo podman; do
      read -r secs mb < <(run $tool "$ref" "$r")
      times[$tool]+="$secs "
      mem[$tool]+="$mb "
    done
  done
  t=$(echo ${times[tug]} | tr ' ' '\n' | median)
  s=$(echo ${times[skopeo]} | tr ' ' '\n' | median)
  p=$(echo ${times[podman]} | tr ' ' '\n' | median)
  printf '%-28s %10.3f %10.3f %10.3f %14.2f %14.2f %7.0f %10.0f %10.0f\n' "${ref#$addr/}" "$t" "$s" "$p" "$(ratio "$s" "$t")" "$(ratio "$p" "$t")" \
    "$(echo ${mem[tug]} | tr ' ' '\n' | median)" "$(echo ${mem[skopeo]} | tr ' ' '\n' | median)" "$(echo ${mem[podman]} | tr ' ' '\n' | median)"
  unset times mem
done
