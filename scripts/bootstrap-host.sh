#!/usr/bin/env bash
# Install and start what the demo and the tests need on a Debian 12 host: Docker engine,
# the Compose v2 plugin, podman (with kubectl, for the k8s/ tier), and the peers the tests compare against (redis-server,
# redis_exporter, promtool, nginx with its stream module, haproxy, wrk, chromium). Idempotent: a second run only checks.
set -euo pipefail

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap-host: run as root (or with sudo) to install packages" >&2
    exit 1
  fi
}

# Debian packages, by the command that proves each is present.
declare -A PKG_FOR=(
  [dockerd]=docker.io
  [mmdebstrap]=mmdebstrap
  [podman]=podman
  [catatonit]=catatonit
  [redis-server]=redis-server
  [prometheus-redis-exporter]=prometheus-redis-exporter
  [promtool]=prometheus
  [nginx]=nginx-light
  [haproxy]=haproxy
  [wrk]=wrk
  [stunnel4]=stunnel4
  [testssl]=testssl.sh
  [git]=git
  [lighttpd]=lighttpd
  [sshd]=openssh-server
  [ssh]=openssh-client
  [rsyslogd]=rsyslog
  [chromium]=chromium  # the e2e tier loads the demo page in a real headless browser
)

missing=()
for cmd in "${!PKG_FOR[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || [ -x "/usr/bin/$cmd" ] || missing+=("${PKG_FOR[$cmd]}")
done
# nginx's stream module (the ambassador's tcp mode is compared with it): no command either.
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || missing+=(libnginx-mod-stream)
# rsyslog's TLS driver (logagent's syslog-over-TLS tests): a plugin, no command of its own.
compgen -G '/usr/lib/*/rsyslog/lmnsd_gtls.so' >/dev/null || missing+=(rsyslog-gnutls)
# Debian's own python3 with venv: the images' interpreter, used for benchmarks.
/usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
# ... and its headers: the benchmarks build the compiled hot path for it (setup.py).
[ -f "/usr/include/python3.$(/usr/bin/python3 -c 'import sys; print(sys.version_info[1])')/Python.h" ] \
  || missing+=(python3-dev)

if [ "${#missing[@]}" -gt 0 ]; then
  need_root
  echo "bootstrap-host: installing ${missing[*]}"
  # No init system runs services here; keep package scripts from trying to start
  # redis/prometheus/exporter daemons that would take the demo's ports.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Compose v2: bookworm only ships v1; trixie's docker-compose package is v2 and installs
# cleanly on bookworm. Pinned low so nothing else is taken from trixie.
if ! docker compose version >/dev/null 2>&1; then
  need_root
  echo "bootstrap-host: installing the Compose v2 plugin from trixie"
  if [ ! -f /etc/apt/sources.list.d/trixie.sources ]; then
    cat >/etc/apt/sources.list.d/trixie.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' >/etc/apt/preferences.d/trixie-low
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq -t trixie docker-compose >/dev/null
fi

# podman: container ulimits must stay under the VM's hard limits, or runc fails.
if [ ! -f /etc/containers/containers.conf ] || ! grep -q default_ulimits /etc/containers/containers.conf; then
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = ["nofile=16384:16384", "nproc=4096:4096"]\n' >>/etc/containers/containers.conf
fi

# kubectl (client only, for `kubectl kustomize`): preinstalled on the machines this project
# targets; no Debian package carries it, so a missing one is named, not guessed at.
if ! command -v kubectl >/dev/null 2>&1; then
  echo "bootstrap-host: kubectl is missing (the k8s/ checks render with kubectl kustomize);" \
    "install it: https://kubernetes.io/docs/tasks/tools/" >&2
  exit 1
fi

# The Docker daemon: no init system, so start it ourselves and wait for it.
if ! docker info >/dev/null 2>&1; then
  if [ -S /var/run/docker.sock ] && ! pgrep -x dockerd >/dev/null; then rm -f /var/run/docker.sock; fi
  pgrep -x dockerd >/dev/null || { need_root; setsid dockerd >/var/log/dockerd.log 2>&1 </dev/null & }
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "bootstrap-host: dockerd did not start; see /var/log/dockerd.log" >&2; exit 1; }
fi
echo "bootstrap-host: docker $(docker version -f '{{.Server.Version}}'), $(docker compose version --short 2>/dev/null | sed 's/^/compose /')"
