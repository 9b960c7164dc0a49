/**
 * The shipped image, built by hack/image/build.sh without a container engine, run the way a
 * kubelet would run it: unpacked with umoci and started with runc, with each workload's
 * securityContext read from the rendered deploy/base (user, capabilities, read-only root, no
 * privilege escalation, the agent's memory /tmp). Each container gets a fresh network
 * namespace from runc, gone with the container; nothing touches the root namespace.
 * Needs root, runc, umoci and skopeo (hack/install.sh installs them).
 */
import { jest } from '@jest/globals';
import { execFile, spawn } from 'node:child_process';
import { access, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const isRoot = process.getuid?.() === 0;

jest.setTimeout(300_000);

interface SecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  allowPrivilegeEscalation?: boolean;
  readOnlyRootFilesystem?: boolean;
  capabilities?: { add?: string[]; drop?: string[] };
}
interface Container {
  command?: string[];
  securityContext?: SecurityContext;
  volumeMounts?: { name: string; mountPath: string }[];
}
interface Workload {
  kind: string;
  metadata: { name: string };
  spec: { template: { spec: { containers: Container[]; securityContext?: { runAsUser?: number } } } };
}

async function rendered(): Promise<Workload[]> {
  const { stdout } = await run('kubectl', ['kustomize', path.join(root, 'deploy/base')], {
    maxBuffer: 32 << 20,
  });
  return parseAllDocuments(stdout).map((d) => d.toJS() as Workload);
}

/** An OCI runtime spec for `args` in the bundle, from the image's config and a securityContext. */
async function specFor(bundle: string, args: string[], sc: SecurityContext, tmpfs: string[]) {
  const spec = JSON.parse(await readFile(path.join(bundle, 'config.json'), 'utf8')) as {
    process: Record<string, unknown> & { user: { uid: number; gid: number } };
    root: { readonly: boolean };
    mounts: Record<string, unknown>[];
  };
  const caps = (sc.capabilities?.add ?? []).map((c) => `CAP_${c}`);
  // The image's user unless the pod overrides it (the agent runs as 0).
  if (sc.runAsUser !== undefined)
    spec.process.user = { uid: sc.runAsUser, gid: sc.runAsGroup ?? sc.runAsUser };
  spec.process.args = args;
  spec.process.terminal = false;
  spec.process.noNewPrivileges = sc.allowPrivilegeEscalation === false;
  // drop: [ALL] plus add: what the manifest adds, as containerd/CRI-O set them for a non-privileged container.
  expect(sc.capabilities?.drop).toEqual(['ALL']);
  spec.process.capabilities = {
    bounding: caps,
    effective: caps,
    permitted: caps,
    inheritable: [],
    ambient: [],
  };
  spec.root.readonly = sc.readOnlyRootFilesystem === true;
  for (const dest of tmpfs)
    spec.mounts.push({
      destination: dest,
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'nodev', 'size=16m'],
    });
  await writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec));
}

