#!/usr/bin/env bash
# Brings up a Docker engine and the local test image for pipewright's Docker tests.
# Idempotent: on a warm machine (dockerd running, image present) it only runs two
# `docker` queries. No registry is reachable here, so the test image is built from
# Debian's busybox-static and imported, never pulled.
#
# Env: DOCKER_TEST_IMAGE (default pipewright-test/busybox:latest),
#      DOCKERD_LOG (default /var/log/pipewright-dockerd.log),
#      DOCKER_WAIT_SECONDS (default 60).
set -euo pipefail

IMAGE="${DOCKER_TEST_IMAGE:-pipewright-test/busybox:latest}"
LOG="${DOCKERD_LOG:-/var/log/pipewright-dockerd.log}"
WAIT="${DOCKER_WAIT_SECONDS:-60}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 1. Engine binaries (docker.io brings dockerd, containerd, runc and the CLI).
if ! command -v dockerd >/dev/null 2>&1; then
  echo "docker.sh: installing docker.io"
  apt_install docker.io
fi

# 2. Engine process.
if ! docker info >/dev/null 2>&1; then
  echo "docker.sh: starting dockerd (log: $LOG)"
  # No bridge and no iptables: this machine has no iptables, and tests run with network mode none.
  $SUDO setsid dockerd --host unix:///var/run/docker.sock --bridge=none --iptables=false --ip-masq=false \
    >"$LOG" 2>&1 </dev/null &
  deadline=$((SECONDS + WAIT))
  until docker info >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "docker.sh: dockerd did not answer within ${WAIT}s; last lines of $LOG:" >&2
      tail -n 30 "$LOG" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
fi

# 3. Test image.
if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  if [ ! -x /bin/busybox ] || ! dpkg -s busybox-static >/dev/null 2>&1; then
    echo "docker.sh: installing busybox-static"
    apt_install busybox-static
  fi
  echo "docker.sh: building $IMAGE from busybox-static"
  root="$(mktemp -d)"
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/root"
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  # Every applet busybox was built with, so images behave like a small distro.
  for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\n' >"$root/etc/group"
  tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
fi

echo "docker.sh: engine up ($(docker version --format '{{.Server.Version}}' 2>/dev/null)), image $IMAGE present"
