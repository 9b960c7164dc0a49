import { parseAllDocuments } from 'yaml';
import { checkManifest, formatFieldError } from '../api/validate.js';

export interface ManifestReport {
  /** Lines for problems; non-empty means invalid. */
  errors: string[];
  /** Lines for documents that were skipped (other kinds). */
  notes: string[];
  /** How many Heartline objects were checked. */
  checked: number;
}

function objectLabel(kind: string, doc: unknown): string {
  const meta = (doc as { metadata?: { name?: unknown; namespace?: unknown } }).metadata ?? {};
  const ns = typeof meta.namespace === 'string' ? meta.namespace : 'default';
  const name = typeof meta.name === 'string' ? meta.name : '<unnamed>';
  return `${kind} ${ns}/${name}`;
}

/**
 * Validates every document of a multi-document YAML text offline with the API
 * schemas. `source` prefixes each line (usually the file name).
 */
export function validateManifests(source: string, text: string): ManifestReport {
  const report: ManifestReport = { errors: [], notes: [], checked: 0 };
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
    for (const obj of isList ? (top as { items: unknown[] }).items : [top]) checkOne(obj, where);
  });
  return report;

  function checkOne(obj: unknown, where: string): void {
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
    }
  }
}