/** Runs the bundle's container to completion with `input` on stdin; stdout, stderr and exit code. */
function runc(
  bundle: string,
  id: string,
  input = '',
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('runc', ['run', '--bundle', bundle, id], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      void run('runc', ['delete', '--force', id]).catch(() => undefined);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

(isRoot ? describe : describe.skip)(
  'the image (hack/image/build.sh) run with the shipped securityContexts',
  () => {
    let tmp: string;
    let archive: string;
    let digest: string;
    let workloads: Workload[];

    let unpacked: string | undefined;
    /**
     * The unpacked bundle (umoci, once) with a fresh copy of its runtime spec. Every run below
     * has a read-only root, so the containers cannot change the rootfs they share.
     */
    const bundle = async (): Promise<string> => {
      if (!unpacked) {
        unpacked = path.join(tmp, 'bundle');
        await run('umoci', ['unpack', '--image', `${path.join(tmp, 'layout')}:0.1.0`, unpacked], {
          timeout: 120_000,
        });
        await copyFile(path.join(unpacked, 'config.json'), path.join(tmp, 'config.pristine.json'));
      }
      await copyFile(path.join(tmp, 'config.pristine.json'), path.join(unpacked, 'config.json'));
      return unpacked;
    };
    const container = (kind: string, name: string): Container => {
      const w = workloads.find((o) => o.kind === kind && o.metadata.name === name);
      if (!w) throw new Error(`${kind} ${name} not in deploy/base`);
      return w.spec.template.spec.containers[0]!;
    };

    beforeAll(async () => {
      tmp = await mkdtemp(path.join(os.tmpdir(), 'hl-image-'));
      const { stdout } = await run(
        'bash',
        [path.join(root, 'hack/image/build.sh'), '--out', tmp, '--tag', '0.1.0'],
        {
          timeout: 240_000,
          maxBuffer: 16 << 20,
        },
      );
      const last = stdout.trim().split('\n').pop() ?? '';
      const m = /^image=heartline:0\.1\.0 digest=(sha256:[0-9a-f]{64}) archive=(\S+)$/.exec(last);
      if (!m) throw new Error(`unexpected build output: ${last}`);
      digest = m[1]!;
      archive = m[2]!;
      await run('mkdir', ['-p', path.join(tmp, 'layout')]);
      await run('tar', ['-xf', archive, '-C', path.join(tmp, 'layout')]);
      workloads = await rendered();
    });

    afterAll(async () => {
      if (tmp) await rm(tmp, { recursive: true, force: true });
    });

    it('is a valid OCI image with the printed digest, a non-root default user, no shell and an SBOM', async () => {
      const inspect = JSON.parse((await run('skopeo', ['inspect', `oci-archive:${archive}`])).stdout) as {
        Digest: string;
        Env: string[];
      };
      expect(inspect.Digest).toBe(digest);
      const config = JSON.parse(
        (await run('skopeo', ['inspect', '--config', `oci-archive:${archive}`])).stdout,
      ) as { config: { User: string; Entrypoint: string[] } };
      expect(config.config.User).toBe('65532:65532');
      expect(config.config.Entrypoint).toEqual(['heartline']);
      const b = await bundle();
      for (const absent of ['bin/sh', 'bin/bash', 'usr/bin/apt-get', 'usr/bin/dpkg'])
        await expect(access(path.join(b, 'rootfs', absent))).rejects.toThrow();
      for (const present of [
        'usr/bin/node',
        'usr/local/bin/heartline',
        'usr/local/bin/kubectl-heartline',
        'usr/local/bin/heartline-netd',
      ])
        await access(path.join(b, 'rootfs', present));
      const sbom = JSON.parse(await readFile(path.join(tmp, 'heartline-0.1.0.spdx.json'), 'utf8')) as {
        packages: { name: string }[];
      };
      expect(sbom.packages.map((p) => p.name)).toEqual(expect.arrayContaining(['zod', 'pino']));
    });

    it('rebuilds to the same digest (reproducible)', async () => {
      const again = await mkdtemp(path.join(os.tmpdir(), 'hl-image-again-'));
      try {
        const { stdout } = await run(
          'bash',
          [path.join(root, 'hack/image/build.sh'), '--out', again, '--tag', '0.1.0'],
          {
            timeout: 240_000,
            maxBuffer: 16 << 20,
          },
        );
        expect(stdout).toContain(`digest=${digest} `);
      } finally {
        await rm(again, { recursive: true, force: true });
      }
    });

    it("runs the controller's container: uid 65532, no capabilities, read-only root", async () => {
      const c = container('Deployment', 'heartline-controller');
      const b = await bundle();
      await specFor(b, ['heartline', 'crds'], { ...c.securityContext, runAsUser: 65532 }, []);
      const r = await runc(b, `hl-img-ctl-${process.pid}`);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/kind: CustomResourceDefinition/);
      expect(r.stdout).toMatch(/name: virtualips\.heartline\.dev/);
    });

    it("runs the agent's container: netd as PID 1 binds the heartbeat port and starts the agent as 65532 with no capability; netd binds an address", async () => {
      const c = container('DaemonSet', 'heartline-agent');
      const command = c.command!;
      const exec = command.indexOf('--exec');
      expect(command[0]).toBe('heartline-netd');
      expect(command.slice(exec, exec + 2)).toEqual(['--exec', 'heartline']);
      // netd's own flags from the manifest: --heartbeat-bind, --agent-uid/gid, --agent-state-dir.
      // The kubelet expands $(HOST_IP); runc's fresh network namespace has no node address.
      const netdFlags = command.slice(1, exec).map((f) => f.replace('$(HOST_IP)', '0.0.0.0'));
      const mounts = c.volumeMounts ?? [];
      const tmpfs = mounts.filter((v) => v.name === 'tmp' || v.name === 'state').map((v) => v.mountPath);
      // 1. netd --exec runs `heartline` (the launcher, found on PATH) as uid 65532.
      const b1 = await bundle();
      await specFor(
        b1,
        ['heartline-netd', ...netdFlags, '--exec', 'heartline', 'agent', '--help'],
        c.securityContext!,
        tmpfs,
      );
      const help = await runc(b1, `hl-img-agent-${process.pid}`);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/Usage: heartline agent/);
      expect(help.stderr).toMatch(/capabilities kept: NET_ADMIN NET_RAW KILL/);
      // 2. netd with the agent container's capabilities binds a lab address (in the
      //    container's own network namespace) and removes it when its input ends.
      const b2 = await bundle();
      await specFor(b2, ['heartline-netd'], c.securityContext!, tmpfs);
      const netd = await runc(
        b2,
        `hl-img-netd-${process.pid}`,
        'HELLO 1\nADD 2 lo 198.18.250.1/32 5 5000\nLIST 3\n',
      );
      expect(netd.stdout).toMatch(/^1 OK heartline-netd /m);
      expect(netd.stdout).toMatch(/^2 OK/m);
      expect(netd.stdout).toMatch(/^3 OK lo 198\.18\.250\.1\/32/m);
      // 3. The agent's node, started as the manifest starts it, gets the heartbeat port (694)
      //    from netd on fd 4 and holds no capability.
      const b3 = await bundle();
      const script = [
        "const l=require('fs').readFileSync('/proc/self/status','utf8').split(String.fromCharCode(10));",
        "const f=k=>l.find(x=>x.startsWith(k+':')).slice(k.length+1).trim();",
        "const d=require('dgram').createSocket('udp4');d.on('error',e=>{console.log(e.code);process.exit(1)});",
        'd.bind({fd:Number(process.env.HEARTLINE_HEARTBEAT_FD)},()=>{',
        "console.log('uid',parseInt(f('Uid')),'CapEff',f('CapEff'),'port',d.address().port);d.close()})",
      ].join('');
      await specFor(
        b3,
        ['heartline-netd', ...netdFlags, '--exec', 'node', '-e', script],
        c.securityContext!,
        tmpfs,
      );
      const bind = await runc(b3, `hl-img-bind-${process.pid}`);
      expect(bind.stdout.trim()).toBe('uid 65532 CapEff 0000000000000000 port 694');
    });
  },
);
