#!/usr/bin/env bash
# Build kube-apiserver and etcd from Go modules (only the Go module proxy is needed) and
# cache them outside the repository, keyed by version:
#   ${HEARTLINE_CACHE:-$HOME/.cache/heartline}/bin/kube-apiserver-vX.Y.Z
#   ${HEARTLINE_CACHE:-$HOME/.cache/heartline}/bin/etcd-vX.Y.Z
# A cached binary that answers --version is reused. Safe to run concurrently (flock).
# On success the last two lines on stdout are `kube-apiserver=PATH` and `etcd=PATH`;
# progress goes to stderr.
#
# `--node` also builds what a real-kubelet cluster needs (hack/cluster), from the same
# modules and version: kubelet, kube-controller-manager, kube-scheduler and kube-proxy, cached as
# $BIN/<name>-vX.Y.Z, printed as `<name>=PATH` lines before the two above. Only the lab
# cluster asks for them; the integration tests do not, so their cold build stays short.
#
# Versions: KUBE_VERSION is the newest v1.34 patch whose go.mod the checksum database
# (proxied by proxy.golang.org) verifies; v1.34.11/12 are on the proxy but sum.golang.org
# lookups 404 there, and we keep checksum verification on. ETCD_VERSION is the etcd that
# upstream pairs with it (build/dependencies.yaml, hack/lib/etcd.sh, kubeadm
# DefaultEtcdVersion in k8s.io/kubernetes v1.34.10: 3.6.5).
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.34.10}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.5}"
CACHE="${HEARTLINE_CACHE:-$HOME/.cache/heartline}"
BIN="$CACHE/bin"
APISERVER="$BIN/kube-apiserver-$KUBE_VERSION"
ETCD="$BIN/etcd-$ETCD_VERSION"
NODE_CMDS=(kubelet kube-controller-manager kube-scheduler kube-proxy)
WANT_NODE=0
for arg in "$@"; do
  case "$arg" in
    --node) WANT_NODE=1 ;;
    *) printf '[build-k8s] unknown argument %s (the only option is --node)\n' "$arg" >&2; exit 2 ;;
  esac
done

log() { printf '[build-k8s] %s\n' "$*" >&2; }

works() { [[ -x "$1" ]] && "$1" --version >/dev/null 2>&1; }

node_bin() { echo "$BIN/$1-$KUBE_VERSION"; }

node_done() {
  local c
  ((WANT_NODE)) || return 0
  for c in "${NODE_CMDS[@]}"; do works "$(node_bin "$c")" || return 1; done
}

all_done() { works "$APISERVER" && works "$ETCD" && node_done; }

emit() {
  local c
  if ((WANT_NODE)); then
    for c in "${NODE_CMDS[@]}"; do echo "$c=$(node_bin "$c")"; done
  fi
  echo "kube-apiserver=$APISERVER"
  echo "etcd=$ETCD"
}

if all_done; then
  emit
  exit 0
fi

command -v go >/dev/null || { log "go is not on PATH: install Go >= 1.25 to build the control plane"; exit 1; }
mkdir -p "$BIN" "$CACHE/build"
exec 9>"$BIN/.build.lock"
if ! flock -n 9; then
  log "another build holds $BIN/.build.lock; waiting for it"
  flock 9
  if all_done; then
    log "the other build produced the binaries"
    emit
    exit 0
  fi
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
WORK="$(mktemp -d "$CACHE/build/tmp.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

build_etcd() {
  local dir="$WORK/etcd" start=$SECONDS
  mkdir -p "$dir"
  cd "$dir"
  # In etcd 3.6 the server's main package is the root of the go.etcd.io/etcd/server/v3 module.
  cat >go.mod <<EOF
module heartline.dev/build/etcd

go 1.25.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
  log "building etcd $ETCD_VERSION"
  nice -n 10 go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
  nice -n 10 go build -trimpath -ldflags "-s -w" -o "$ETCD.tmp" go.etcd.io/etcd/server/v3
  mv -f "$ETCD.tmp" "$ETCD"
  log "etcd $ETCD_VERSION built in $((SECONDS - start))s: $ETCD"
}

