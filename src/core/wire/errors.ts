/** Base class of every error the wire module throws. `decode` never throws; `encode` and builders do. */
export class WireError extends Error {
  override name = 'WireError';
}

/** `encode` would produce more than MAX_DATAGRAM bytes; nothing was sent. */
export class DatagramTooLargeError extends WireError {
  override name = 'DatagramTooLargeError';
  constructor(
    readonly kind: string,
    readonly size: number,
    readonly limit: number,
  ) {
    super(
      `${kind} message needs ${size} bytes on the wire but a datagram may carry at most ${limit}: ` +
        `send fewer entries per message (split it) or lower the member count`,
    );
  }
}

/** A message field cannot be put on the wire (out of range, unknown id, wrong cluster). */
export class WireEncodeError extends WireError {
  override name = 'WireEncodeError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`cannot encode field ${field}: ${message}`);
  }
}

/** Two configured ids hash to the same 32-bit wire tag. */
export class IdCollisionError extends WireError {
  override name = 'IdCollisionError';
  constructor(
    readonly space: string,
    readonly a: string,
    readonly b: string,
    readonly tag: number,
  ) {
    super(
      `${space} ids "${a}" and "${b}" both map to wire tag 0x${tag.toString(16).padStart(8, '0')}: ` +
        `rename one of them, or give IdTable a different salt (the salt must be the same on every member)`,
    );
  }
}

/** A keyring was built or changed in a way that would break authentication. */
export class KeyringError extends WireError {
  override name = 'KeyringError';
}
