#!/usr/bin/env bash
# Runs on the lent device host (Ubuntu 24.04, pure cgroup v2, no Go, no
# uidmap), as root, what this CI machine (cgroup v1 hybrid) cannot show:
# the cgroup v2 limit tests and the run/matrix tests on such a host.
#
# Prepare here (CGO_ENABLED=0), into the ignored folder .device/:
#   go build -ldflags='-s -w' -o .device/tug .
#   go test -c -tags e2e -ldflags='-s -w' -o .device/e2e.test .
#   cp /usr/bin/docker-registry /bin/busybox /usr/bin/newuidmap /usr/bin/newgidmap .device/
#   tar -C .device -czf .device.tgz . (carry .device.tgz)
# Logs go to $OUT (host.txt, e2e.txt).
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
TUG_BINARY=$d/tug timeout ${E2E_SECS:-300} $d/e2e.test -test.v -test.count=1 -test.timeout $(( ${E2E_SECS:-300} - 10 ))s \
  -test.run "${E2E_RUN:-TestLimitsV2|TestRunBasics|TestHostMatrix\$}" >"$out/e2e.txt" 2>&1
echo "e2e exit: $?" >>"$out/e2e.txt"
{
  echo "== tug info (tug-e2e)"
  timeout 20 setpriv --reuid=tug-e2e --regid=tug-e2e --clear-groups env HOME=/home/tug-e2e $d/tug info 2>&1
} >>"$out/host.txt" 2>&1
grep -E '^(--- |=== RUN|ok|FAIL|PASS|e2e exit)' "$out/e2e.txt" | grep -v '=== RUN' | tail -60