# Writes a go.mod in the current directory that builds commands of k8s.io/kubernetes at
# KUBE_VERSION as a module consumer.
kube_gomod() {
  local staging_version="v0.${KUBE_VERSION#v1.}" mod
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with
  # ./staging/src/... paths, which do not exist for a module consumer. Map every one of
  # them (taken from its own go.mod replace block) to the published tag.
  mod="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')"
  [[ -f "$mod" ]] || { log "could not download k8s.io/kubernetes@$KUBE_VERSION go.mod"; exit 1; }
  {
    printf 'module heartline.dev/build/kube\n\ngo 1.25.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$KUBE_VERSION"
    sed -n 's#^\t\(k8s\.io/[^ ]*\) => \./staging/src/.*$#\t\1 => \1 '"$staging_version"'#p' "$mod"
    printf ')\n'
  } >go.mod
  log "replace list: $(grep -c ' => ' go.mod) staging modules (at $staging_version)"
}

kube_ldflags() {
  local ver="$KUBE_VERSION" major minor ldflags="-s -w" key val kv
  major="${ver#v}"; major="${major%%.*}"
  minor="${ver#v*.}"; minor="${minor%%.*}"
  # Without these the binaries report v0.0.0-master and the compatibility version is wrong.
  for kv in "gitVersion=$ver" "gitMajor=$major" "gitMinor=$minor" "gitTreeState=clean" \
    "buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; do
    key="${kv%%=*}"; val="${kv#*=}"
    ldflags+=" -X k8s.io/component-base/version.$key=$val -X k8s.io/client-go/pkg/version.$key=$val"
  done
  echo "$ldflags"
}

build_apiserver() {
  local dir="$WORK/kube-apiserver" start=$SECONDS
  mkdir -p "$dir"
  cd "$dir"
  log "building kube-apiserver $KUBE_VERSION"
  kube_gomod
  nice -n 10 go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" >&2
  nice -n 10 go build -trimpath -ldflags "$(kube_ldflags)" -o "$APISERVER.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  mv -f "$APISERVER.tmp" "$APISERVER"
  log "kube-apiserver $KUBE_VERSION built in $((SECONDS - start))s: $APISERVER"
}

# kubelet, kube-controller-manager, kube-scheduler and kube-proxy in one `go build` (they share most
# packages, so one build compiles them once).
build_node() {
  local dir="$WORK/kube-node" start=$SECONDS c pkgs=()
  mkdir -p "$dir/out"
  cd "$dir"
  log "building ${NODE_CMDS[*]} $KUBE_VERSION"
  kube_gomod
  for c in "${NODE_CMDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  nice -n 10 go get "${pkgs[@]/%/@$KUBE_VERSION}" >&2
  nice -n 10 go build -trimpath -ldflags "$(kube_ldflags)" -o "$dir/out/" "${pkgs[@]}"
  for c in "${NODE_CMDS[@]}"; do mv -f "$dir/out/$c" "$(node_bin "$c")"; done
  log "${NODE_CMDS[*]} $KUBE_VERSION built in $((SECONDS - start))s"
}

total=$SECONDS
works "$ETCD" || build_etcd
works "$APISERVER" || build_apiserver
works "$ETCD" || { log "$ETCD does not run (--version failed)"; exit 1; }
works "$APISERVER" || { log "$APISERVER does not run (--version failed)"; exit 1; }
node_done || build_node
if ((WANT_NODE)); then
  for c in "${NODE_CMDS[@]}"; do
    works "$(node_bin "$c")" || { log "$(node_bin "$c") does not run (--version failed)"; exit 1; }
  done
fi
log "build finished in $((SECONDS - total))s"
emit
