/**
 * The few ASN.1 DER encodings an X.509 certificate needs (ITU-T X.690), enough for
 * self-signed-cert.ts. Every function returns one complete TLV; nothing here parses.
 */

/** A TLV with `tag` around `content` (definite length, shortest form). */
export function tlv(tag: number, content: Uint8Array): Buffer {
  const n = content.length;
  let len: number[];
  if (n < 0x80) len = [n];
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len = [0x80 | bytes.length, ...bytes];
  }
  return Buffer.concat([Buffer.from([tag, ...len]), content]);
}

export const sequence = (...items: Uint8Array[]): Buffer => tlv(0x30, Buffer.concat(items));
export const set = (...items: Uint8Array[]): Buffer => tlv(0x31, Buffer.concat(items));
export const octetString = (bytes: Uint8Array): Buffer => tlv(0x04, bytes);
export const utf8String = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
export const boolean = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));

/** BIT STRING of whole bytes, or with `unusedBits` low bits of the last byte unused. */
export function bitString(bytes: Uint8Array, unusedBits = 0): Buffer {
  if (unusedBits < 0 || unusedBits > 7 || (unusedBits > 0 && bytes.length === 0))
    throw new RangeError(`bitString: unusedBits ${unusedBits} out of range`);
  return tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

/** INTEGER from a non-negative number or an unsigned big-endian byte string. */
export function integer(value: number | Uint8Array): Buffer {
  let bytes: Buffer;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0)
      throw new RangeError(`integer: ${value} is not a safe unsigned integer`);
    const b: number[] = [];
    for (let v = value; v > 0; v = Math.floor(v / 256)) b.unshift(v & 0xff);
    bytes = Buffer.from(b);
  } else bytes = Buffer.from(value);
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  bytes = bytes.subarray(i);
  if (bytes.length === 0) bytes = Buffer.from([0]);
  // A set top bit would read as negative: DER puts one zero byte in front.
  if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(0x02, bytes);
}

/** OBJECT IDENTIFIER from dotted form, e.g. "2.5.4.3". */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => {
    if (!/^\d+$/.test(a)) throw new RangeError(`oid: "${dotted}" is not a dotted OID`);
    return Number(a);
  });
  if (arcs.length < 2 || arcs[0]! > 2 || (arcs[0]! < 2 && arcs[1]! > 39))
    throw new RangeError(`oid: "${dotted}" is not a valid OID`);
  const out: number[] = [];
  for (const arc of [arcs[0]! * 40 + arcs[1]!, ...arcs.slice(2)]) {
    if (!Number.isSafeInteger(arc)) throw new RangeError(`oid: arc ${arc} of "${dotted}" is too large`);
    const groups: number[] = [arc % 128];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) groups.unshift((v % 128) | 0x80);
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

/**
 * A certificate time (RFC 5280 4.1.2.5): UTCTime YYMMDDHHMMSSZ through 2049, GeneralizedTime
 * YYYYMMDDHHMMSSZ from 2050. Milliseconds are dropped.
 */
export function time(date: Date): Buffer {
  const y = date.getUTCFullYear();
  if (y < 1950 || y > 9999) throw new RangeError(`time: year ${y} cannot be encoded`);
  const p = (n: number) => String(n).padStart(2, '0');
  const rest = `${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}${p(date.getUTCHours())}${p(date.getUTCMinutes())}${p(date.getUTCSeconds())}Z`;
  return y < 2050
    ? tlv(0x17, Buffer.from(`${p(y % 100)}${rest}`, 'ascii'))
    : tlv(0x18, Buffer.from(`${y}${rest}`, 'ascii'));
}

/** [n] EXPLICIT: a constructed context-specific tag around one complete TLV. */
export const explicit = (n: number, inner: Uint8Array): Buffer => tlv(0xa0 | n, inner);

/** [n] IMPLICIT primitive: a context-specific tag replacing the tag of a primitive value. */
export const implicit = (n: number, content: Uint8Array): Buffer => tlv(0x80 | n, content);
