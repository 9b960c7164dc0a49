/**
 * Performs the member's commands on this node: binds the VIP (kernel address with a
 * lifetime and a fence deadline), announces it, starts its Resources in order; renews the
 * lifetime and deadline; on unbind stops Resources in reverse and removes the address.
 *
 * Ordering rules (the safety argument depends on them):
 * - Address operations of one VIP run one after another (add → refresh* → remove) and are
 *   fast (one rtnetlink request each). Resource operations run on a separate queue, so a
 *   slow start never delays a renewal past the fence deadline.
 * - `unbind` resolves only once the address is gone. MemberHost holds back every datagram
 *   after an unbind until then, so no peer hears of a release before it is true.
 * - A planned unbind stops the Resources first (bounded by their stop timeouts), then
 *   removes the address. An unplanned one (lease expired, superseded) removes the address
 *   first: the lease is gone, so the address must be too; the Resources follow.
 *
 * Size: one file on purpose: the ordering rules below hold across bind, renew and unbind, and
 * splitting them would hide the queues they share.
 */
import type { Logger } from 'pino';
import { hostOf, type VirtualIPSpec } from '../api/index.js';
import type {
  Clock,
  Millis,
  NetworkDriver,
  OwnedAddress,
  RunResult,
  ServiceRunner,
  ServiceSpec,
} from '../core/ports.js';
import type { BindCommand, RenewCommand, UnbindCommand } from '../runtime/member-host.js';
import { resourceIdOf, type VipConfig } from '../runtime/cluster-config.js';
import { addressKey } from '../runtime/address-claims.js';
import { toServiceSpec } from './service-spec.js';
import { preciseNow } from '../ops/log.js';

export type ExecutorPhase = 'unbound' | 'binding' | 'bound' | 'unbinding';

/** Something an operator should see: becomes a log line, a metric and a Kubernetes Event. */
export interface ExecutorEvent {
  vip: string;
  type: 'Normal' | 'Warning';
  reason: string;
  note: string;
  action: string;
}

export interface ExecutorComponents {
  clock: Clock;
  driver: NetworkDriver;
  runner: ServiceRunner;
  log: Logger;
  /** The VIP's current configuration, or undefined if it is gone. */
  lookup: (vip: string) => VipConfig | undefined;
  /** The VIP cannot be served here (bind or Resource start failed): the member must let it go. */
  onUnhealthy: (vip: string, reason: string) => void;
  onEvent?: (e: ExecutorEvent) => void;
  /** A Resource changed state here (`name` is namespace/name). */
  onResourceState?: (
    name: string,
    state: 'starting' | 'running' | 'stopping' | 'stopped' | 'failed',
    message?: string,
  ) => void;
  /**
   * Bound / unbinding / unbound transitions: `bound` once the address was added, `unbinding`
   * when a release of a bound VIP starts (Resources may stop first), `unbound` once it is gone.
   */
  onPhase?: (vip: string, phase: ExecutorPhase, epoch: number) => void;
  /** The address of `vip` was added: `ms` from the add request to the driver confirming it. */
  onBindTime?: (vip: string, ms: Millis) => void;
  /**
   * A Resource start or stop finished (`resource` is its name in the VIP's spec, `ok` its
   * outcome). Probes are reported by the health monitor, not here.
   */
  onResourceResult?: (vip: string, resource: string, operation: 'start' | 'stop', ok: boolean) => void;
  /**
   * A bind refused because another VIP of this executor has (or is binding) the same address.
   * The configuration rule (runtime/address-claims.ts) should make this impossible: it is
   * defence in depth, reported so that an operator sees it.
   */
  onAddressRefused?: (vip: string, other: string) => void;
}

