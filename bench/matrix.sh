#!/usr/bin/env bash
# The host matrix of docs/host-matrix.md: the scenario pull → build → run →
# push → pull back on every host this machine can simulate, with tug
# (TestHostMatrix) and with Podman and its Buildah (TestHostMatrixPodman,
# skipped when podman is not installed), then a side-by-side summary.
# Run as root (the tests create the users tug-e2e and tug-e2e-nosub and
# simulate hosts with mounts and a seccomp filter); it needs what the e2e
# tests need (docker-registry, uidmap, fuse-overlayfs, podman, runc).
#
#   bench/matrix.sh [OUTDIR]      (default: a new temporary directory)
#
# Writes OUTDIR/tug.md, OUTDIR/podman.md and OUTDIR/summary.md and prints
# all three; paste them into docs/host-matrix.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=0
out=${1:-$(mktemp -d)}
mkdir -p "$out"
TUG_MATRIX_OUT="$out/tug.md" TUG_MATRIX_PODMAN_OUT="$out/podman.md" \
  go test -tags e2e -count=1 -run 'TestHostMatrix(Podman)?$' . >"$out/test.log" 2>&1 ||
  { tail -50 "$out/test.log" >&2; echo "the matrix test failed; its log is $out/test.log" >&2; exit 1; }
[ -f "$out/podman.md" ] || printf '| host | step | result | error line |\n|---|---|---|---|\n' >"$out/podman.md"

# summary: one line per host and step, tug's result and Podman's, cut
# before their details.
awk -F' \\| ' '
  function short(r) { sub(/;.*/, "", r); sub(/ \(warns:.*/, " (warns)", r); return r }
  FNR <= 2 { next }
  { host = substr($1, 3); key = host SUBSEP $2 }
  FILENAME ~ /tug\.md$/ { if (!(key in tug)) order[++n] = key; tug[key] = short($3) }
  FILENAME ~ /podman\.md$/ { podman[key] = short($3) }
  END {
    print "| host | step | tug | Podman 4.3 / Buildah |"
    print "|---|---|---|---|"
    for (i = 1; i <= n; i++) {
      split(order[i], k, SUBSEP)
      p = (order[i] in podman) ? podman[order[i]] : "not run"
      printf "| %s | %s | %s | %s |\n", k[1], k[2], tug[order[i]], p
    }
  }' "$out/tug.md" "$out/podman.md" >"$out/summary.md"

for f in summary tug podman; do
  printf '## %s\n\n' "$f"
  cat "$out/$f.md"
  echo
done
echo "written to $out" >&2
