#!/usr/bin/env bash
# Build promtool (Prometheus's rule checker and rule unit-test runner) from Go modules (only
# the Go module proxy is needed) and cache it outside the repository, keyed by version:
#   ${HEARTLINE_CACHE:-$HOME/.cache/heartline}/bin/promtool-vX.Y.Z
# A cached binary that answers --version is reused. Safe to run concurrently (flock).
# On success the last line on stdout is `promtool=PATH`; progress goes to stderr.
#
# Version: the github.com/prometheus/prometheus module is tagged v0.<minor*100+...>: module
# v0.316.0 is Prometheus 3.16.0 (the newest the proxy served when this was written, and the
# checksum database verifies it). The tests use promtool for `check rules` and `test rules`
# of deploy/monitoring (test/unit/monitoring).
set -euo pipefail

PROMETHEUS_MODULE_VERSION="${PROMETHEUS_MODULE_VERSION:-v0.316.0}"
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v3.16.0}"
CACHE="${HEARTLINE_CACHE:-$HOME/.cache/heartline}"
BIN="$CACHE/bin"
PROMTOOL="$BIN/promtool-$PROMETHEUS_VERSION"

log() { printf '[build-promtool] %s\n' "$*" >&2; }
works() { [[ -x "$1" ]] && "$1" --version >/dev/null 2>&1; }

if works "$PROMTOOL"; then
  echo "promtool=$PROMTOOL"
  exit 0
fi

command -v go >/dev/null || { log "go is not on PATH: install Go >= 1.26 to build promtool"; exit 1; }
mkdir -p "$BIN" "$CACHE/build"
exec 9>"$BIN/.promtool.lock"
if ! flock -n 9; then
  log "another build holds $BIN/.promtool.lock; waiting for it"
  flock 9
  if works "$PROMTOOL"; then
    echo "promtool=$PROMTOOL"
    exit 0
  fi
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
WORK="$(mktemp -d "$CACHE/build/promtool.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
cat >go.mod <<EOF
module heartline.dev/build/promtool

go 1.26.0

require github.com/prometheus/prometheus $PROMETHEUS_MODULE_VERSION
EOF
start=$SECONDS
log "building promtool $PROMETHEUS_VERSION (module $PROMETHEUS_MODULE_VERSION)"
nice -n 10 go get "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION" >&2
v="${PROMETHEUS_VERSION#v}"
# remove_all_sd leaves out Prometheus's service-discovery plugins (cloud SDKs): promtool's
# rule checks and rule unit tests do not use them, and they are most of the build.
nice -n 10 go build -trimpath -tags remove_all_sd \
  -ldflags "-s -w -X github.com/prometheus/common/version.Version=$v -X github.com/prometheus/common/version.Branch=module -X github.com/prometheus/common/version.Revision=$PROMETHEUS_MODULE_VERSION" \
  -o "$PROMTOOL.tmp" github.com/prometheus/prometheus/cmd/promtool
mv -f "$PROMTOOL.tmp" "$PROMTOOL"
works "$PROMTOOL" || { log "$PROMTOOL does not run (--version failed)"; exit 1; }
log "promtool $PROMETHEUS_VERSION built in $((SECONDS - start))s: $PROMTOOL"
echo "promtool=$PROMTOOL"
