#!/usr/bin/env bash
# Benchmark: `tug push` against `skopeo copy containers-storage:... docker://`
# and `podman push` of the same images to the same local registry, in one
# run, in two cases:
#
#   push     the registry has none of the blobs (its storage is wiped before
#            each push) and no tool knows anything of earlier pushes: tug's
#            push cache is emptied and skopeo and Podman get a fresh blob
#            info cache ($XDG_DATA_HOME), so every layer is compressed and
#            uploaded
#   re-push  the same push again right after: every blob is there
#
# Each tool pushes from its own store, filled once from a source registry
# (skopeo reads Podman's). Prints medians of ROUNDS, the ratios other/tug
# (above 1 means tug is faster) and the median peak resident memory of each
# tool (GNU time's maximum RSS of the process tree). Run as the user whose
# case you want to measure (rootless is the main one: as root, skopeo and
# Podman keep their blob info cache in /var/lib/containers/cache whatever
# $XDG_DATA_HOME says); needs podman, skopeo, docker-registry and GNU time.
#
#   bench/push.sh [ROUNDS]        (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
rounds=${1:-5}
bench_need podman skopeo docker-registry
[ -x /usr/bin/time ] || { echo "bench needs GNU time (apt-get install -y time)" >&2; exit 1; }
bench_setup
bench_registry src
bench_registry dst
src=$(cat "$tmp/src.addr")
dst=$(cat "$tmp/dst.addr")

"$tmp/tug-fixture" push-busybox "$src/bench/busybox:latest" >/dev/null
"$tmp/tug-fixture" push-layers "$src/bench/layers:latest" 8 $((16 << 20)) >/dev/null
t="$tmp/stores/tug"
p="$tmp/stores/podman"
mkdir -p "$t" "$p"
tug=("$tmp/tug" --root "$t/root" --runroot "$t/run")
podman=(podman --root "$p/root" --runroot "$p/run" --storage-driver overlay)
for img in busybox layers; do
  "${tug[@]}" pull -q "$src/bench/$img:latest" >/dev/null
  "${podman[@]}" pull -q --tls-verify=false "$src/bench/$img:latest" >/dev/null
done

# push TOOL IMAGE DEST: one push; prints "seconds peak-RSS-in-MB".
push() {
  local tool=$1 ref="$src/bench/$2:latest" dest=$3 start end
  start=$(now)
  case $tool in
    tug) /usr/bin/time -f %M -o "$tmp/rss" "${tug[@]}" push -q "$ref" "$dest" >/dev/null ;;
    skopeo) /usr/bin/time -f %M -o "$tmp/rss" skopeo copy -q --dest-tls-verify=false "containers-storage:[overlay@$p/root+$p/run]$ref" "docker://$dest" >/dev/null ;;
    podman) /usr/bin/time -f %M -o "$tmp/rss" "${podman[@]}" push -q --tls-verify=false "$ref" "docker://$dest" >/dev/null ;;
  esac
  end=$(now)
  echo "$(seconds "$start" "$end") $(awk '{printf "%.0f", $1 / 1024}' "$tmp/rss")"
}

# fresh: the destination registry and every tool's cache of earlier pushes, emptied.
fresh() {
  rm -rf "$tmp/dst/data/docker" "$t/root/tug-push-cache"
  export XDG_DATA_HOME="$tmp/xdg-data-$RANDOM$RANDOM"
}

echo "tug push vs skopeo copy vs podman push, $rounds rounds each, user $(id -un)"
echo "host: $(nproc) cores, $(uname -r); podman $(podman --version | awk '{print $3}'), skopeo $(skopeo --version | awk '{print $3}')"
printf '%-18s %8s %9s %9s %11s %11s %7s %10s %10s\n' image tug_s skopeo_s podman_s skopeo/tug podman/tug tug_MB skopeo_MB podman_MB
for img in busybox layers; do
  declare -A s=() m=()
  for r in $(seq "$rounds"); do
    # Interleave the tools so drift in the machine's load hits all alike.
    for tool in tug skopeo podman; do
      dest="$dst/bench/$img-$tool:$r"
      fresh
      read -r sec mb < <(push $tool "$img" "$dest")
      s[push-$tool]+="$sec "; m[push-$tool]+="$mb "
      read -r sec mb < <(push $tool "$img" "$dest")
      s[repush-$tool]+="$sec "; m[repush-$tool]+="$mb "
    done
  done
  for case in push repush; do
    for tool in tug skopeo podman; do
      declare "t_$tool=$(echo ${s[$case-$tool]} | tr ' ' '\n' | median)"
      declare "mb_$tool=$(echo ${m[$case-$tool]} | tr ' ' '\n' | median)"
    done
    printf '%-18s %8.3f %9.3f %9.3f %11.2f %11.2f %7.0f %10.0f %10.0f\n' "$img ${case/repush/re-push}" \
      "$t_tug" "$t_skopeo" "$t_podman" "$(ratio "$t_skopeo" "$t_tug")" "$(ratio "$t_podman" "$t_tug")" "$mb_tug" "$mb_skopeo" "$mb_podman"
  done
  unset s m
done
