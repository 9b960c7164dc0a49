#!/usr/bin/env bash
# Installs everything Heartline's tests, lab and demo need on a fresh Debian machine:
# Debian packages, node modules, the native fence/netlink helper, and the real
# kube-apiserver + etcd built from Go modules (cached by version outside the repo).
# Idempotent: a second run on a warm machine takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ip >/dev/null || need_apt+=(iproute2)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v gcc >/dev/null || need_apt+=(gcc libc6-dev)
command -v make >/dev/null || need_apt+=(make)
command -v flock >/dev/null || need_apt+=(util-linux)
command -v curl >/dev/null || need_apt+=(curl)
command -v python3 >/dev/null || need_apt+=(python3)
command -v arping >/dev/null || need_apt+=(iputils-arping)
command -v ping >/dev/null || need_apt+=(iputils-ping)
# The image test (test/e2e/image.test.ts): unpack and run the OCI image without an engine.
command -v runc >/dev/null || need_apt+=(runc)
command -v umoci >/dev/null || need_apt+=(umoci)
command -v skopeo >/dev/null || need_apt+=(skopeo)
if ((${#need_apt[@]})); then
  echo "install: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "install: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

if [[ -f native/Makefile ]]; then
  make -s -C native
fi

if [[ -x hack/build-k8s.sh ]] || [[ -f hack/build-k8s.sh ]]; then
  bash hack/build-k8s.sh
fi

# keepalived: only for the failover benchmark (bench/failover), one per lab node namespace.
# Installing it must never start a keepalived in the root namespace: deny service starts
# with a policy-rc.d for the duration of the install (restored after), and mask the unit.
if ! command -v keepalived >/dev/null; then
  echo "install: apt-get install keepalived (service start denied)"
  export DEBIAN_FRONTEND=noninteractive
  prc=/usr/sbin/policy-rc.d
  saved=""
  if [[ -e $prc ]]; then saved=$(mktemp); cp -p "$prc" "$saved"; fi
  printf '#!/bin/sh\nexit 101\n' >"$prc"; chmod 755 "$prc"
  trap 'if [[ -n $saved ]]; then mv -f "$saved" "$prc"; else rm -f "$prc"; fi' EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends keepalived >/dev/null
  if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl stop keepalived.service 2>/dev/null || true
    systemctl mask keepalived.service >/dev/null 2>&1 || true
  fi
fi
