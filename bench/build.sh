#!/usr/bin/env bash
# Benchmark: `tug build` against `buildah bud --layers` on the same
# Dockerfile and context, side by side in one run, each with its own
# store holding the same busybox base (pulled once, not timed):
#   cold     every step built (--no-cache)
#   cached   a rebuild where nothing changed (every step from the cache)
#   changed  a rebuild after one COPY source changed (the steps from that
#            COPY on are rebuilt)
# Prints the median seconds and median peak memory (/usr/bin/time %M, the
# largest process of the tree, KiB) of ROUNDS builds of each, and the
# ratios tug/buildah (below 1 means tug is faster or smaller). Buildah's
# RUN isolation is probed: OCI with runc if it works for this user, else
# chroot; the one used is printed. Run it as an unprivileged user with a
# subordinate id range; needs buildah, podman (for cleanup), runc and
# docker-registry.
#
#   bench/build.sh [ROUNDS]        (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
rounds=${1:-5}
bench_need buildah podman docker-registry /usr/bin/time
bench_setup
bench_registry registry
addr=$(cat "$tmp/registry.addr")
ref="$addr/bench/busybox:latest"
"$tmp/tug-fixture" push-busybox "$ref" >/dev/null

# The context: 200 small files, a 4 MB one, and the file that changes.
ctx="$tmp/ctx"
mkdir -p "$ctx/app"
for i in $(seq 200); do head -c 4096 /dev/urandom >"$ctx/app/f$i"; done
head -c $((4 << 20)) /dev/urandom >"$ctx/blob"
echo 0 >"$ctx/changing.txt"
cat >"$ctx/Dockerfile" <<EOF
FROM $ref
ENV APP=/app
WORKDIR /app
COPY app/ /app/
COPY blob /blob
RUN cat /app/f* > /all && mkdir -p /out && for i in \$(seq 100); do echo \$i > /out/f\$i; done
COPY changing.txt /changing.txt
RUN wc -c /changing.txt > /size && sha256sum /blob > /blob.sum
CMD ["cat", "/size"]
EOF

mkdir -p "$tmp/stores"
tug=("$tmp/tug" --root "$tmp/stores/tug/root" --runroot "$tmp/stores/tug/run")
buildah=(buildah --root "$tmp/stores/buildah/root" --runroot "$tmp/stores/buildah/run" --storage-driver overlay)
"${tug[@]}" pull -q "$ref" >/dev/null
"${buildah[@]}" pull -q --tls-verify=false "$ref" >/dev/null

# Buildah's isolation: OCI (runc) where it works rootless, else chroot.
probe="$tmp/probe"
mkdir -p "$probe"
printf 'FROM %s\nRUN true\n' "$ref" >"$probe/Dockerfile"
isolation=chroot
if "${buildah[@]}" bud -q --isolation oci --runtime runc -t probe "$probe" >/dev/null 2>"$tmp/probe.err"; then
  isolation="oci --runtime runc"
fi

# one TOOL MODE: one build; prints "seconds peak_kib".
one() {
  local tool=$1 mode=$2 nocache=() start end
  [ "$mode" = cold ] && nocache=(--no-cache)
  start=$(now)
  case $tool in
    tug) /usr/bin/time -o "$tmp/mem" -f %M "${tug[@]}" build -q "${nocache[@]}" -t bench "$ctx" >/dev/null ;;
    # shellcheck disable=SC2086 # isolation is two words for oci
    buildah) /usr/bin/time -o "$tmp/mem" -f %M "${buildah[@]}" bud -q --layers "${nocache[@]}" --isolation $isolation -t bench "$ctx" >/dev/null ;;
  esac
  end=$(now)
  echo "$(seconds "$start" "$end") $(tail -1 "$tmp/mem")"
}

# Warm both caches once (and check both builds work).
one tug cold >/dev/null
one buildah cold >/dev/null

echo "tug build vs buildah bud --layers (isolation: $isolation), $rounds rounds each, user $(id -un)"
echo "host: $(nproc) cores, $(uname -r); $(buildah --version)"
printf '%-10s %10s %12s %12s %14s %12s %12s\n' case tug_s buildah_s tug/buildah tug_peak_KiB buildah_KiB tug/buildah
n=0
for mode in cold cached changed; do
  declare -A secs=() mem=()
  for _ in $(seq "$rounds"); do
    # Interleaved, so drift in the machine's load hits both alike.
    for tool in tug buildah; do
      if [ "$mode" = changed ]; then
        n=$((n + 1))
        echo "$n $tool" >"$ctx/changing.txt"
      fi
      read -r s m < <(one $tool $mode)
      secs[$tool]+="$s "
      mem[$tool]+="$m "
    done
  done
  ts=$(echo ${secs[tug]} | tr ' ' '\n' | median)
  bs=$(echo ${secs[buildah]} | tr ' ' '\n' | median)
  tm=$(echo ${mem[tug]} | tr ' ' '\n' | median)
  bm=$(echo ${mem[buildah]} | tr ' ' '\n' | median)
  printf '%-10s %10.3f %12.3f %12.2f %14.0f %12.0f %12.2f\n' "$mode" "$ts" "$bs" "$(ratio "$ts" "$bs")" "$tm" "$bm" "$(ratio "$tm" "$bm")"
  unset secs mem
done
