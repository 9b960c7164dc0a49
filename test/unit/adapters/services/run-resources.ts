/**
 * Runs two Resources through a real ProcessServiceRunner, the way the agent does, and prints
 * their results as JSON. The test starts this program with the agent container's capability
 * set (through setpriv), to show what Resources get when the agent runs as deployed; or, as an
 * unprivileged agent under `heartline-netd --resource-uid` (test/e2e/netd-launcher.test.ts),
 * through netd's launcher (HEARTLINE_LAUNCHER_FD in its environment), as the agent does.
 * Usage: tsx run-resources.ts <resourceDir> <outDir> <tokenFile> <uid> <gid>
 */
import { pino } from 'pino';
import { SystemClock } from '../../../../src/adapters/clock.js';
import { ProcessServiceRunner } from '../../../../src/adapters/services/process-service-runner.js';
import { launcherFromEnvironment } from '../../../../src/adapters/services/sandbox.js';

const [resourceDir, out, token, uid, gid] = process.argv.slice(2);
const clock = new SystemClock();
const launcher = launcherFromEnvironment(process.env);
const runner = new ProcessServiceRunner(
  { clock, logger: pino({ level: 'silent' }) },
  {
    identity: { uid: Number(uid), gid: Number(gid) },
    resourceDir: resourceDir!,
    ...(launcher ? { launcher } : {}),
  },
);
const whoami = await runner.start(
  {
    name: 'ns/whoami',
    kind: 'exec',
    exec: { start: ['/etc/heartline/resource.d/whoami', out!, token!, String(process.pid)] },
  },
  5000,
);
const hang = await runner.start(
  { name: 'ns/hang', kind: 'exec', exec: { start: ['/etc/heartline/resource.d/hang', out!] } },
  300,
);
await runner.close();
process.stdout.write(JSON.stringify({ whoami, hang }));
