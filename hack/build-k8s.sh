#!/usr/bin/env bash
# Build kube-apiserver and etcd from Go modules (only the Go module proxy is needed) and
# cache them outside the repository, keyed by version:
#   ${HEARTLINE_CACHE:-$HOME/.cache/heartline}/bin/kube-apiserver-vX.Y.Z
#   ${HEARTLINE_CACHE:-$HOME/.cache/heartline}/bin/etcd-vX.Y.Z
# A cached binary that answers --version is reused. Safe to run concurrently (flock).
# On success the last two lines on stdout are `kube-apiserver=PATH` and `etcd=PATH`;
# progress goes to stderr.
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

log() { printf '[build-k8s] %s\n' "$*" >&2; }

works() { [[ -x "$1" ]] && "$1" --version >/dev/null 2>&1; }

emit() {
  echo "kube-apiserver=$APISERVER"
  echo "etcd=$ETCD"
}

if works "$APISERVER" && works "$ETCD"; then
  emit
  exit 0
fi

command -v go >/dev/null || { log "go is not on PATH: install Go >= 1.25 to build the control plane"; exit 1; }
mkdir -p "$BIN" "$CACHE/build"
exec 9>"$BIN/.build.lock"
if ! flock -n 9; then
  log "another build holds $BIN/.build.lock; waiting for it"
  flock 9
  if works "$APISERVER" && works "$ETCD"; then
    log "the other build produced both binaries"
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

build_apiserver() {
  local dir="$WORK/kube-apiserver" start=$SECONDS staging_version mod
  staging_version="v0.${KUBE_VERSION#v1.}"
  mkdir -p "$dir"
  cd "$dir"
  log "building kube-apiserver $KUBE_VERSION (staging modules at $staging_version)"
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with
  # ./staging/src/... paths, which do not exist for a module consumer. Map every one of
  # them (taken from its own go.mod replace block) to the published tag.
  mod="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')"
  [[ -f "$mod" ]] || { log "could not download k8s.io/kubernetes@$KUBE_VERSION go.mod"; exit 1; }
  {
    printf 'module heartline.dev/build/kube-apiserver\n\ngo 1.25.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$KUBE_VERSION"
    sed -n 's#^\t\(k8s\.io/[^ ]*\) => \./staging/src/.*$#\t\1 => \1 '"$staging_version"'#p' "$mod"
    printf ')\n'
  } >go.mod
  log "replace list: $(grep -c ' => ' go.mod) staging modules"
  nice -n 10 go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBE_VERSION" >&2
  local ver="$KUBE_VERSION" major minor ldflags="-s -w" key val
  major="${ver#v}"; major="${major%%.*}"
  minor="${ver#v*.}"; minor="${minor%%.*}"
  # Without these the server reports v0.0.0-master and its compatibility version is wrong.
  for kv in "gitVersion=$ver" "gitMajor=$major" "gitMinor=$minor" "gitTreeState=clean" \
    "buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; do
    key="${kv%%=*}"; val="${kv#*=}"
    ldflags+=" -X k8s.io/component-base/version.$key=$val -X k8s.io/client-go/pkg/version.$key=$val"
  done
  nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$APISERVER.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  mv -f "$APISERVER.tmp" "$APISERVER"
  log "kube-apiserver $KUBE_VERSION built in $((SECONDS - start))s: $APISERVER"
}

total=$SECONDS
works "$ETCD" || build_etcd
works "$APISERVER" || build_apiserver
works "$ETCD" || { log "$ETCD does not run (--version failed)"; exit 1; }
works "$APISERVER" || { log "$APISERVER does not run (--version failed)"; exit 1; }
log "build finished in $((SECONDS - total))s"
emit