interface VipState {
  phase: ExecutorPhase;
  epoch: number;
  addr: OwnedAddress | undefined;
  /** Resources started, in start order. */
  started: ServiceSpec[];
  stopTimeouts: Map<string, Millis>;
  /** Resources whose start failed: stopped to clean up, but their status stays "failed". */
  failed: Set<string>;
  addrQueue: Promise<void>;
  /** Address operations queued or running (addrQueue is idle at 0). */
  addrOps: number;
  resQueue: Promise<void>;
  /** Bumped on every bind/unbind: queued work of an older generation is skipped. */
  generation: number;
  /** spec.address changed while bound, and the member was asked to let it go (once per bind). */
  moving: boolean;
}

/** How long an interface lookup (findif) is reused for binds. */
const IFACE_TTL_MS = 60_000;

export function kernelLifetimeSec(leaseExpiry: Millis, now: Millis): number {
  return Math.max(1, Math.ceil((leaseExpiry - now) / 1000));
}

export class VipExecutor {
  private readonly vips = new Map<string, VipState>();
  /**
   * Interface found for a VIP's host address (findif), kept so that a bind is one request to
   * the driver, not two: a takeover should not wait for a lookup whose answer rarely changes.
   * Dropped when an add on it fails, and after IFACE_TTL_MS (the node's own addressing may
   * change); warm() fills it ahead of binds.
   */
  private readonly ifaces = new Map<string, { iface: string; at: Millis }>();
  /**
   * Lookups in flight, by host address: a bind that comes while warm() is still asking (a new
   * VirtualIP: the election and the lookup start together) waits for that answer instead of
   * queueing a second request behind it.
   */
  private readonly lookups = new Map<string, Promise<string | undefined>>();

  constructor(private readonly c: ExecutorComponents) {}

  /**
   * Looks up, in the background, the interfaces of `addresses` (VIPs without
   * spec.interface) not yet known, so that the first bind of each does not wait for it.
   */
  warm(addresses: Iterable<string>): void {
    for (const address of addresses) {
      const host = hostOf(address);
      if (this.knownIface(host) || this.lookups.has(host)) continue;
      this.lookup(host).catch(() => undefined); // the bind looks it up again and reports the failure
    }
  }

  /** One driver lookup of `host`'s interface, shared by everyone who asks while it runs. */
  private lookup(host: string): Promise<string | undefined> {
    let p = this.lookups.get(host);
    if (p) return p;
    p = this.c.driver.interfaceFor(host).then(
      (iface) => {
        this.lookups.delete(host);
        if (iface) this.ifaces.set(host, { iface, at: this.c.clock.now() });
        return iface;
      },
      (err: unknown) => {
        this.lookups.delete(host);
        throw err;
      },
    );
    this.lookups.set(host, p);
    return p;
  }

  private async interfaceOf(spec: VirtualIPSpec): Promise<string | undefined> {
    if (spec.interface) return spec.interface;
    const host = hostOf(spec.address);
    return this.knownIface(host) ?? this.lookup(host);
  }

  private knownIface(host: string): string | undefined {
    const k = this.ifaces.get(host);
    if (!k) return undefined;
    if (this.c.clock.now() - k.at < IFACE_TTL_MS) return k.iface;
    this.ifaces.delete(host);
    return undefined;
  }

  private state(vip: string): VipState {
    let s = this.vips.get(vip);
    if (!s) {
      s = {
        phase: 'unbound',
        epoch: 0,
        addr: undefined,
        started: [],
        stopTimeouts: new Map(),
        failed: new Set(),
        addrQueue: Promise.resolve(),
        addrOps: 0,
        resQueue: Promise.resolve(),
        generation: 0,
        moving: false,
      };
      this.vips.set(vip, s);
    }
    return s;
  }

  /** VIPs whose address is bound (or being bound) here, with their epoch. */
  bound(): Array<{ vip: string; epoch: number; addr: OwnedAddress | undefined; phase: ExecutorPhase }> {
    return [...this.vips]
      .filter(([, s]) => s.phase !== 'unbound')
      .map(([vip, s]) => ({ vip, epoch: s.epoch, addr: s.addr, phase: s.phase }));
  }

