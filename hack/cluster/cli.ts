/**
 * The real-kubelet lab cluster from the command line (root; docs/controlplane.md):
 *
 *   npx tsx hack/cluster/cli.ts up [--id k1] [--nodes 3] [--no-install] [--profile fast]
 *   npx tsx hack/cluster/cli.ts down [--id k1]      # after a crash: processes, cgroups, namespaces, data
 *
 * `up` builds what is missing (binaries, image), starts the cluster, installs Heartline with
 * `kubectl apply -k deploy/overlays/lab` (unless --no-install), prints the kubeconfig and
 * runs until Ctrl-C or SIGTERM, then tears everything down.
 */
import { Command } from 'commander';
import { onStopSignal } from '../lab/sh.js';
import { installHeartline } from './heartline.js';
import { startKubeCluster, teardownLeftovers, type KubeCluster } from './index.js';

const say = (m: string) => process.stderr.write(`[cluster] ${m}\n`);
const program = new Command('cluster').description('A real Kubernetes cluster in the Heartline lab');

program
  .command('up')
  .option('--id <id>', 'lab id ([a-z0-9]{1,10})', 'k1')
  .option('--nodes <n>', 'node namespaces', '3')
  .option('--profile <p>', 'heartbeat profile of the HACluster (fast | default)', 'fast')
  .option('--no-install', 'start the cluster only')
  .action(async (o: { id: string; nodes: string; profile: 'fast' | 'default'; install: boolean }) => {
    const live: { c?: KubeCluster; stopping?: Promise<void> } = {};
    // One teardown, whoever asks first (a signal, or a failed start or install).
    const stop = () =>
      (live.stopping ??= (live.c ? live.c.stop() : teardownLeftovers(o.id)).catch((e: unknown) => {
        say(`teardown: ${String(e)}`);
      }));
    onStopSignal(() => {
      say('stopping');
      void stop().finally(() => process.exit(0));
    });
    const t0 = performance.now();
    try {
      live.c = await startKubeCluster({ id: o.id, nodes: Number(o.nodes), log: say });
      if (live.stopping) return;
      if (o.install) await installHeartline(live.c, { profile: o.profile, log: say });
    } catch (err) {
      say(err instanceof Error ? err.message : String(err));
      await stop();
      process.exit(1);
    }
    const c = live.c;
    say(`ready in ${((performance.now() - t0) / 1000).toFixed(1)} s; timings ${JSON.stringify(c.timings)}`);
    process.stdout.write(
      `kubeconfig: ${c.kubeconfig}\nlogs: ${c.dir}\n` +
        `kubectl: ip netns exec ${c.lab.cp.ns} kubectl --kubeconfig ${c.kubeconfig} get pods -A -o wide\n`,
    );
    setInterval(() => {}, 1 << 30);
  });

program
  .command('down')
  .option('--id <id>', 'lab id', 'k1')
  .action(async (o: { id: string }) => {
    await teardownLeftovers(o.id);
    say(`cluster ${o.id} torn down`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  say(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
