/**
 * In-memory NetworkDriver for unit tests and the simulator. It keeps the kernel's view of one
 * node (interfaces, addresses, which are Heartline's), the fence deadlines, and the kernel
 * lifetimes, all on an injected Clock, and records every call. It behaves like
 * NetdNetworkDriver (both pass test/contract/network-driver.ts), including its failures.
 *
 * Fault hooks: `agentDied()` (the fence sweeps at once), `fenceDied()` (deadlines stop being
 * enforced, only kernel lifetimes remain), `setLink()`, `addForeign()` (an operator's address).
 */
import type { Clock, Millis, NetworkDriver, OwnedAddress, Stoppable } from '../../src/core/ports.js';

export interface FakeInterface {
  name: string;
  /** Carrier and admin state. Default true. */
  up?: boolean;
  /** The interface's own addresses (not Heartline's), e.g. `198.18.1.1/24`; they define its subnets. */
  addresses?: string[];
}

export interface FakeNetworkComponents {
  clock: Clock;
}

export interface FakeNetworkInit {
  interfaces: FakeInterface[];
}

export type NetworkCall =
  | { op: 'list' | 'sweep' | 'close'; at: Millis }
  | { op: 'add' | 'refresh'; at: Millis; addr: OwnedAddress; lifetimeSec: number; deadlineMs: Millis }
  | { op: 'remove'; at: Millis; addr: OwnedAddress }
  | { op: 'announce'; at: Millis; addr: OwnedAddress; count: number; intervalMs: Millis }
  | { op: 'interfaceFor'; at: Millis; ip: string }
  | { op: 'linkUp'; at: Millis; iface: string };

/** Why an owned address went away without `remove`/`sweep`. */
export type FakeRemoval = { addr: OwnedAddress; at: Millis; by: 'deadline' | 'lifetime' | 'agent-death' };

interface Addr {
  iface: string;
  cidr: string;
  owned: boolean;
  deadlineAt?: Millis;
  expiresAt?: Millis;
  timers: Stoppable[];
}

/** Error of the fake, worded like NetdError so the contract can match messages. */
export class FakeNetworkError extends Error {
  override readonly name = 'FakeNetworkError';
}

export class FakeNetworkDriver implements NetworkDriver {
  readonly calls: NetworkCall[] = [];
  /** Addresses removed by the fence or the kernel lifetime, in order. */
  readonly removals: FakeRemoval[] = [];
  private readonly clock: Clock;
  private readonly links = new Map<string, boolean>();
  private readonly addrs: Addr[] = [];
  private fenceAlive = true;
  private closed = false;

  constructor(components: FakeNetworkComponents, init: FakeNetworkInit) {
    this.clock = components.clock;
    for (const i of init.interfaces) {
      this.links.set(i.name, i.up ?? true);
      for (const cidr of i.addresses ?? [])
        this.addrs.push({ iface: i.name, cidr: canonical(cidr), owned: false, timers: [] });
    }
  }

  // ---- inspection and fault hooks (not part of the port) ----

  /** Every address on `iface` (or on all interfaces), Heartline's or not, as the kernel has them now. */
  addresses(iface?: string): OwnedAddress[] {
    this.expire();
    return this.addrs
      .filter((a) => iface === undefined || a.iface === iface)
      .map(({ iface, cidr }) => ({ iface, cidr }));
  }

  /** Whether `cidr` is bound (by anyone) on this node right now. */
  holds(cidr: string): boolean {
    const c = canonical(cidr);
    return this.addresses().some((a) => a.cidr === c);
  }

  /** Adds an address the way an operator would (`ip addr add`): not Heartline's, never swept. */
  addForeign(iface: string, cidr: string): void {
    this.needIface(iface, 'addForeign', cidr);
    this.addrs.push({ iface, cidr: canonical(cidr), owned: false, timers: [] });
  }

  setLink(iface: string, up: boolean): void {
    this.needIface(iface, 'setLink', iface);
    this.links.set(iface, up);
  }

  /** The agent died (EOF on the fence's pipe): every Heartline address goes at once. */
  agentDied(): void {
    if (!this.fenceAlive) return;
    for (const a of this.addrs.filter((x) => x.owned)) this.drop(a, 'agent-death');
    this.fenceAlive = false;
    this.closed = true;
  }

  /** The fence process died: deadlines are no longer enforced; kernel lifetimes still are. */
  fenceDied(): void {
    this.fenceAlive = false;
    for (const a of this.addrs) {
      a.deadlineAt = undefined;
      a.timers.splice(0).forEach((t) => t.stop());
      if (a.expiresAt !== undefined) this.arm(a);
    }
  }

  // ---- the port ----

  async list(): Promise<OwnedAddress[]> {
    this.record({ op: 'list', at: this.clock.now() });
    this.usable('list');
    return this.owned().map(({ iface, cidr }) => ({ iface, cidr }));
  }

