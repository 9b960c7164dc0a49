/**
 * Heartbeat wire format: the only place where protocol messages become bytes and back.
 * See docs/wire.md for the layout and the reasons behind it.
 */
export { WireCodec, encodedSize, type DecodeResult, type WireCodecInit } from './codec.js';
export { DropCounters, DROP_REASONS, type DropReason } from './drop-reasons.js';
export {
  DatagramTooLargeError,
  IdCollisionError,
  KeyringError,
  WireEncodeError,
  WireError,
} from './errors.js';
export { IdTable, wireTag, type IdTableInit } from './id-table.js';
export {
  KEY_HOWTO,
  KEY_ID_MAX,
  KEY_ID_MIN,
  KEY_ID_PATTERN,
  activeKeyProblem,
  namedKeyIds,
  parseKeyId,
  readAuthSecret,
  type AuthSecretKeys,
  type AuthSecretLike,
  type AuthSecretProblem,
} from './auth-secret.js';
export { Keyring, MIN_KEY_BYTES, type KeyringKey } from './keyring.js';
export {
  HEADER_SIZE,
  MAC_SIZE,
  MAX_DATAGRAM,
  MIN_DATAGRAM,
  SIG_SIZE,
  TRAILER_SIZE,
  WIRE_VERSION,
} from './layout.js';
export {
  MEMBER_KEY_PREFIX,
  MemberKeyError,
  MemberKeys,
  formatMemberPrivateKey,
  formatMemberPublicKey,
  generateMemberKey,
  parseMemberPrivateKey,
  parseMemberPublicKey,
} from './member-keys.js';
export { ReplayGuard, type ReplayVerdict } from './replay-window.js';
export {
  DATAGRAMS_PER_INTERVAL,
  TOTAL_SENDERS,
  VerifyBudget,
  verifyBudgetFor,
  type VerifyBudgetInit,
  type VerifyLane,
} from './verify-budget.js';
export { SourceBinding, canonicalAddress, type ExpectedSource } from './source-binding.js';
