#!/usr/bin/env bash
# The README's run command: installs what is needed (Debian packages, node modules, the
# native fence, kube-apiserver + etcd built from Go modules), then runs the failover demo:
# a 3-node Heartline cluster in network namespaces with a real API server, a client probing
# the VIP at 100 Hz, the holder powered off, the client's view of the failover, teardown.
# Needs root (network namespaces). Arguments go to hack/lab/demo.ts, e.g. --profile fast.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/install.sh
exec npx tsx hack/lab/demo.ts "$@"
