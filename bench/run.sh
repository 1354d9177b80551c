#!/usr/bin/env bash
# Benchmark: start-up and teardown of a container running /bin/true,
# rootless, side by side in one run:
#   tug run --rm --network none IMAGE true
#   podman --runtime runc run --rm --network none IMAGE true
#   bwrap (user, PID and mount namespaces) running /bin/true in an
#   unpacked copy of the same image
# Prints the median of ROUNDS runs of each and the ratios. Run it as an
# unprivileged user with a subordinate id range; needs podman, runc,
# bubblewrap and docker-registry. NO_PODMAN=1 leaves Podman out (for a
# host that has none): tug and bwrap only, no ratio to Podman.
#
#   bench/run.sh [ROUNDS]        (default 25)
#
# RUNROOT=tmpfs puts both tools' run roots on /dev/shm, as the default
# rootless run root ($XDG_RUNTIME_DIR) is on hosts with systemd; by
# default they are next to the stores, on the disk. TUG_BENCH_OLD=FILE
# times another tug binary (an older build) in the same rounds, with a
# store of its own: a change measured against the same drift.
# TUG_BENCH_BIN=DIR runs DIR/tug (and DIR/tug-fixture) where they are,
# as an installed tug runs, and TUG_BENCH_OLD runs in place too; without
# it, tug is built into the temporary directory. Run from tmpfs
# (TMPDIR=/dev/shm), tug took 2–3.5 ms a run more here than from the
# disk (sixth session; see the README).
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=0
rounds=${1:-25}
need=(bwrap docker-registry)
[ "${NO_PODMAN:-}" = 1 ] || need+=(podman runc)
for t in "${need[@]}"; do
  command -v "$t" >/dev/null || { echo "bench needs $t (apt-get install -y podman runc bubblewrap docker-registry)" >&2; exit 1; }
done

tmp=$(mktemp -d)
chmod 755 "$tmp"
runroot=$tmp
if [ "${RUNROOT:-}" = tmpfs ]; then
  runroot=$(mktemp -d -p /dev/shm)
fi
bin=$tmp
if [ -n "${TUG_BENCH_BIN:-}" ]; then
  bin=$(cd "$TUG_BENCH_BIN" && pwd)
else
  go build -ldflags=-E=main.entry -o "$tmp/tug" .
  go build -o "$tmp/tug-fixture" ./fixture/cmd/tug-fixture
