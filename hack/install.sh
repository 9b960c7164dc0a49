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

# helm, for the chart's tests (test/integration/helm-chart.test.ts, test/e2e/helm-cluster.test.ts),
# cached by version like the control plane.
if [[ -f hack/build-helm.sh ]]; then
  bash hack/build-helm.sh >/dev/null
fi

# Packages whose install would start a daemon in the root namespace: keepalived (the failover
# benchmark, one per lab node namespace) and containerd (the real-kubelet cluster, one per lab
# node namespace with its own socket; hack/cluster). Installing them must never start one in
# the root namespace: deny service starts with a policy-rc.d for the duration of the install
# (restored after), and mask the units.
need_nostart=()
command -v keepalived >/dev/null || need_nostart+=(keepalived)
command -v containerd >/dev/null || need_nostart+=(containerd)
[[ -x /usr/lib/cni/bridge ]] || need_nostart+=(containernetworking-plugins)
if ((${#need_nostart[@]})); then
  echo "install: apt-get install ${need_nostart[*]} (service start denied)"
  export DEBIAN_FRONTEND=noninteractive
  prc=/usr/sbin/policy-rc.d
  saved=""
  if [[ -e $prc ]]; then saved=$(mktemp); cp -p "$prc" "$saved"; fi
  printf '#!/bin/sh\nexit 101\n' >"$prc"; chmod 755 "$prc"
  trap 'if [[ -n $saved ]]; then mv -f "$saved" "$prc"; else rm -f "$prc"; fi' EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_nostart[@]}" >/dev/null
  if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    for unit in keepalived containerd; do
      systemctl stop "$unit.service" 2>/dev/null || true
      systemctl mask "$unit.service" >/dev/null 2>&1 || true
    done
  fi
fi

# The real-kubelet e2e (root only, like every e2e test): kubelet, kube-controller-manager,
# kube-scheduler and kube-proxy, cached by version like the control plane.
if [[ "$(id -u)" == 0 ]] && [[ -f hack/build-k8s.sh ]]; then
  bash hack/build-k8s.sh --node >/dev/null
fi
