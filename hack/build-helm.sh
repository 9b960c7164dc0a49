#!/usr/bin/env bash
# Build helm v3 from Go modules (only the Go module proxy is needed) and cache it outside the
# repository, keyed by version:
#   ${HEARTLINE_CACHE:-$HOME/.cache/heartline}/bin/helm-vX.Y.Z
# A cached binary that answers `version` is reused. Safe to run concurrently (flock).
# On success the last line on stdout is `helm=PATH`; progress goes to stderr.
#
# Version: HELM_VERSION is the helm v3 release built against the Kubernetes minor the lab
# runs (hack/build-k8s.sh KUBE_VERSION v1.34): helm v3.19.x requires k8s.io/client-go
# v0.34, so its default capabilities (.Capabilities.KubeVersion, `helm lint`'s deprecation
# check) are those of Kubernetes 1.34, as helm's own Makefile sets them.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.19.5}"
CACHE="${HEARTLINE_CACHE:-$HOME/.cache/heartline}"
BIN="$CACHE/bin"
HELM="$BIN/helm-$HELM_VERSION"

log() { printf '[build-helm] %s\n' "$*" >&2; }

works() { [[ -x "$1" ]] && "$1" version --short >/dev/null 2>&1; }

if works "$HELM"; then
  echo "helm=$HELM"
  exit 0
fi

command -v go >/dev/null || { log "go is not on PATH: install Go >= 1.24 to build helm"; exit 1; }
mkdir -p "$BIN" "$CACHE/build"
exec 9>"$BIN/.build-helm.lock"
if ! flock -n 9; then
  log "another build holds $BIN/.build-helm.lock; waiting for it"
  flock 9
  if works "$HELM"; then
    echo "helm=$HELM"
    exit 0
  fi
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
WORK="$(mktemp -d "$CACHE/build/helm.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
start=$SECONDS
cd "$WORK"
cat >go.mod <<GOMOD
module heartline.dev/build/helm

go 1.24.0

require helm.sh/helm/v3 $HELM_VERSION
GOMOD
log "building helm $HELM_VERSION"
nice -n 10 go get "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
# The ldflags of helm's Makefile: its version, and the Kubernetes version of the client-go it
# is built with (major + 1, minor) as the default capabilities of `helm template` and lint.
kver="$(go list -f '{{.Version}}' -m k8s.io/client-go)"
kver="${kver#v}"
kmajor=$((${kver%%.*} + 1))
kminor="${kver#*.}"
kminor="${kminor%%.*}"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags+=" -X $pkg.k8sVersionMajor=$kmajor -X $pkg.k8sVersionMinor=$kminor"
done
nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$HELM.tmp" helm.sh/helm/v3/cmd/helm
mv -f "$HELM.tmp" "$HELM"
works "$HELM" || { log "$HELM does not run (helm version failed)"; exit 1; }
log "helm $HELM_VERSION built in $((SECONDS - start))s (Kubernetes capabilities v$kmajor.$kminor): $HELM"
echo "helm=$HELM"