  private event(
    vip: string,
    type: ExecutorEvent['type'],
    reason: string,
    note: string,
    action: string,
  ): void {
    this.c.onEvent?.({ vip, type, reason, note, action });
  }

  /**
   * Another VIP of this executor that has, or is binding or releasing, the same address
   * (compared by IP, prefix ignored).
   */
  private holderOf(vip: string, address: string): { vip: string; state: VipState } | undefined {
    const key = addressKey(address);
    for (const [other, state] of this.vips) {
      if (other === vip || state.phase === 'unbound') continue;
      const addr = state.addr?.cidr ?? this.c.lookup(other)?.spec.address;
      if (addr !== undefined && addressKey(addr) === key) return { vip: other, state };
    }
    return undefined;
  }

  bind(cmd: BindCommand): void {
    const s = this.state(cmd.vip);
    const gen = ++s.generation;
    s.phase = 'binding';
    s.epoch = cmd.epoch;
    s.moving = false;
    const log = this.c.log.child({ vip: cmd.vip, epoch: cmd.epoch });
    log.debug({ at: preciseNow() }, 'trace: bind');
    this.enqueueAddr(s, true, async () => {
      if (gen !== s.generation) return;
      const cfg = this.c.lookup(cmd.vip);
      if (!cfg) {
        log.warn('bind for a VIP no longer configured: ignored');
        s.phase = 'unbound';
        return;
      }
      // One address, one VIP: never add an address another VIP of ours holds. One being
      // released is waited for (its removal would otherwise take our address with it).
      let clash = this.holderOf(cmd.vip, cfg.spec.address);
      if (clash?.state.phase === 'unbinding') {
        await clash.state.addrQueue;
        if (gen !== s.generation) return;
        clash = this.holderOf(cmd.vip, cfg.spec.address);
      }
      if (clash) {
        s.phase = 'unbound';
        log.error(
          { address: cfg.spec.address, other: clash.vip, otherPhase: clash.state.phase },
          'bind refused: another VirtualIP holds this address here (address conflict)',
        );
        this.event(
          cmd.vip,
          'Warning',
          'AddressConflict',
          `not binding ${cfg.spec.address}: VirtualIP ${clash.vip} holds this address on this node; an address is held by one VirtualIP only (see condition AddressConflict)`,
          'Bind',
        );
        // Not marked unhealthy: the member keeps the lease, so no other node binds this VIP's
        // address while ours is bound for the other VIP.
        this.c.onAddressRefused?.(cmd.vip, clash.vip);
        return;
      }
      const now = this.c.clock.now();
      if (cmd.leaseExpiry <= now) {
        log.warn(
          { lateMs: now - cmd.leaseExpiry },
          'lease expired before the address could be added: not binding',
        );
        s.phase = 'unbound';
        return;
      }
      const spec: VirtualIPSpec = cfg.spec;
      try {
        // Known (warm()): no await, so that on an idle queue the add leaves in this call.
        const iface =
          spec.interface ?? this.knownIface(hostOf(spec.address)) ?? (await this.interfaceOf(spec));
        if (!iface) {
          throw new Error(
            `no interface has a subnet containing ${hostOf(spec.address)}; set spec.interface on the VirtualIP or fix the node's addresses`,
          );
        }
        const addr: OwnedAddress = { cidr: spec.address, iface };
        // Read again: the interface lookup above may have awaited netd, and the fence deadline
        // counts from now (a deadline from the earlier reading would end after the lease).
        const addAt = this.c.clock.now();
        if (cmd.leaseExpiry <= addAt) {
          log.warn(
            { lateMs: addAt - cmd.leaseExpiry },
            'lease expired while the interface was looked up: not binding',
          );
          s.phase = 'unbound';
          return;
        }
        log.debug({ at: preciseNow() }, 'trace: address add requested');
        const adding = this.c.driver.add(
          addr,
          kernelLifetimeSec(cmd.leaseExpiry, addAt),
          cmd.leaseExpiry - addAt,
        );
        // Announced right behind the add (the driver keeps call order): clients learn the new
        // MAC as soon as the address exists, not one round trip to the driver later.
        const announcing = this.c.driver.announce(addr, spec.announce.count, spec.announce.intervalMs);
        try {
          await adding;
        } catch (err) {
          void announcing.catch(() => undefined); // fails with the add; the add's error is reported
          this.ifaces.delete(hostOf(spec.address));
          throw err;
        }
        void announcing.catch((err: unknown) => log.warn({ err }, 'announce failed'));
        log.debug({ at: preciseNow() }, 'trace: address added');
        this.c.onBindTime?.(cmd.vip, this.c.clock.now() - addAt);
        if (gen !== s.generation) {
          // An unbind overtook us while the add was in flight: its remove is queued after us.
          s.addr = addr;
          return;
        }
        s.addr = addr;
        s.phase = 'bound';
        this.c.onPhase?.(cmd.vip, 'bound', cmd.epoch);
        log.info({ address: addr.cidr, iface, reason: cmd.reason }, 'VIP bound');
        this.event(
          cmd.vip,
          'Normal',
          'Bound',
          `bound ${addr.cidr} on ${iface} at epoch ${cmd.epoch}: ${cmd.reason}`,
          'Bind',
        );
      } catch (err) {
        s.phase = 'unbound';
        log.error({ err }, 'bind failed');
        this.event(
          cmd.vip,
          'Warning',
          'BindFailed',
          `cannot bind ${spec.address}: ${(err as Error).message}`,
          'Bind',
        );
        this.c.onUnhealthy(cmd.vip, `bind failed: ${(err as Error).message}`);
        return;
      }
      s.resQueue = s.resQueue.then(() => this.startResources(cmd.vip, s, gen, cfg, log));
    });
  }

