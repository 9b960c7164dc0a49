/**
 * Runs two Resources through a real ProcessServiceRunner, the way the agent does, and prints
 * their results as JSON. The test starts this program with the agent container's capability
 * set (through setpriv), to show what Resources get when the agent runs as deployed.
 * Usage: tsx run-resources.ts <resourceDir> <outDir> <tokenFile> <uid> <gid>
 */
import { pino } from 'pino';
import { SystemClock } from '../../../../src/adapters/clock.js';
import { ProcessServiceRunner } from '../../../../src/adapters/services/process-service-runner.js';

const [resourceDir, out, token, uid, gid] = process.argv.slice(2);
const clock = new SystemClock();
const runner = new ProcessServiceRunner(
  { clock, logger: pino({ level: 'silent' }) },
  { identity: { uid: Number(uid), gid: Number(gid) }, resourceDir: resourceDir! },
);
const whoami = await runner.start(
  {
    name: 'ns/whoami',
    kind: 'exec',
    exec: { start: ['/etc/heartline/resource.d/whoami', out!, token!] },
  },
  5000,
);
const hang = await runner.start(
  { name: 'ns/hang', kind: 'exec', exec: { start: ['/etc/heartline/resource.d/hang', out!] } },
  300,
);
await runner.close();
process.stdout.write(JSON.stringify({ whoami, hang }));
