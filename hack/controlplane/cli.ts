/**
 * Local control plane for development and scripts:
 *
 *   npx tsx hack/controlplane/cli.ts up [--crds crds] [--apply examples] [--ready-file F]
 *                                        [--bind-address IP] [--netns NAME] [--data-dir DIR]
 *   npx tsx hack/controlplane/cli.ts build      # only build/cache the binaries
 *
 * `up` runs until Ctrl-C or SIGTERM, then stops etcd and kube-apiserver and removes its files.
 */
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import pino from 'pino';
import { applyCrds, applyDir } from './kubectl.js';
import { ensureBinaries, startControlPlane } from './index.js';

const log = pino({ name: 'controlplane' }, pino.destination({ dest: 2, sync: true }));

const program = new Command('controlplane').description('A local etcd + kube-apiserver for Heartline');

program
  .command('build')
  .description('build (or find cached) kube-apiserver and etcd; print their paths')
  .action(async () => {
    const started = performance.now();
    const bin = await ensureBinaries({ onProgress: (line) => log.info({ line }, 'build') });
    log.info({ ms: Math.round(performance.now() - started) }, 'binaries ready');
    process.stdout.write(`kube-apiserver=${bin.kubeApiserver}\netcd=${bin.etcd}\n`);
  });

program
  .command('up')
  .description('start a control plane and keep it running until Ctrl-C / SIGTERM')
  .option('--bind-address <ip>', 'address to listen on and advertise', '127.0.0.1')
  .option('--netns <name>', 'run inside this existing network namespace')
  .option('--data-dir <dir>', 'keep state here instead of a temp dir (left in place on exit)')
  .option('--crds <dir>', 'server-side apply every YAML in DIR and wait for CRDs to be Established')
  .option('--apply <dir>', 'server-side apply every YAML in DIR afterwards')
  .option('--ready-file <file>', 'write the kubeconfig path to FILE once everything is ready')
  .action(
    async (o: {
      bindAddress: string;
      netns?: string;
      dataDir?: string;
      crds?: string;
      apply?: string;
      readyFile?: string;
    }) => {
      const cp = await startControlPlane({
        bindAddress: o.bindAddress,
        netns: o.netns,
        dataDir: o.dataDir,
        log,
      });
      // startControlPlane re-raises SIGINT/SIGTERM after stopping; this keeps the loop alive until then.
      setInterval(() => {}, 1 << 30);
      try {
        if (o.crds) {
          const files = await applyCrds(cp.kubeconfigPath, o.crds, o.netns);
          log.info(
            { dir: o.crds, files: files.length },
            files.length ? 'CRDs established' : 'no CRD manifests found',
          );
        }
        if (o.apply) {
          const files = await applyDir(cp.kubeconfigPath, o.apply, o.netns);
          log.info({ dir: o.apply, files: files.length }, 'manifests applied');
        }
      } catch (err) {
        log.error({ err }, 'setup failed, stopping the control plane');
        await cp.stop();
        process.exit(1);
      }
      if (o.readyFile) writeFileSync(o.readyFile, `${cp.kubeconfigPath}\n`);
      process.stdout.write(
        `kubeconfig: ${cp.kubeconfigPath}\nserver: ${cp.server}\nstartup: ${cp.startupMs} ms\n` +
          `export KUBECONFIG=${cp.kubeconfigPath}\n`,
      );
      log.info({}, 'running; press Ctrl-C to stop');
    },
  );

program.parseAsync(process.argv).catch((err: unknown) => {
  log.error({ err }, 'controlplane failed');
  process.exit(1);
});
