# Helpers the benchmarks share. Source it from a script that has done
# `cd` to the repository root:
#
#   bench_need TOOL...        exit with an install hint unless each is on PATH
#   bench_setup               make $tmp, build tug and tug-fixture into it
#                             (or copy them from $TUG_BENCH_BIN), and clean
#                             everything up on exit
#   bench_registry NAME       start a registry with its files in $tmp/NAME;
#                             its address is in $tmp/NAME.addr
#   now                       the time, in seconds
#   median                    the median of the numbers on stdin
#   ratio A B                 A / B
#   seconds START END         END - START, three decimals
#
# Stores that hold files of subordinate ids go under $tmp/stores: cleanup
# removes them inside a user namespace.

export CGO_ENABLED=0
bench_pids=()

bench_need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "bench needs $t (apt-get install -y $*)" >&2; exit 1; }
  done
}

bench_setup() {
  tmp=$(mktemp -d)
  chmod 755 "$tmp"
  trap bench_cleanup EXIT
  if [ -n "${TUG_BENCH_BIN:-}" ]; then
    # Binaries built beforehand (by another user, whose Go module cache
    # this one cannot read): tug and tug-fixture in that directory.
    cp "$TUG_BENCH_BIN/tug" "$TUG_BENCH_BIN/tug-fixture" "$tmp/"
  else
    go build -ldflags=-E=main.entry -o "$tmp/tug" .
    go build -o "$tmp/tug-fixture" ./fixture/cmd/tug-fixture
  fi
}

bench_cleanup() {
  local p
  for p in "${bench_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${bench_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  # As root, skopeo leaves its stores' overlay directories mounted.
  if [ "$(id -u)" -eq 0 ]; then
    awk '{print $2}' /proc/mounts | grep "^$tmp/" | sort -r | xargs -r umount -l || true
  fi
  # Rootless stores hold files of subordinate ids: remove them inside a user namespace.
  podman unshare rm -rf "$tmp/stores" 2>/dev/null || rm -rf "$tmp/stores"
  rm -rf "$tmp"
}

bench_registry() {
  "$tmp/tug-fixture" registry "$tmp/$1" >"$tmp/$1.addr" &
  bench_pids+=($!)
  for _ in $(seq 100); do [ -s "$tmp/$1.addr" ] && return; sleep 0.1; done
  echo "registry $1 did not start" >&2
  exit 1
}

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {print a / b}'; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f\n", b - a}'; }
