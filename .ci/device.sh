#!/usr/bin/env bash
# Runs on the lent device host (Ubuntu 24.04, pure cgroup v2, no Go, no
# uidmap), as root, what this CI machine (cgroup v1 hybrid) cannot show:
# the cgroup v2 limit tests and the run/matrix tests on such a host.
#
# Prepare here (CGO_ENABLED=0), into the ignored folder .device/:
#   go build -ldflags='-s -w -E=main.entry' -o .device/tug .
#   go test -c -tags e2e -ldflags='-s -w' -o .device/e2e.test .
#   go build -ldflags='-s -w' -o .device/tug-fixture ./fixture/cmd/tug-fixture
#   cp /usr/bin/docker-registry /bin/busybox /usr/bin/newuidmap /usr/bin/newgidmap .device/
#   (for bench/run.sh there: this machine's podman, conmon, runc and bwrap
#   in .device/podkit/bin, the shared libraries they use but libc's in
#   .device/podkit/lib, /etc/containers and /usr/share/containers in
#   .device/podkit/etc and .device/podkit/share)
#   (optionally an earlier build as .device/tug-old, timed beside it)
#   tar -C .device -czf .device.tgz . (carry .device.tgz)
# Logs go to $OUT (host.txt, bench.txt, e2e.txt). BENCH_ROUNDS=0 skips the
# benchmark.
set -u
out=${OUT:-/tmp/device-out}
mkdir -p "$out"
d=/opt/tugdev
mkdir -p $d && tar -C $d -xzf .device.tgz
{
  echo "== host"; date; uname -a; id; head -2 /etc/os-release; nproc
  grep -E 'Seccomp|CapEff|NoNewPrivs' /proc/self/status
  for f in /proc/sys/kernel/apparmor_restrict_unprivileged_userns /proc/sys/kernel/unprivileged_userns_clone \
           /proc/sys/user/max_user_namespaces /sys/module/apparmor/parameters/enabled; do
    echo "$f: $(cat $f 2>&1)"; done
  echo "apparmor label: $(cat /proc/self/attr/current 2>&1)"
  echo "== cgroups"; cat /proc/self/cgroup; grep cgroup /proc/self/mountinfo
  echo "controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"; echo "subtree: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
  echo "== devices, helpers"; ls -l /dev/fuse /dev/net/tun 2>&1
  [ -e /.dockerenv ] && echo "/.dockerenv present"; echo "pid 1: $(cat /proc/1/comm)"; systemd-detect-virt 2>&1
  for t in newuidmap fuse-overlayfs pasta slirp4netns busybox setpriv unshare; do echo "$t: $(command -v $t)"; done
  df -h /tmp / | cat
} >"$out/host.txt" 2>&1

install -m 0755 $d/docker-registry /usr/bin/docker-registry
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q static || install -m 0755 $d/busybox /bin/busybox
install -m 4755 -o root -g root $d/newuidmap /usr/bin/newuidmap
install -m 4755 -o root -g root $d/newgidmap /usr/bin/newgidmap
chmod 0666 /dev/net/tun 2>/dev/null

{
  echo "== unprivileged user namespace as nobody"
  timeout 10 setpriv --reuid=65534 --regid=65534 --clear-groups unshare -Ur sh -c \
    'echo "label inside: $(cat /proc/self/attr/current)"; grep CapEff /proc/self/status; mkdir -p /tmp/mnt-probe; mount -t tmpfs none /tmp/mnt-probe && echo "mount in userns: ok"' 2>&1
  echo "== tug info (root)"; timeout 20 $d/tug info 2>&1
} >>"$out/host.txt" 2>&1

