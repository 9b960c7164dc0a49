import { DatagramTooLargeError, WireEncodeError } from './errors.js';

/** Thrown by Reader when a field would run past the bytes received. Caught inside decode only. */
export class ShortRead extends Error {
  override name = 'ShortRead';
}
/** Thrown by a body decoder when a field has a value its kind does not allow. Caught inside decode only. */
export class BadField extends Error {
  override name = 'BadField';
}
/** Thrown by a body decoder when a tag is not in the IdTable. Caught inside decode only. */
export class UnknownTag extends Error {
  override name = 'UnknownTag';
}

/**
 * Bounds-checked reader over `[start, end)` of a view. Every read checks the remaining bytes
 * first; counts are checked against what remains before anything is read for them. The
 * underlying DataView is itself limited to the caller's view, so even a bug here cannot
 * read bytes beyond it.
 */
export class Reader {
  #pos: number;

  constructor(
    private readonly view: DataView,
    start: number,
    private readonly end: number,
  ) {
    this.#pos = start;
  }

  get remaining(): number {
    return this.end - this.#pos;
  }

  #need(n: number): number {
    if (n > this.end - this.#pos) throw new ShortRead();
    const p = this.#pos;
    this.#pos += n;
    return p;
  }

  u8(): number {
    return this.view.getUint8(this.#need(1));
  }
  u16(): number {
    return this.view.getUint16(this.#need(2));
  }
  u32(): number {
    return this.view.getUint32(this.#need(4));
  }
  /**
   * A count of items of `itemSize` bytes each, as a u8 (`width` 1) or u16 (`width` 2).
   * The count is checked against the remaining bytes before returning, so a lying count
   * is caught here, not after a partial read.
   */
  count(width: 1 | 2, itemSize: number): number {
    const n = width === 1 ? this.u8() : this.u16();
    if (n * itemSize > this.remaining) throw new ShortRead();
    return n;
  }
  /** The reader must be exactly at its end (no trailing bytes inside a body). */
  done(): void {
    if (this.#pos !== this.end) throw new BadField();
  }
}

/** Writer into a scratch buffer; running out of it is DatagramTooLargeError. */
export class Writer {
  pos = 0;
  readonly view: DataView;

  constructor(
    readonly buf: Uint8Array,
    private readonly kind: string,
    private readonly limit: number,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** Reserves n bytes. */
  need(n: number): number {
    if (this.pos + n > this.buf.byteLength) {
      throw new DatagramTooLargeError(this.kind, this.pos + n, this.limit);
    }
    const p = this.pos;
    this.pos += n;
    return p;
  }

  // Range checks by bit arithmetic: true only for integers in range (NaN, fractions,
  // negatives and overflow all fail), and cheap enough for the per-entry hot path.
  u8(field: string, v: number): void {
    if ((v & 0xff) !== v) throw badInt(field, v, 0xff);
    const p = this.need(1);
    this.buf[p] = v;
  }
  u16(field: string, v: number): void {
    if ((v & 0xffff) !== v) throw badInt(field, v, 0xffff);
    this.view.setUint16(this.need(2), v);
  }
  u32(field: string, v: number): void {
    if (v >>> 0 !== v) throw badInt(field, v, 0xffff_ffff);
    this.view.setUint32(this.need(4), v);
  }
}

function badInt(field: string, v: number, max: number): WireEncodeError {
  return new WireEncodeError(field, `${v} is not an integer in 0..${max}`);
}
