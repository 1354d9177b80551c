#!/usr/bin/env bash
# Benchmark: `tug exec CONTAINER true` against `podman exec CONTAINER true`
# (runc), rootless, side by side in one run, each into a detached container
# of the same busybox image that runs `sleep`. Prints the median of ROUNDS
# and podman/tug (above 1 means tug is faster). Run as an unprivileged user
# with a subordinate id range; needs podman, runc and docker-registry.
#
#   bench/exec.sh [ROUNDS]        (default 25)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
rounds=${1:-25}
bench_need podman runc docker-registry
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
"${tug[@]}" run -d --name bench-exec --network none "$ref" sleep 3600 >/dev/null
"${podman[@]}" run -d --name bench-exec --network none "$ref" sleep 3600 >/dev/null
stop() {
  "${tug[@]}" rm -f bench-exec >/dev/null 2>&1 || true
  "${podman[@]}" rm -f -t 0 bench-exec >/dev/null 2>&1 || true
  bench_cleanup
}
trap stop EXIT

one() {
  local start end
  start=$(now)
  "$@" >/dev/null
  end=$(now)
  seconds "$start" "$end"
}
declare -A r=()
for _ in $(seq "$rounds"); do
  r[tug]+="$(one "${tug[@]}" exec bench-exec true) "
  r[podman]+="$(one "${podman[@]}" exec bench-exec true) "
done
m_tug=$(echo ${r[tug]} | tr ' ' '\n' | median)
m_podman=$(echo ${r[podman]} | tr ' ' '\n' | median)
echo "exec CONTAINER true, median of $rounds, user $(id -un), $(nproc) cores, $(uname -r)"
printf '%-8s %10s\n' tool seconds
printf '%-8s %10.3f\n' tug "$m_tug" podman "$m_podman"
echo "podman/tug = $(ratio "$m_podman" "$m_tug")"
