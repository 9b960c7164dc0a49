/**
 * Every reason the decoder drops a datagram, in the order the checks run. Checks that
 * cost nothing (sizes, header fields, table look-ups, replay window) come before the
 * HMAC; body parsing and id look-ups inside the body come after it.
 */
export const DROP_REASONS = [
  /** Fewer bytes than a header plus a MAC. */
  'too-short',
  /** More than MAX_DATAGRAM bytes (1200): we never send such a datagram. */
  'too-long',
  /** The first two bytes are not "HL". */
  'bad-magic',
  /** A wire version this build does not speak. */
  'bad-version',
  /** A message kind this build does not know. */
  'unknown-kind',
  /** Flag bits that version 1 does not define are set. */
  'bad-flags',
  /** The body length field claims more bytes than were received (the CVE-2006-3121 / Heartbleed shape). */
  'bad-length',
  /** Bytes left over after header, body and MAC: the datagram is not what its length field says. */
  'trailing-bytes',
  /** The cluster tag is not ours (another HACluster on the same port, or a stray sender). */
  'wrong-cluster',
  /** The sender tag names no member of our cluster. */
  'unknown-sender',
  /** The sender tag is our own member (a looped-back multicast, or a spoof). */
  'self-sender',
  /** Addressed to another member (the receiver tag is neither us nor 0 = everyone). */
  'wrong-destination',
  /** The source address / port is not one configured for the claimed sender. */
  'source-mismatch',
  /** Signed with a key id our keyring does not hold. */
  'unknown-key',
  /**
   * The claimed sender has no public key in our configuration (its agent has not published
   * one on its Node yet, or it is malformed), so nothing it sends can be verified.
   */
  'unknown-member-key',
  /** The sender's incarnation is older than one we have already authenticated. */
  'stale-incarnation',
  /** The sequence number is below the sender's replay window. */
  'stale-seq',
  /** The sequence number is inside the window and was already accepted. */
  'replay',
  /** The HMAC does not verify: forged, corrupted, or signed with another secret under the same key id. */
  'bad-mac',
  /**
   * The cluster HMAC verifies, but this receiver has already paid for as many failed
   * signature checks of this sender (or of all senders) as its budget allows; the datagram is
   * dropped without the check (docs/adr/0026). A flood of forgeries from someone holding the
   * cluster key and spoofing a member's address, or a member whose new key we do not know yet.
   */
  'rate-limited',
  /**
   * The cluster HMAC verifies but the sender's signature does not: someone who holds the
   * cluster key (a member, or a node that read the Secret) spoke for another member, or the
   * sender's published key is not the one it signs with (docs/adr/0021).
   */
  'bad-signature',
  /** Authenticated, but the body does not parse for its kind (a sender bug or version skew). */
  'malformed-body',
  /** Authenticated, but the body names a member or VIP tag our IdTable does not hold. */
  'unknown-tag',
  /** A defect in this decoder (an exception it did not expect). Should stay at 0. */
  'internal-error',
  /**
   * Not a decoder outcome: authenticated and decoded, but its sender had not proven freshness
   * in the receiving member's current life (a recording played back after a restart, or a
   * peer's first datagrams of a new life): it counted for nothing (docs/adr/0015). Counted by
   * the member host, which moves it from `accepted`.
   */
  'not-fresh',
] as const;

export type DropReason = (typeof DROP_REASONS)[number];

/**
 * Counts datagrams by outcome. One instance per receiver (codec); the agent exports the
 * counts as metrics. Counting is the only thing a dropped datagram changes.
 */
export class DropCounters {
  #counts = new Map<DropReason, number>(DROP_REASONS.map((r) => [r, 0]));
  #accepted = 0;

  /** Records one dropped datagram. */
  drop(reason: DropReason): void {
    this.#counts.set(reason, (this.#counts.get(reason) ?? 0) + 1);
  }

  /** Records one accepted datagram. */
  accept(): void {
    this.#accepted++;
  }

  /** A datagram counted as accepted was dropped after all (for `reason`, e.g. not-fresh). */
  reclassify(reason: DropReason): void {
    if (this.#accepted > 0) this.#accepted--;
    this.drop(reason);
  }

  /** Datagrams dropped for `reason` so far. */
  get(reason: DropReason): number {
    return this.#counts.get(reason) ?? 0;
  }

  /** Datagrams accepted so far. */
  get accepted(): number {
    return this.#accepted;
  }

  /** Datagrams dropped so far, all reasons together. */
  get dropped(): number {
    let n = 0;
    for (const v of this.#counts.values()) n += v;
    return n;
  }

  /** A copy of every counter, zeros included (stable keys for metrics). */
  snapshot(): Record<DropReason, number> {
    return Object.fromEntries(DROP_REASONS.map((r) => [r, this.get(r)])) as Record<DropReason, number>;
  }
}