cd "$(dirname "$0")/.."
k=$d/podkit
if [ "${BENCH_ROUNDS:-30}" -gt 0 ] && [ -d $k ]; then
  {
    # bench/run.sh as an unprivileged user with a subordinate range, with
    # the carried Podman, runc and bwrap (the libraries the host lacks go
    # to /usr/local/lib); Podman leaves again before the tests (its e2e
    # tests expect this machine's).
    install -m 0755 $k/bin/podman $k/bin/conmon $k/bin/bwrap /usr/bin/
    install -m 0755 $k/bin/runc /usr/sbin/
    mkdir -p /etc/containers /usr/share/containers
    cp -rn $k/etc/containers/. /etc/containers/; cp -rn $k/share/containers/. /usr/share/containers/
    for l in $k/lib/*; do
      ldconfig -p | grep -q "^[[:space:]]*$(basename $l) " || cp $l /usr/local/lib/
    done
    ldconfig
    id tugbench >/dev/null 2>&1 || useradd -m -u 1500 tugbench
    grep -q '^tugbench:' /etc/subuid || echo tugbench:500000:65536 >>/etc/subuid
    grep -q '^tugbench:' /etc/subgid || echo tugbench:500000:65536 >>/etc/subgid
    b=/opt/tugbench; mkdir -p $b/bench $b/bin /run/user/1500
    cp bench/run.sh $b/bench/; cp $d/tug $d/tug-fixture $b/bin/
    # An earlier build, carried as tug-old, is timed in the same rounds.
    old=; [ -x $d/tug-old ] && cp $d/tug-old $b/bin/ && old=TUG_BENCH_OLD=$b/bin/tug-old
    chmod -R a+rX $b
    chown tugbench: /run/user/1500; chmod 700 /run/user/1500
    asbench() {
      setpriv --reuid=1500 --regid=1500 --init-groups env HOME=/home/tugbench XDG_RUNTIME_DIR=/run/user/1500 \
        TUG_BENCH_BIN=$b/bin $old "$@"
    }
    nopod=
    asbench podman --runtime runc run --rm --network none --rootfs / true 2>&1 | tail -3 || true
    for cfg in "tmpfs" "disk" "tmpfs taskset -c 0,1"; do
      set -- $cfg
      echo "== bench/run.sh ${BENCH_ROUNDS:-30}: stores and run roots on $1${2:+, $*}"
      env=(); [ $1 = tmpfs ] && env=(TMPDIR=/dev/shm RUNROOT=tmpfs)
      shift
      asbench env "${env[@]}" $nopod timeout 60 "$@" bash $b/bench/run.sh ${BENCH_ROUNDS:-30} 2>&1 | tail -12
      rc=${PIPESTATUS[0]}
      if [ -z "$nopod" ] && [ "$rc" -ne 0 ]; then
        echo "(failed with Podman: again without it)"; nopod=NO_PODMAN=1
        asbench env "${env[@]}" $nopod timeout 60 "$@" bash $b/bench/run.sh ${BENCH_ROUNDS:-30} 2>&1 | tail -12
      fi
    done
    pkill -u tugbench || true
    rm -f /usr/bin/podman /usr/bin/conmon
  } >"$out/bench.txt" 2>&1
fi
TUG_BINARY=$d/tug timeout ${E2E_SECS:-300} $d/e2e.test -test.v -test.count=1 -test.timeout $(( ${E2E_SECS:-300} - 10 ))s \
  -test.run "${E2E_RUN:-TestLimitsV2|TestRunBasics|TestHostMatrix\$}" >"$out/e2e.txt" 2>&1
echo "e2e exit: $?" >>"$out/e2e.txt"
{
  echo "== tug info (tug-e2e)"
  timeout 20 setpriv --reuid=tug-e2e --regid=tug-e2e --clear-groups env HOME=/home/tug-e2e $d/tug info 2>&1
} >>"$out/host.txt" 2>&1
cat "$out/bench.txt" 2>/dev/null
grep -E '^(--- |=== RUN|ok|FAIL|PASS|e2e exit)' "$out/e2e.txt" | grep -v '=== RUN' | tail -60