  async add(addr: OwnedAddress, lifetimeSec: number, deadlineMs: Millis): Promise<void> {
    this.record({ op: 'add', at: this.clock.now(), addr: { ...addr }, lifetimeSec, deadlineMs });
    this.usable('add', addr.cidr);
    const cidr = canonicalOrThrow(addr.cidr, 'add');
    this.needIface(addr.iface, 'add', addr.cidr);
    checkTimes('add', addr.cidr, lifetimeSec, deadlineMs);
    this.expire();
    const elsewhere = this.owned().find((a) => a.cidr === cidr && a.iface !== addr.iface);
    if (elsewhere)
      throw new FakeNetworkError(
        `add ${addr.cidr}: ${addr.cidr} is already bound on ${elsewhere.iface}: DEL it first`,
      );
    const here = this.addrs.find((a) => a.cidr === cidr && a.iface === addr.iface);
    if (here && !here.owned)
      throw new FakeNetworkError(
        `add ${addr.cidr}: ${addr.cidr} is already on ${addr.iface} and is not Heartline's (added outside Heartline)`,
      );
    const a = here ?? { iface: addr.iface, cidr, owned: true, timers: [] };
    if (!here) this.addrs.push(a);
    this.setTimes(a, lifetimeSec, deadlineMs);
  }

  async refresh(addr: OwnedAddress, lifetimeSec: number, deadlineMs: Millis): Promise<void> {
    this.record({ op: 'refresh', at: this.clock.now(), addr: { ...addr }, lifetimeSec, deadlineMs });
    this.usable('refresh', addr.cidr);
    const cidr = canonicalOrThrow(addr.cidr, 'refresh');
    checkTimes('refresh', addr.cidr, lifetimeSec, deadlineMs);
    this.expire();
    const a = this.owned().find((x) => x.cidr === cidr);
    if (!a)
      throw new FakeNetworkError(
        `refresh ${addr.cidr}: ${addr.cidr} is not bound (its deadline passed or it was removed): ADD it again`,
      );
    this.setTimes(a, lifetimeSec, deadlineMs);
  }

  async remove(addr: OwnedAddress): Promise<void> {
    this.record({ op: 'remove', at: this.clock.now(), addr: { ...addr } });
    this.usable('remove', addr.cidr);
    const cidr = canonicalOrThrow(addr.cidr, 'remove');
    for (const a of this.owned().filter((x) => x.cidr === cidr)) this.drop(a);
  }

  async sweep(): Promise<OwnedAddress[]> {
    this.record({ op: 'sweep', at: this.clock.now() });
    this.usable('sweep');
    const gone = this.owned();
    gone.forEach((a) => this.drop(a));
    return gone.map(({ iface, cidr }) => ({ iface, cidr }));
  }

  async announce(addr: OwnedAddress, count: number, intervalMs: Millis): Promise<void> {
    this.record({ op: 'announce', at: this.clock.now(), addr: { ...addr }, count, intervalMs });
    this.usable('announce', addr.cidr);
    if (!Number.isInteger(count) || count < 1 || count > 100)
      throw new FakeNetworkError(`announce ${addr.cidr}: count must be an integer in 1..100, got ${count}`);
    const host = canonical(addr.cidr).split('/')[0];
    if (!this.owned().some((a) => a.iface === addr.iface && a.cidr.split('/')[0] === host))
      throw new FakeNetworkError(
        `announce ${addr.cidr}: ${host} is not bound on ${addr.iface}: ADD it before announcing`,
      );
  }

  async interfaceFor(ip: string): Promise<string | undefined> {
    this.record({ op: 'interfaceFor', at: this.clock.now(), ip });
    this.usable('interfaceFor', ip);
    const target = parseIp(ip.split('/')[0]!);
    if (!target) throw new FakeNetworkError(`interfaceFor ${ip}: bad ip ${ip}`);
    let best: { iface: string; plen: number } | undefined;
    for (const a of this.addrs) {
      if (a.owned) continue;
      const [host, plenText] = a.cidr.split('/');
      const net = parseIp(host!);
      const plen = Number(plenText);
      if (!net || net.length !== target.length || plen >= net.length * 8) continue;
      if (inPrefix(target, net, plen) && (!best || plen > best.plen)) best = { iface: a.iface, plen };
    }
    return best?.iface;
  }

  async linkUp(iface: string): Promise<boolean> {
    this.record({ op: 'linkUp', at: this.clock.now(), iface });
    this.usable('linkUp', iface);
    const up = this.links.get(iface);
    if (up === undefined)
      throw new FakeNetworkError(`linkUp ${iface}: no interface ${iface} in this network namespace`);
    return up;
  }

  async close(): Promise<void> {
    this.record({ op: 'close', at: this.clock.now() });
    if (this.closed) return;
    for (const a of this.owned()) this.drop(a);
    this.closed = true;
    this.fenceAlive = false;
  }