  /**
   * Queues an address operation of one VIP behind the others. With `now`, on an idle queue it
   * starts in this call, so that its first driver request (a bind's add) is written before the
   * caller goes on (signing the datagrams of the same step), not a few promise hops later.
   */
  private enqueueAddr(s: VipState, now: boolean, op: () => Promise<void>): void {
    s.addrOps++;
    const run = () => op().finally(() => void s.addrOps--);
    s.addrQueue = now && s.addrOps === 1 ? run() : s.addrQueue.then(run);
  }

  private async startResources(
    vip: string,
    s: VipState,
    gen: number,
    cfg: VipConfig,
    log: Logger,
  ): Promise<void> {
    for (const r of cfg.resources) {
      if (gen !== s.generation) return;
      const spec = toServiceSpec(resourceIdOf(vip, r.name), r.spec, hostOf(cfg.spec.address));
      s.stopTimeouts.set(spec.name, r.spec.stopTimeoutMs);
      this.c.onResourceState?.(spec.name, 'starting');
      const res = await this.c.runner.start(spec, r.spec.startTimeoutMs);
      this.c.onResourceResult?.(vip, r.name, 'start', res.ok);
      this.c.onResourceState?.(
        spec.name,
        res.ok ? 'running' : 'failed',
        res.ok ? undefined : `start failed: ${res.detail}`,
      );
      if (!res.ok) {
        log.error(
          { resource: r.name, detail: res.detail, durationMs: res.durationMs },
          'resource failed to start',
        );
        this.event(
          vip,
          'Warning',
          'ResourceStartFailed',
          `Resource ${r.name} failed to start: ${res.detail}`,
          'Start',
        );
        s.started.push(spec); // stop it too: a failed start may have left something behind
        s.failed.add(spec.name);
        this.c.onUnhealthy(vip, `Resource ${r.name} failed to start: ${res.detail}`);
        return;
      }
      s.started.push(spec);
      log.info({ resource: r.name, durationMs: res.durationMs }, 'resource started');
    }
    if (cfg.resources.length) {
      this.event(
        vip,
        'Normal',
        'ResourcesStarted',
        `started ${cfg.resources.map((r) => r.name).join(', ')}`,
        'Start',
      );
    }
  }

