import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import {
  MemberKeyError,
  MemberKeys,
  formatMemberPrivateKey,
  formatMemberPublicKey,
  generateMemberKey,
  parseMemberPrivateKey,
  parseMemberPublicKey,
} from '../../../../src/core/wire/member-keys.js';

describe('member keys (text forms)', () => {
  it('round-trips a public key through ed25519:<base64> and a private key through PEM', () => {
    const k = generateMemberKey();
    const text = formatMemberPublicKey(k);
    expect(text).toMatch(/^ed25519:[A-Za-z0-9+/]{43}=$/);
    const pub = parseMemberPublicKey(text);
    expect(pub.equals(createPublicKey(k))).toBe(true);
    expect(formatMemberPublicKey(parseMemberPrivateKey(formatMemberPrivateKey(k)))).toBe(text);
  });

  it('refuses malformed public keys, naming the expected form', () => {
    expect(() => parseMemberPublicKey('rsa:abc')).toThrow(/does not start with "ed25519:"/);
    expect(() => parseMemberPublicKey('ed25519:short=')).toThrow(/base64 of 32 bytes/);
    expect(() => parseMemberPublicKey(`ed25519:${Buffer.alloc(33).toString('base64')}`)).toThrow(
      MemberKeyError,
    );
  });

  it('refuses keys of another algorithm', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect(() => formatMemberPublicKey(publicKey)).toThrow(/must be Ed25519/);
    expect(() =>
      parseMemberPrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()),
    ).toThrow(/must be Ed25519/);
    expect(() => new MemberKeys([['a', publicKey]])).toThrow(
      /member a: a verification key must be an Ed25519 public key/,
    );
    expect(() => new MemberKeys([['a', generateMemberKey()]])).toThrow(/Ed25519 public key/);
  });

  it('MemberKeys.fromText names the member whose key is bad', () => {
    const ok = formatMemberPublicKey(generateMemberKey());
    expect(MemberKeys.fromText([['a', ok]]).has('a')).toBe(true);
    expect(() =>
      MemberKeys.fromText([
        ['a', ok],
        ['b', 'ed25519:x'],
      ]),
    ).toThrow(/^member b: /);
  });
});
