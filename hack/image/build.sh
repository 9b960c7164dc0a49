#!/usr/bin/env bash
# Builds Heartline's container image without a container engine: an OCI image written by
# this script (tar, gzip, sha256sum and node for the JSON), from files this machine already
# has. The runtime holds only what runs: the node binary and the shared libraries it links,
# the compiled app with its production node_modules, heartline-netd (hardened static PIE),
# a `heartline` launcher, /etc/passwd and /etc/group, and /tmp. No shell, no package manager.
#
#   bash hack/image/build.sh [--out DIR] [--tag TAG]
#
# Output in DIR (default .image/, ignored by git): heartline-TAG.oci.tar (an OCI image
# layout in a tar: `skopeo copy oci-archive:FILE docker://REGISTRY/heartline:TAG`,
# `podman load -i FILE`, `ctr images import FILE`), heartline-TAG.spdx.json (SBOM of the
# production dependencies, `npm sbom`) and the last line on stdout: `image=heartline:TAG
# digest=sha256:... archive=PATH`. The build is reproducible: same inputs, same digest
# (SOURCE_DATE_EPOCH defaults to the last commit's time).
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"

out="$root/.image"
tag="$(node -p 'require("./package.json").version')"
while (($#)); do
  case "$1" in
    --out) out="$(realpath -m "$2")"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    *) echo "usage: hack/image/build.sh [--out DIR] [--tag TAG]" >&2; exit 2 ;;
  esac
done
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
log() { printf '[image] %s\n' "$*" >&2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
app="$rootfs/opt/heartline"
mkdir -p "$app" "$rootfs/usr/local/bin" "$rootfs/etc" "$rootfs/tmp" "$out"

log "compiling the app and heartline-netd"
[[ -d node_modules ]] || npm ci --no-audit --no-fund --loglevel=error
npx tsc -p tsconfig.build.json --outDir "$work/dist"
make -s -C native check >/dev/null

log "production node_modules"
cp package.json package-lock.json "$app/"
(cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error --prefer-offline)
rm -f "$app/package-lock.json"
mkdir -p "$app/dist"
cp -r "$work/dist/src" "$app/dist/src"
install -m 0755 native/build/heartline-netd "$rootfs/usr/local/bin/heartline-netd"

log "node and the libraries it links"
node_bin="$(readlink -f "$(command -v node)")"
install -D -m 0755 "$node_bin" "$rootfs/usr/bin/node"
ldd "$node_bin" | awk '/=>/ { print $3 } /^[ \t]*\/.*ld-linux/ { print $1 }' | while read -r lib; do
  [[ -n "$lib" && -e "$lib" ]] || continue
  # Keep the path the dynamic loader looks for, and the file it resolves to.
  install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
done

# `heartline` without a shell: a CommonJS launcher run by node itself (heartline-netd execs
# it by name, the kubelet by the image's entrypoint). Signals reach node directly.
cat >"$rootfs/usr/local/bin/heartline" <<'EOF'
#!/usr/bin/node
// Heartline's launcher in the image (hack/image/build.sh): the CLI compiled into /opt/heartline.
import(`${process.env.HEARTLINE_HOME || '/opt/heartline'}/dist/src/cli/main.js`);
EOF
chmod 0755 "$rootfs/usr/local/bin/heartline"
# The same CLI as a kubectl plugin (`kubectl heartline status`, docs/operations.md), e.g. for
# `kubectl debug` or a toolbox pod that mounts this image.
ln -s heartline "$rootfs/usr/local/bin/kubectl-heartline"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"

log "layer"
# Deterministic tar: sorted, fixed times and owners, no atime/ctime.
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C "$rootfs" -cf "$work/layer.tar" .
gzip -n -6 <"$work/layer.tar" >"$work/layer.tar.gz"
layout="$work/layout"
mkdir -p "$layout/blobs/sha256"

log "config, manifest and index"
node - "$work" "$layout" "$tag" "$SOURCE_DATE_EPOCH" "$(git rev-parse HEAD 2>/dev/null || echo unknown)" <<'EOF'
const fs = require('node:fs');
const crypto = require('node:crypto');
const [work, layout, tag, epoch, revision] = process.argv.slice(2);
const sha = (buf) => crypto.createHash('sha256').update(buf).digest('hex');
const blob = (buf) => {
  const hex = sha(buf);
  fs.writeFileSync(`${layout}/blobs/sha256/${hex}`, buf);
  return { digest: `sha256:${hex}`, size: buf.length };
};
const created = new Date(Number(epoch) * 1000).toISOString().replace(/\.000Z$/, 'Z');
const diffId = `sha256:${sha(fs.readFileSync(`${work}/layer.tar`))}`;
const layer = blob(fs.readFileSync(`${work}/layer.tar.gz`));
const labels = {
  'org.opencontainers.image.title': 'heartline',
  'org.opencontainers.image.description': 'Highly available virtual IPs for bare-metal Kubernetes clusters',
  'org.opencontainers.image.version': tag,
  'org.opencontainers.image.revision': revision,
  'org.opencontainers.image.licenses': 'Apache-2.0',
  'org.opencontainers.image.created': created,
};
const config = blob(
  Buffer.from(
    JSON.stringify({
      created,
      architecture: 'amd64',
      os: 'linux',
      config: {
        // Non-root by default (the controller and the tools); the agent's pod sets runAsUser 0
        // with only the capabilities it needs (deploy/base/agent/daemonset.yaml).
        User: '65532:65532',
        Env: [
          'PATH=/usr/local/bin:/usr/bin:/bin',
          'NODE_ENV=production',
          'HEARTLINE_HOME=/opt/heartline',
          'HEARTLINE_NETD=/usr/local/bin/heartline-netd',
        ],
        Entrypoint: ['heartline'],
        Cmd: ['--help'],
        WorkingDir: '/opt/heartline',
        Labels: labels,
      },
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [{ created, created_by: 'hack/image/build.sh' }],
    }),
  ),
);
const manifest = blob(
  Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
      annotations: labels,
    }),
  ),
);
fs.writeFileSync(`${layout}/oci-layout`, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
fs.writeFileSync(
  `${layout}/index.json`,
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        ...manifest,
        platform: { architecture: 'amd64', os: 'linux' },
        annotations: { 'org.opencontainers.image.ref.name': tag },
      },
    ],
  }),
);
fs.writeFileSync(`${work}/digest`, manifest.digest);
fs.writeFileSync(`${work}/sizes`, JSON.stringify({ compressed: layer.size, uncompressed: fs.statSync(`${work}/layer.tar`).size }));
EOF

archive="$out/heartline-$tag.oci.tar"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C "$layout" -cf "$archive.tmp" .
mv -f "$archive.tmp" "$archive"

log "SBOM"
npm sbom --omit=dev --sbom-format=spdx --package-lock-only >"$out/heartline-$tag.spdx.json" 2>/dev/null ||
  npm sbom --omit=dev --sbom-format=spdx >"$out/heartline-$tag.spdx.json"

digest="$(cat "$work/digest")"
sizes="$(cat "$work/sizes")"
log "done: $archive ($(du -h "$archive" | cut -f1)), layer sizes $sizes"
echo "image=heartline:$tag digest=$digest archive=$archive"