  private async stopResources(vip: string, s: VipState, log: Logger): Promise<void> {
    while (s.started.length) {
      const spec = s.started.pop()!;
      const cleanup = s.failed.delete(spec.name);
      if (!cleanup) this.c.onResourceState?.(spec.name, 'stopping');
      const res: RunResult = await this.c.runner.stop(spec, s.stopTimeouts.get(spec.name) ?? 20_000);
      this.c.onResourceResult?.(vip, spec.name.slice(spec.name.indexOf('/') + 1), 'stop', res.ok);
      if (!res.ok) this.c.onResourceState?.(spec.name, 'failed', `stop failed: ${res.detail}`);
      else if (!cleanup) this.c.onResourceState?.(spec.name, 'stopped');
      if (!res.ok) {
        log.error({ resource: spec.name, detail: res.detail }, 'resource failed to stop');
        this.event(
          vip,
          'Warning',
          'ResourceStopFailed',
          `Resource ${spec.name} failed to stop: ${res.detail}`,
          'Stop',
        );
      } else {
        log.info({ resource: spec.name, durationMs: res.durationMs }, 'resource stopped');
      }
    }
  }

  renew(cmd: RenewCommand): void {
    const s = this.vips.get(cmd.vip);
    if (!s || s.phase === 'unbound' || s.phase === 'unbinding') return;
    const gen = s.generation;
    // Never started in this call: an unbind right behind it (same step) still voids it.
    this.enqueueAddr(s, false, async () => {
      if (gen !== s.generation || !s.addr) return;
      this.checkMoved(cmd.vip, s);
      const now = this.c.clock.now();
      if (cmd.leaseExpiry <= now) return; // the fence removes it at its deadline anyway
      try {
        await this.c.driver.refresh(s.addr, kernelLifetimeSec(cmd.leaseExpiry, now), cmd.leaseExpiry - now);
      } catch (err) {
        await this.rebind(cmd, s, err);
      }
    });
  }

  /**
   * spec.address changed while the old address is bound: keep renewing the old one (the
   * lease covers it) and ask the member to let the VIP go, once; it is bound again, at a new
   * epoch, with the new address. Until then the old address stays claimed for this VIP (the
   * controller keeps it so), so no other VirtualIP is given it.
   */
  private checkMoved(vip: string, s: VipState): void {
    const cfg = this.c.lookup(vip);
    if (!cfg || !s.addr || s.moving) return;
    const now = cfg.spec.address;
    const was = s.addr.cidr;
    const prefix = (a: string) => a.split('/')[1] ?? '';
    if (addressKey(now) === addressKey(was) && prefix(now) === prefix(was)) return;
    s.moving = true;
    this.c.log.info(
      { vip, from: was, to: now },
      'spec.address changed while bound: releasing to bind the new address',
    );
    this.event(
      vip,
      'Normal',
      'AddressChanged',
      `spec.address changed from ${was} to ${now}: releasing ${was}; the VIP is bound again with ${now}`,
      'Unbind',
    );
    this.c.onUnhealthy(vip, `spec.address changed from ${was} to ${now}: released to bind the new address`);
  }

