#!/usr/bin/env bash
# The lab cluster's pod sandbox ("pause") image, built from hack/cluster/pause.c without a
# registry or a container engine: one static binary in one layer, written as an OCI image
# layout in a tar that `ctr images import` loads.
#
#   bash hack/cluster/pause-image.sh OUT_DIR
#
# Last line on stdout: `image=heartline.lab/pause:1 archive=PATH`. Reproducible (fixed
# times and owners), rebuilt only when pause.c is newer than the archive.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: hack/cluster/pause-image.sh OUT_DIR}"
name="heartline.lab/pause"
tag="1"
archive="$out/pause-$tag.oci.tar"
mkdir -p "$out"
if [[ -s "$archive" && "$archive" -nt "$here/pause.c" && "$archive" -nt "$0" ]]; then
  echo "image=$name:$tag archive=$archive"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs" "$work/layout/blobs/sha256"
gcc -static -Os -s -Wall -Werror -o "$work/rootfs/pause" "$here/pause.c"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C "$work/rootfs" -cf "$work/layer.tar" .
node - "$work" "$name:$tag" <<'JS'
const fs = require('node:fs');
const crypto = require('node:crypto');
const [work, ref] = process.argv.slice(2);
const sha = (buf) => crypto.createHash('sha256').update(buf).digest('hex');
const blob = (buf) => {
  const hex = sha(buf);
  fs.writeFileSync(`${work}/layout/blobs/sha256/${hex}`, buf);
  return { digest: `sha256:${hex}`, size: buf.length };
};
const tar = fs.readFileSync(`${work}/layer.tar`);
const layer = blob(tar);
const config = blob(Buffer.from(JSON.stringify({
  architecture: 'amd64',
  os: 'linux',
  config: { Entrypoint: ['/pause'], User: '65535:65535' },
  rootfs: { type: 'layers', diff_ids: [`sha256:${sha(tar)}`] },
})));
const manifest = blob(Buffer.from(JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
  layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
})));
fs.writeFileSync(`${work}/layout/oci-layout`, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
fs.writeFileSync(`${work}/layout/index.json`, JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest,
    platform: { architecture: 'amd64', os: 'linux' },
    annotations: { 'org.opencontainers.image.ref.name': ref } }],
}));
JS
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
  -C "$work/layout" -cf "$archive.tmp" .
mv -f "$archive.tmp" "$archive"
echo "image=$name:$tag archive=$archive"
