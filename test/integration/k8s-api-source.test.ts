import { jest } from '@jest/globals';
import { pino } from 'pino';
import { SystemClock } from '../../src/adapters/clock.js';
import { K8sApiSource, loadKubeConfig } from '../../src/adapters/k8s/api-source.js';
import { apiSourceContract, type SeenEvent } from '../contract/api-source.js';
import { createTestNamespace, deleteNamespace, kubeconfig, mustKubectl } from './helpers.js';

jest.setTimeout(60_000);

const must = mustKubectl;

apiSourceContract(
  'K8sApiSource on a real kube-apiserver',
  async () => {
    const namespace = await createTestNamespace('hl-k8s-api');
    const api = new K8sApiSource(
      { kubeConfig: loadKubeConfig(kubeconfig()), clock: new SystemClock(), logger: pino({ level: 'warn' }) },
      { identity: 'contract-test', resyncMs: 0 },
    );
    return {
      api,
      namespace,
      apply: async (_kind, obj) => {
        await must(['apply', '-f', '-'], JSON.stringify(obj));
      },
      remove: async (kind, key) => {
        const resource = kind === 'Secret' ? 'secret' : `${kind.toLowerCase()}s.heartline.dev`;
        await must(['delete', resource, key.name, '-n', key.namespace!, '--wait=false']);
      },
      readEvents: async (ns): Promise<SeenEvent[]> => {
        const out = JSON.parse(await must(['get', 'events.events.k8s.io', '-n', ns, '-o', 'json'])) as {
          items: {
            type: string;
            reason: string;
            note: string;
            action: string;
            regarding: { name: string; kind: string };
          }[];
        };
        return out.items.map((e) => ({
          type: e.type,
          reason: e.reason,
          note: e.note,
          action: e.action,
          regardingName: e.regarding.name,
          regardingKind: e.regarding.kind,
        }));
      },
      settle: () => new Promise((r) => setTimeout(r, 50)),
    };
  },
  (s) => deleteNamespace(s.namespace),
);
