import { parseAllDocuments } from 'yaml';
import { checkManifest, formatFieldError, type HACluster } from '../api/index.js';
import {
  activeKeyProblem,
  namedKeyIds,
  readAuthSecret,
  type AuthSecretLike,
} from '../core/wire/auth-secret.js';

export interface ManifestReport {
  /** Lines for problems; non-empty means invalid. */
  errors: string[];
  /** Lines for documents that were skipped (other kinds). */
  notes: string[];
  /** How many objects were checked (Heartline objects and auth Secrets). */
  checked: number;
}

/** One file to validate: its name (prefixes each line) and its text. */
export interface ManifestFile {
  source: string;
  text: string;
}

function objectLabel(kind: string, doc: unknown): string {
  const meta = (doc as { metadata?: { name?: unknown; namespace?: unknown } }).metadata ?? {};
  const ns = typeof meta.namespace === 'string' ? meta.namespace : 'default';
  const name = typeof meta.name === 'string' ? meta.name : '<unnamed>';
  return `${kind} ${ns}/${name}`;
}

function nsName(doc: unknown): string {
  return objectLabel('', doc).slice(1);
}

function isSecret(obj: unknown): boolean {
  const o = obj as { apiVersion?: unknown; kind?: unknown };
  return o.apiVersion === 'v1' && o.kind === 'Secret';
}

/** A Secret whose every key is named by digits is meant as an auth Secret even when no HACluster here names it. */
function looksLikeAuthSecret(secret: AuthSecretLike): boolean {
  const names = [secret.data, secret.stringData].flatMap((m) =>
    m && typeof m === 'object' ? Object.keys(m) : [],
  );
  return names.length > 0 && names.every((n) => /^\d+$/.test(n));
}

/**
 * Validates every document of a multi-document YAML text offline with the API
 * schemas and the auth Secret's rules. `source` prefixes each line (usually the file name).
 */
export function validateManifests(source: string, text: string): ManifestReport {
  return validateManifestSet([{ source, text }]);
}

/**
 * Validates several files as one set: each object alone (Heartline kinds with their schema,
 * auth Secrets with the Secret's rules), then across objects: an HACluster's activeKeyId
 * must name a key of its Secret when that Secret is among the files. A Secret is an auth
 * Secret when an HACluster of the set names it, or when all its keys are numbers.
 */
export function validateManifestSet(files: readonly ManifestFile[]): ManifestReport {
  const report: ManifestReport = { errors: [], notes: [], checked: 0 };
  const clusters: Array<{ source: string; obj: HACluster }> = [];
  const secrets: Array<{ source: string; obj: AuthSecretLike & { metadata?: unknown } }> = [];
  for (const { source, text } of files) {
    const docs = parseAllDocuments(text);
    docs.forEach((doc, i) => {
      const where = `${source}: document ${i + 1}`;
      if (doc.errors.length > 0) {
        for (const e of doc.errors) report.errors.push(`${where}: YAML: ${e.message.split('\n')[0]}`);
        return;
      }
      const top: unknown = doc.toJS();
      if (top === null || top === undefined) return; // empty document
      // `kubectl get -o yaml` output: a List whose items are the objects.
      const isList =
        typeof top === 'object' &&
        Array.isArray((top as { items?: unknown }).items) &&
        /List$/.test(String((top as { kind?: unknown }).kind));
      for (const obj of isList ? (top as { items: unknown[] }).items : [top]) checkOne(source, obj, where);
    });
  }
  for (const s of secrets) checkSecret(s.source, s.obj);
  return report;

  function checkOne(source: string, obj: unknown, where: string): void {
    if (obj && typeof obj === 'object' && isSecret(obj)) {
      secrets.push({ source, obj: obj as AuthSecretLike });
      return;
    }
    const check = checkManifest(obj);
    if (!check.handled) {
      const label =
        obj && typeof obj === 'object' && 'kind' in obj
          ? objectLabel(String((obj as { kind: unknown }).kind), obj)
          : where;
      report.notes.push(`${source}: ${label}: skipped (${check.reason})`);
      return;
    }
    report.checked++;
    if (!check.result.ok) {
      const label = objectLabel(check.kind, obj);
      for (const e of check.result.errors) report.errors.push(`${source}: ${label}: ${formatFieldError(e)}`);
    } else if (check.kind === 'HACluster') {
      clusters.push({ source, obj: check.result.value as HACluster });
    }
  }

  function checkSecret(source: string, secret: AuthSecretLike & { metadata?: unknown }): void {
    const id = nsName(secret);
    const users = clusters.filter(
      (c) => `${c.obj.metadata.namespace ?? 'default'}/${c.obj.spec.authSecretRef.name}` === id,
    );
    const label = objectLabel('Secret', secret);
    if (users.length === 0 && !looksLikeAuthSecret(secret)) {
      report.notes.push(
        `${source}: ${label}: skipped (no HACluster in these files names it in spec.authSecretRef)`,
      );
      return;
    }
    report.checked++;
    for (const p of readAuthSecret(secret).problems)
      report.errors.push(`${source}: ${label}: ${p.path}: ${p.message}`);
    const ids = namedKeyIds(secret);
    for (const c of users) {
      const ref = c.obj.spec.authSecretRef;
      const problem = activeKeyProblem(ref.activeKeyId, ref.name, ids);
      if (problem)
        report.errors.push(
          `${c.source}: ${objectLabel('HACluster', c.obj)}: spec.authSecretRef.activeKeyId: ${problem}`,
        );
    }
  }
}
