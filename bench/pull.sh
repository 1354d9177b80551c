#!/usr/bin/env bash
# Benchmark: `tug pull` against `skopeo copy ... containers-storage:` and
# `podman pull` of the same images from the same local registry, each into
# a fresh store, in one run. Prints medians and the ratios other/tug (above
# 1 means tug is faster). Run as the user whose case you want to measure
# (rootless is the main one); it needs podman, skopeo and docker-registry.
#
#   bench/pull.sh [ROUNDS]        (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=0
rounds=${1:-5}
for t in podman skopeo docker-registry; do
  command -v "$t" >/dev/null || { echo "bench needs $t (apt-get install -y podman skopeo docker-registry)" >&2; exit 1; }
done

tmp=$(mktemp -d)
chmod 755 "$tmp"
go build -o "$tmp/tug" .
go build -o "$tmp/tug-fixture" ./fixture/cmd/tug-fixture
"$tmp/tug-fixture" registry "$tmp/registry" >"$tmp/addr" &
registry=$!
cleanup() {
  kill $registry 2>/dev/null || true
  wait $registry 2>/dev/null || true
  # As root, skopeo leaves its stores' overlay directories mounted.
  if [ "$(id -u)" -eq 0 ]; then
    awk '{print $2}' /proc/mounts | grep "^$tmp/" | sort -r | xargs -r umount -l
  fi
  # Rootless stores hold files of subordinate ids: remove them inside a user namespace.
  podman unshare rm -rf "$tmp/stores" 2>/dev/null || rm -rf "$tmp/stores"
  rm -rf "$tmp"
}
trap cleanup EXIT
for _ in $(seq 100); do [ -s "$tmp/addr" ] && break; sleep 0.1; done
addr=$(cat "$tmp/addr")

small="$addr/bench/busybox:latest"
large="$addr/bench/layers:latest"
"$tmp/tug-fixture" push-busybox "$small" >/dev/null
"$tmp/tug-fixture" push-layers "$large" 8 $((16 << 20)) >/dev/null

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# run TOOL REF ROUND: one pull into a fresh store; prints seconds.
run() {
  local tool=$1 ref=$2 d="$tmp/stores/$1-$3-$RANDOM"
  mkdir -p "$d"
  local start end
  start=$(now)
  case $tool in
    tug) "$tmp/tug" --root "$d/root" --runroot "$d/run" pull -q "$ref" >/dev/null ;;
    skopeo) skopeo copy -q --src-tls-verify=false "docker://$ref" "containers-storage:[overlay@$d/root+$d/run]$ref" >/dev/null ;;
    podman) podman --root "$d/root" --runroot "$d/run" --storage-driver overlay pull -q --tls-verify=false "$ref" >/dev/null ;;
  esac
  end=$(now)
  awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f\n", b - a}'
}

echo "tug pull vs skopeo copy vs podman pull, $rounds rounds each, fresh store per pull, user $(id -un)"
echo "host: $(nproc) cores, $(uname -r); podman $(podman --version | awk '{print $3}'), skopeo $(skopeo --version | awk '{print $3}')"
printf '%-28s %10s %10s %10s %14s %14s\n' image tug_s skopeo_s podman_s skopeo/tug podman/tug
for ref in "$small" "$large"; do
  declare -A times=()
  for r in $(seq "$rounds"); do
    # Interleave the tools so drift in the machine's load hits all alike.
    for tool in tug skopeo podman; do
      times[$tool]+="$(run $tool "$ref" "$r") "
    done
  done
  t=$(echo ${times[tug]} | tr ' ' '\n' | median)
  s=$(echo ${times[skopeo]} | tr ' ' '\n' | median)
  p=$(echo ${times[podman]} | tr ' ' '\n' | median)
  printf '%-28s %10.3f %10.3f %10.3f %14.2f %14.2f\n' "${ref#$addr/}" "$t" "$s" "$p" "$(awk -v a="$s" -v b="$t" 'BEGIN {print a / b}')" "$(awk -v a="$p" -v b="$t" 'BEGIN {print a / b}')"
  unset times
done