  // ---- internals ----

  private record(call: NetworkCall): void {
    this.calls.push(call);
  }

  private usable(op: string, target?: string): void {
    if (this.closed) throw new FakeNetworkError(`${op}${target ? ` ${target}` : ''}: driver is closed`);
  }

  private needIface(iface: string, op: string, target: string): void {
    if (!this.links.has(iface))
      throw new FakeNetworkError(`${op} ${target}: no interface ${iface} in this network namespace`);
  }

  private owned(): Addr[] {
    this.expire();
    return this.addrs.filter((a) => a.owned);
  }

  private setTimes(a: Addr, lifetimeSec: number, deadlineMs: Millis): void {
    const now = this.clock.now();
    a.expiresAt = now + Math.ceil(lifetimeSec) * 1000;
    a.deadlineAt = this.fenceAlive ? now + Math.ceil(deadlineMs) : undefined;
    this.arm(a);
  }

  /** Timers so removals happen on time under a simulated clock even if nobody looks. */
  private arm(a: Addr): void {
    a.timers.splice(0).forEach((t) => t.stop());
    const now = this.clock.now();
    for (const at of [a.deadlineAt, a.expiresAt]) {
      if (at !== undefined) a.timers.push(this.clock.after(Math.max(0, at - now), () => this.expire()));
    }
  }

  private expire(): void {
    const now = this.clock.now();
    for (const a of this.addrs.filter((x) => x.owned)) {
      const byDeadline = a.deadlineAt !== undefined && a.deadlineAt <= now;
      const byLifetime = a.expiresAt !== undefined && a.expiresAt <= now;
      if (!byDeadline && !byLifetime) continue;
      const at = Math.min(byDeadline ? a.deadlineAt! : Infinity, byLifetime ? a.expiresAt! : Infinity);
      this.drop(a, byDeadline && a.deadlineAt === at ? 'deadline' : 'lifetime', at);
    }
  }

  private drop(a: Addr, by?: FakeRemoval['by'], at: Millis = this.clock.now()): void {
    const i = this.addrs.indexOf(a);
    if (i >= 0) this.addrs.splice(i, 1);
    a.timers.splice(0).forEach((t) => t.stop());
    if (by) this.removals.push({ addr: { iface: a.iface, cidr: a.cidr }, at, by });
  }
}

function checkTimes(op: string, cidr: string, lifetimeSec: number, deadlineMs: Millis): void {
  if (!(Math.ceil(lifetimeSec) >= 1 && Math.ceil(lifetimeSec) <= 86400))
    throw new FakeNetworkError(`${op} ${cidr}: lifetimeSec must be in (0, 86400], got ${lifetimeSec}`);
  if (!(Math.ceil(deadlineMs) >= 1 && Math.ceil(deadlineMs) <= 86_400_000))
    throw new FakeNetworkError(`${op} ${cidr}: deadlineMs must be in (0, 86400000], got ${deadlineMs}`);
}

/** Bytes of an IPv4 or IPv6 address, or undefined. */
function parseIp(text: string): number[] | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) {
    const b = text.split('.').map(Number);
    return b.every((x) => x <= 255) ? b : undefined;
  }
  if (!/^[0-9a-fA-F:]+$/.test(text) || !text.includes(':')) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const words = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const head = words(halves[0]!);
  const tail = halves.length === 2 ? words(halves[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...tail];
  if (all.some((w) => w.length === 0 || w.length > 4)) return undefined;
  return all.flatMap((w) => {
    const v = parseInt(w, 16);
    return [v >> 8, v & 0xff];
  });
}

function formatIp(b: number[]): string {
  if (b.length === 4) return b.join('.');
  const w = Array.from({ length: 8 }, (_, i) => (b[2 * i]! << 8) | b[2 * i + 1]!);
  // RFC 5952: compress the longest run (>= 2) of zero words, the first one on ties.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = w.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

function inPrefix(ip: number[], net: number[], plen: number): boolean {
  for (let i = 0, bits = plen; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((ip[i]! & mask) !== (net[i]! & mask)) return false;
  }
  return true;
}

function canonical(cidr: string): string {
  const [host, plen] = cidr.split('/');
  const b = parseIp(host ?? '');
  return b ? `${formatIp(b)}${plen === undefined ? '' : `/${plen}`}` : cidr;
}

function canonicalOrThrow(cidr: string, op: string): string {
  const [host, plenText, extra] = cidr.split('/');
  const b = parseIp(host ?? '');
  const plen = Number(plenText);
  if (!b || extra !== undefined || !Number.isInteger(plen) || plen < 1 || plen > b.length * 8)
    throw new FakeNetworkError(`${op} ${cidr}: bad cidr ${cidr}: want address/prefix-length`);
  return `${formatIp(b)}/${plen}`;
}
