import {
  KEY_ID_PATTERN,
  Keyring,
  activeKeyProblem,
  namedKeyIds,
  parseKeyId,
  readAuthSecret,
} from '../../../../src/core/wire/index.js';

const b64 = (n: number, fill = 1) => Buffer.alloc(n, fill).toString('base64');

describe('auth Secret rules', () => {
  it.each([
    ['1', 1],
    ['9', 9],
    ['10', 10],
    ['199', 199],
    ['255', 255],
    ['0', undefined],
    ['256', undefined],
    ['01', undefined],
    ['-1', undefined],
    ['1.0', undefined],
    [' 1', undefined],
    ['primary', undefined],
    ['', undefined],
  ])('key id %j → %s', (s, id) => {
    expect(parseKeyId(s)).toBe(id);
    expect(new RegExp(KEY_ID_PATTERN).test(s)).toBe(id !== undefined);
  });

  it('every key id 1..255 is accepted in its decimal form only', () => {
    for (let i = 0; i <= 300; i++) expect(parseKeyId(String(i))).toBe(i >= 1 && i <= 255 ? i : undefined);
  });

  it('good keys: data decoded from base64, stringData as UTF-8 bytes, stringData wins on the same id', () => {
    const r = readAuthSecret({
      data: { '2': b64(32, 2), '1': b64(40, 1) },
      stringData: { '2': 'k'.repeat(33), '3': 'x'.repeat(32) },
    });
    expect(r.problems).toEqual([]);
    expect(r.keys.map((k) => [k.id, k.secret.byteLength])).toEqual([
      [1, 40],
      [2, 33],
      [3, 32],
    ]);
    // Whatever the rules accept, the keyring accepts.
    expect(new Keyring(r.keys, 2).ids()).toEqual([1, 2, 3]);
  });

  it('reports every bad entry with its path and the fix, and keeps only the good keys', () => {
    const r = readAuthSecret({
      data: { '1': b64(32), '2': b64(16), x: b64(32), '3': 'not base64!', '300': b64(32) },
    });
    expect(r.keys.map((k) => k.id)).toEqual([1]);
    expect(r.problems.map((p) => p.path)).toEqual(['data["2"]', 'data["3"]', 'data["300"]', 'data["x"]']);
    expect(r.problems[0]!.message).toBe(
      'key 2 has 16 bytes: use at least 32 random bytes; generate one with: openssl rand -base64 32',
    );
  });

  it('31 bytes is too short, 32 is enough', () => {
    expect(readAuthSecret({ data: { '1': b64(31) } }).problems).toHaveLength(1);
    expect(readAuthSecret({ data: { '1': b64(32) } }).problems).toEqual([]);
  });

  it.each([{}, { data: {} }, { data: null }, { data: {}, stringData: {} }])('no key: %j', (s) => {
    expect(readAuthSecret(s).problems).toEqual([
      expect.objectContaining({ path: 'data', message: expect.stringContaining('holds no key') }),
    ]);
  });

  it('non-string values and a data field that is not a map are refused, not thrown on', () => {
    expect(readAuthSecret({ data: { '1': 5 } }).problems[0]!.message).toContain('must be a string');
    expect(readAuthSecret({ data: 'x' as never }).problems.map((p) => p.path)).toEqual(['data', 'data']);
  });

  it('activeKeyId must be a key id the Secret names', () => {
    expect(activeKeyProblem('2', 'auth', [1, 2])).toBeUndefined();
    expect(activeKeyProblem('3', 'auth', [1, 2])).toBe(
      'key 3 is not in Secret auth (it holds: 1, 2); add key 3 to the Secret first, or set activeKeyId to one of its keys',
    );
    expect(activeKeyProblem('primary', 'auth', [1])).toContain('"primary" is not a key id');
    expect(activeKeyProblem('1', 'auth', [])).toContain('it holds: none');
  });

  it('namedKeyIds lists the ids named in data and stringData, valid keys or not', () => {
    expect(namedKeyIds({ data: { '2': 'short', x: '' }, stringData: { '1': '' } })).toEqual([1, 2]);
  });
});