fi
"$bin/tug-fixture" registry "$tmp/registry" >"$tmp/addr" &
registry=$!
# Stores hold files of subordinate ids: Podman removes them inside its
# user namespace; without Podman, what the user may remove goes.
podman_unshare() {
  if [ "${NO_PODMAN:-}" = 1 ]; then "$@"; else podman --root "$tmp/podman" --runroot "$runroot/podman-run" unshare "$@"; fi
}
cleanup() {
  kill $registry 2>/dev/null || true
  wait $registry 2>/dev/null || true
  podman_unshare rm -rf "$tmp/tug-store" "$tmp/podman" "$runroot/tug-run" "$runroot/tug-old-run" "$runroot/podman-run" 2>/dev/null || true
  rm -rf "$tmp" "$runroot" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do [ -s "$tmp/addr" ] && break; sleep 0.1; done
ref="$(cat "$tmp/addr")/bench/busybox:latest"
"$bin/tug-fixture" push-busybox "$ref" >/dev/null
"$bin/tug-fixture" unpack-busybox "$tmp/rootfs"

tug=("$bin/tug" --root "$tmp/tug-store/root" --runroot "$runroot/tug-run")
podman=(podman --root "$tmp/podman" --runroot "$runroot/podman-run" --storage-driver overlay --runtime runc)
"${tug[@]}" pull -q "$ref" >/dev/null
old=()
if [ -n "${TUG_BENCH_OLD:-}" ]; then
  old=("$(realpath "$TUG_BENCH_OLD")" --root "$tmp/tug-store/old-root" --runroot "$runroot/tug-old-run")
  "${old[@]}" pull -q "$ref" >/dev/null
fi
[ "${NO_PODMAN:-}" = 1 ] || "${podman[@]}" pull -q --tls-verify=false "$ref" >/dev/null

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
time_one() {
  local start end
  start=$(now)
  "$@" >/dev/null
  end=$(now)
  awk -v a="$start" -v b="$end" 'BEGIN {printf "%.4f\n", b - a}'
}

# settle waits (at most 5 s) until no process that a run left behind is
# still working, then 20 ms more: Podman's exits before its conmon and
# cleanup process (podman container cleanup) do, and a tug before its
# namespace child has torn down (the kernel then frees the namespaces in
# the background); either would otherwise be timed as part of whichever
# run comes next, and so favour the tool that follows bwrap.
busy=(conmon podman tug "$(basename "${tug[0]}")")
[ ${#old[@]} -eq 0 ] || busy+=("$(basename "${old[0]}")")
settle() {
  local b found
  for _ in $(seq 100); do
    found=
    for b in "${busy[@]}"; do
      # The kernel keeps 15 characters of a process's name. Zombies do
      # no work: tug's namespace child outlives its caller by a moment,
      # and an init that reaps slowly (this machine's reaps every ~2 s)
      # keeps it as one after.
      pgrep -r R,S,D -u "$(id -u)" -x "${b:0:15}" >/dev/null && found=1
    done
    [ -n "$found" ] || break
    sleep 0.05
  done
  sleep 0.02
}

declare -A t=()
for _ in $(seq "$rounds"); do
  # Interleaved, so drift in the machine's load hits all three alike.
  settle
  t[tug]+="$(time_one "${tug[@]}" run --rm --network none "$ref" true) "
  if [ "${NO_PODMAN:-}" != 1 ]; then
    settle
    t[podman]+="$(time_one "${podman[@]}" run --rm --network none "$ref" true) "
  fi
  settle
  t[bwrap]+="$(time_one bwrap --unshare-user --unshare-pid --bind "$tmp/rootfs" / --proc /proc --dev /dev /bin/true) "
  if [ ${#old[@]} -gt 0 ]; then
    settle
    t[old]+="$(time_one "${old[@]}" run --rm --network none "$ref" true) "
  fi
done
m_tug=$(echo ${t[tug]} | tr ' ' '\n' | median)
m_podman=$(echo ${t[podman]:-0} | tr ' ' '\n' | median)
m_bwrap=$(echo ${t[bwrap]} | tr ' ' '\n' | median)
echo "run --rm IMAGE true, median of $rounds, user $(id -un), $(nproc) cores, $(uname -r), run roots on $(stat -f -c %T "$runroot")"
if [ "${NO_PODMAN:-}" = 1 ]; then
  echo "no podman, bwrap $(bwrap --version | awk '{print $2}')"
  printf '%-8s %10s\n' tool seconds
  printf '%-8s %10.4f\n' tug "$m_tug" bwrap "$m_bwrap"
  m_podman=0
  awk -v t="$m_tug" -v b="$m_bwrap" 'BEGIN { printf "tug/bwrap  = %.2f (goal <= 3)\n", t / b }'
else
  echo "podman $(podman --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1 {print $3}'), bwrap $(bwrap --version | awk '{print $2}')"
  printf '%-8s %10s\n' tool seconds
  printf '%-8s %10.4f\n' tug "$m_tug" podman "$m_podman" bwrap "$m_bwrap"
  awk -v t="$m_tug" -v p="$m_podman" -v b="$m_bwrap" 'BEGIN {
    printf "tug/podman = %.3f (goal <= 0.2)\ntug/bwrap  = %.2f (goal <= 3)\n", t / p, t / b }'
fi
if [ ${#old[@]} -gt 0 ]; then
  m_old=$(echo ${t[old]} | tr ' ' '\n' | median)
  awk -v o="$m_old" -v t="$m_tug" -v p="$m_podman" 'BEGIN {
    printf "tug-old  %10.4f\n", o
    if (p > 0) printf "tug-old/podman = %.3f; ", o / p
    printf "tug/tug-old = %.3f\n", t / o }'
fi