  /**
   * The fence removed the address at its deadline because a renewal came late (a stalled
   * agent), yet the member still holds an unexpired lease: this renewal is derived from
   * grants that are valid until `cmd.leaseExpiry`, so no one else can have been acked. Add
   * the address again (as safe as the renewal itself) and announce it. If that fails too,
   * the VIP cannot be served here: mark it unhealthy so the member hands it over.
   */
  private async rebind(cmd: RenewCommand, s: VipState, cause: unknown): Promise<void> {
    const addr = s.addr!;
    const now = this.c.clock.now();
    const log = this.c.log.child({ vip: cmd.vip, epoch: cmd.epoch });
    if (cmd.leaseExpiry <= now) return;
    try {
      await this.c.driver.add(addr, kernelLifetimeSec(cmd.leaseExpiry, now), cmd.leaseExpiry - now);
      log.warn({ cause: (cause as Error).message }, 'address was fenced while the lease held: added again');
      this.event(
        cmd.vip,
        'Warning',
        'Refenced',
        `${addr.cidr} was removed by the fence after a late renewal and added again`,
        'Bind',
      );
      const cfg = this.c.lookup(cmd.vip);
      if (cfg) {
        void this.c.driver
          .announce(addr, cfg.spec.announce.count, cfg.spec.announce.intervalMs)
          .catch((err: unknown) => log.warn({ err }, 'announce failed'));
      }
    } catch (err) {
      log.error(
        { err, cause: (cause as Error).message },
        'renew failed and the address cannot be added again',
      );
      this.c.onUnhealthy(
        cmd.vip,
        `address ${addr.cidr} lost and cannot be added again: ${(err as Error).message}`,
      );
    }
  }

  /** Resolves once the address is removed (Resources first when the move is planned). */
  unbind(cmd: UnbindCommand): Promise<void> {
    const s = this.state(cmd.vip);
    s.generation++;
    const wasBound = s.phase !== 'unbound';
    s.phase = 'unbinding';
    if (wasBound) this.c.onPhase?.(cmd.vip, 'unbinding', cmd.epoch);
    const log = this.c.log.child({ vip: cmd.vip, epoch: cmd.epoch, reason: cmd.reason });
    const planned = cmd.reason === 'planned' || cmd.reason === 'removed' || cmd.reason === 'stopped';
    log.debug({ at: preciseNow() }, 'trace: unbind');
    const removeAddress = async () => {
      const addr = s.addr;
      if (addr) {
        try {
          log.debug({ at: preciseNow() }, 'trace: address remove requested');
          await this.c.driver.remove(addr);
          log.debug({ at: preciseNow() }, 'trace: address removed');
        } catch (err) {
          log.error({ err }, 'address removal failed; the fence deadline and kernel lifetime still bound it');
        }
      }
      s.addr = undefined;
      s.phase = 'unbound';
      // The address is gone: settle now, so that the host sends the held Release before any
      // bookkeeping runs (a log line, metrics, an Event written over TLS to the API server all
      // used to sit between the removal and the Release, in the successor's no-holder time).
      if (wasBound) setImmediate(released);
    };
    const released = () => {
      this.c.onPhase?.(cmd.vip, 'unbound', cmd.epoch);
      log.info({ detail: cmd.detail }, 'VIP released');
      this.event(
        cmd.vip,
        planned ? 'Normal' : 'Warning',
        planned ? 'Released' : 'LeaseLost',
        `released at epoch ${cmd.epoch} (${cmd.reason}): ${cmd.detail}`,
        'Unbind',
      );
    };
    let done: Promise<void>;
    s.addrOps++;
    const settled = () => void s.addrOps--;
    if (planned) {
      // Stop Resources (in reverse) while still holding the address, then remove it.
      const stopped = (s.resQueue = s.resQueue.then(() => this.stopResources(cmd.vip, s, log)));
      done = s.addrQueue = Promise.all([s.addrQueue, stopped]).then(removeAddress).finally(settled);
    } else {
      done = s.addrQueue = s.addrQueue.then(removeAddress).finally(settled);
      s.resQueue = Promise.all([s.resQueue, done]).then(() => this.stopResources(cmd.vip, s, log));
    }
    return done;
  }

  /** Waits for every queued operation (used at shutdown and in tests). */
  async drain(): Promise<void> {
    for (;;) {
      const pending = [...this.vips.values()].flatMap((s) => [s.addrQueue, s.resQueue]);
      await Promise.all(pending);
      const again = [...this.vips.values()].flatMap((s) => [s.addrQueue, s.resQueue]);
      if (again.every((p, i) => p === pending[i]) && again.length === pending.length) return;
    }
  }
}
