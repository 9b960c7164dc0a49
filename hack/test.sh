#!/usr/bin/env bash
# Runs every Heartline test: static checks, unit + fuzz + simulator, integration tests
# against a real kube-apiserver + etcd, and e2e tests in real network namespaces.
# Installs what it needs first (hack/install.sh). Prints one closing line:
#   "tests: N passed, N failed"
set -euo pipefail
cd "$(dirname "$0")/.."

bash hack/install.sh

echo "== static checks"
npx tsc -p tsconfig.json --noEmit
npx eslint --max-warnings=0 .
npx prettier --check . >/dev/null || { echo "prettier: run 'npm run format'"; exit 1; }

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
status=0
run_project() {
  local name="$1"; shift
  echo "== $name tests"
  node --experimental-vm-modules node_modules/jest/bin/jest.js --selectProjects "$name" \
    --json --outputFile="$out/$name.json" "$@" || status=1
}
run_project unit

# The protocol simulator: 10,000 seeded random schedules (crashes, partitions incl. one-way,
# loss, duplication, reordering, pauses, clock drift and steps), S1/S2/L1 checked at every
# step. A fixed seed range keeps CI reproducible; any failure prints the seed and a trace.
echo "== simulator: ${HEARTLINE_SIM_SCHEDULES:-10000} schedules"
sim_out="$out/sim.txt"
if npx tsx test/sim/cli.ts --seed "${HEARTLINE_SIM_SEED:-1}" --schedules "${HEARTLINE_SIM_SCHEDULES:-10000}" --workers 2 >"$sim_out" 2>&1; then
  sim_ok=1
else
  sim_ok=0
  status=1
fi
tail -n 25 "$sim_out"
run_project integration --runInBand --passWithNoTests
if [[ "$(id -u)" == 0 ]]; then
  run_project e2e --runInBand --passWithNoTests
else
  echo "e2e: skipped (needs root for network namespaces)"
fi

sim_n="${HEARTLINE_SIM_SCHEDULES:-10000}"
node -e '
  const fs = require("fs"); let p = 0, f = 0, s = 0;
  for (const file of fs.readdirSync(process.argv[1]).filter((f) => f.endsWith(".json"))) {
    const r = JSON.parse(fs.readFileSync(process.argv[1] + "/" + file, "utf8"));
    p += r.numPassedTests; f += r.numFailedTests + (r.numRuntimeErrorTestSuites || 0); s += r.numPendingTests;
  }
  const simN = Number(process.argv[2]), simOk = process.argv[3] === "1";
  console.log(`simulator: ${simN} schedules ${simOk ? "passed" : "FAILED"}`);
  if (simOk) p += 1; else f += 1;
  console.log(`tests: ${p} passed, ${f} failed, ${s} skipped`);
' "$out" "$sim_n" "$sim_ok"
exit $status
