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
