/**
 * Which Nodes run the agent (docs/adr/0024), from the agent DaemonSet's pods: with an empty
 * spec.nodeSelector these Nodes are an HACluster's members, and with a selector a selected
 * Node missing here is reported (it would count as a voter that never votes).
 */
import type { ApiObject, Millis } from '../core/ports.js';

/**
 * How long a Node still counts as running the agent after its last agent pod is gone: a
 * rolling update or `kubectl delete pod` replaces the pod within seconds, and the Node must
 * not leave the member set and join again for that. A Node whose agent is removed for good
 * (unlabelled for the DaemonSet) leaves the member set this long after its pod is gone.
 */
export const AGENT_GONE_GRACE_MS: Millis = 30_000;

interface PodLike {
  metadata: { name: string };
  spec?: {
    nodeName?: string;
    affinity?: {
      nodeAffinity?: {
        requiredDuringSchedulingIgnoredDuringExecution?: {
          nodeSelectorTerms?: Array<{
            matchFields?: Array<{ key: string; operator: string; values?: string[] }>;
          }>;
        };
      };
    };
  };
  status?: { phase?: string };
}

/**
 * The Node an agent pod runs on, or will run on: spec.nodeName once bound, else the Node its
 * DaemonSet pinned it to (the `metadata.name` field affinity the DaemonSet controller writes
 * into every pod it creates). Undefined for a pod that has finished (Succeeded or Failed).
 */
export function agentPodNode(pod: ApiObject): string | undefined {
  const p = pod as unknown as PodLike;
  if (p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed') return undefined;
  if (p.spec?.nodeName) return p.spec.nodeName;
  const terms =
    p.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  for (const t of terms)
    for (const f of t.matchFields ?? [])
      if (f.key === 'metadata.name' && f.operator === 'In' && f.values?.length === 1) return f.values[0];
  return undefined;
}

/**
 * The set of Nodes running the agent, with a grace period after a Node's last pod goes
 * (AGENT_GONE_GRACE_MS). Time comes from the caller (the controller's Clock).
 */
export class AgentNodes {
  private running = new Set<string>();
  /** Nodes whose last agent pod went, and when. */
  private readonly goneAt = new Map<string, Millis>();

  constructor(private readonly graceMs: Millis = AGENT_GONE_GRACE_MS) {}

  /**
   * Takes the agent pods as they are now; returns whether the Nodes with a pod changed (then
   * nodes() may change now, or at the end of a grace period that starts now).
   */
  update(pods: readonly ApiObject[], now: Millis): boolean {
    const before = [...this.running].sort().join(',');
    const next = new Set<string>();
    for (const p of pods) {
      const node = agentPodNode(p);
      if (node) next.add(node);
    }
    for (const n of this.running) if (!next.has(n)) this.goneAt.set(n, now);
    for (const n of next) this.goneAt.delete(n);
    this.running = next;
    return [...next].sort().join(',') !== before;
  }

  /** The Nodes that run the agent at `now`: an agent pod there, or one gone less than the grace ago. */
  nodes(now: Millis): Set<string> {
    const out = new Set(this.running);
    for (const [n, at] of this.goneAt) {
      if (now - at < this.graceMs) out.add(n);
      else this.goneAt.delete(n);
    }
    return out;
  }

  /** How long until nodes() changes by time alone (a grace period ends), if it will. */
  nextChangeInMs(now: Millis): Millis | undefined {
    let next: Millis | undefined;
    for (const at of this.goneAt.values()) {
      const left = Math.max(0, at + this.graceMs - now);
      if (next === undefined || left < next) next = left;
    }
    return next;
  }
}
