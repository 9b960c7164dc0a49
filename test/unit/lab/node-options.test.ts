import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deployedNodeFlags, deployedNodeOptions } from '../../../hack/lab/node-options.js';

describe('deployedNodeOptions', () => {
  it('reads NODE_OPTIONS of the controller and the agent from deploy/base, with heap limits', () => {
    for (const role of ['controller', 'agent'] as const) {
      const flags = deployedNodeFlags(role);
      expect(flags).toEqual(expect.arrayContaining([expect.stringMatching(/^--max-old-space-size=\d+$/)]));
      expect(flags).toEqual(expect.arrayContaining([expect.stringMatching(/^--max-semi-space-size=\d+$/)]));
      expect(deployedNodeOptions(role)).toBe(flags.join(' '));
    }
  });

  it('names the manifest to fix when the container has no NODE_OPTIONS', () => {
    const root = mkdtempSync(join(tmpdir(), 'hl-nodeopts-'));
    mkdirSync(join(root, 'deploy/base/agent'), { recursive: true });
    writeFileSync(
      join(root, 'deploy/base/agent/daemonset.yaml'),
      'kind: DaemonSet\nspec:\n  template:\n    spec:\n      containers:\n        - name: agent\n          env: []\n',
    );
    try {
      expect(() => deployedNodeOptions('agent', root)).toThrow(
        /deploy\/base\/agent\/daemonset.yaml: container "agent" has no NODE_OPTIONS/,
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
