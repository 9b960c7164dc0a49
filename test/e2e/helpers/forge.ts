/**
 * Forging heartbeats in the lab: a real datagram captured on a node's switch port, and the
 * body of a heartbeat claiming the lab VIP. Shared by the member-keys and udp-flood files.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LAB_NAMESPACE, type LabCluster } from '../../../hack/lab/cluster.js';
import type { Heartbeat } from '../../../src/core/messages.js';
import { ROOT } from './lab-run.js';

const execFileP = promisify(execFile);
export const CLUSTER_ID = `${LAB_NAMESPACE}/lab`;
export const VIP = `${LAB_NAMESPACE}/web`;

/** Hex of one real heartbeat-port datagram from `a` to `b`, seen on a's switch port. */
export async function capture(c: LabCluster, a: string, b: string): Promise<string> {
  const ha = c.lab.nodes.find((n) => n.name === a)!;
  const hb = c.lab.nodes.find((n) => n.name === b)!;
  const { stdout } = await execFileP(
    'ip',
    [
      'netns',
      'exec',
      c.lab.sw,
      'python3',
      join(ROOT, 'test/e2e/helpers/capture-udp.py'),
      ha.port,
      ha.ip,
      hb.ip,
      '694',
      '5',
    ],
    { timeout: 15_000 },
  );
  return stdout.trim();
}

export function forgedHeartbeat(holder: string, incarnation: number, seq: number, epoch: number): Heartbeat {
  return {
    kind: 'heartbeat',
    clusterId: CLUSTER_ID,
    from: holder,
    incarnation,
    seq,
    standby: false,
    witness: false,
    unhealthy: [],
    holdings: { version: 1, page: 0, pages: 1, entries: [{ vip: VIP, epoch }] },
    releases: [],
    echoes: [],
    conflicts: [],
  };
}
