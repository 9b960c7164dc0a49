import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { cidrContains, parseCidr, parseIp, type ParsedCidr, type ParsedIp } from '../../api/net.js';

export interface ProbeTargetsComponents {
  /** The node's interfaces and their addresses; default os.networkInterfaces (the agent's network namespace: the node's). */
  interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
}

const LOOPBACK = [parseCidr('127.0.0.0/8')!, parseCidr('::1/128')!];

const sameIp = (a: ParsedIp, b: ParsedIp): boolean =>
  a.family === b.family && a.bytes.every((x, i) => x === b.bytes[i]);

/**
 * Where Resources' http and tcp health checks may connect: the node's own addresses (every
 * address on its interfaces at the time of the probe, the VIPs it holds included, and
 * loopback), and the networks the HACluster lists in spec.healthCheckTargets. A check that
 * names anything else is refused before it connects, so a Resource cannot make the agent
 * probe the rest of the network (the kubelet of another node, a cloud metadata service).
 */
export class ProbeTargets {
  private readonly interfaces: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
  private networks: ParsedCidr[] = [];
  private networkText: string[] = [];

  constructor(components: ProbeTargetsComponents = {}) {
    this.interfaces = components.interfaces ?? networkInterfaces;
  }

  /** The HACluster's spec.healthCheckTargets (entries that are not CIDRs are ignored: the API refuses them). */
  setNetworks(cidrs: readonly string[]): void {
    const parsed = cidrs.map((c) => ({ c, p: parseCidr(c) })).filter((x) => x.p !== undefined);
    this.networks = parsed.map((x) => x.p!);
    this.networkText = parsed.map((x) => x.c);
  }

  /** Undefined when `address` may be probed; otherwise why not, with the fix. */
  refusal(address: string): string | undefined {
    const ip = parseIp(address);
    if (ip) {
      if (LOOPBACK.some((n) => cidrContains(n, ip))) return undefined;
      if (this.networks.some((n) => cidrContains(n, ip))) return undefined;
      for (const list of Object.values(this.interfaces())) {
        for (const a of list ?? []) {
          const own = parseIp(a.address);
          if (own && sameIp(own, ip)) return undefined;
        }
      }
    }
    const listed = this.networkText.length > 0 ? ` (${this.networkText.join(', ')})` : '';
    return `${address} is not an address of this node nor in the HACluster's spec.healthCheckTargets${listed}; probe the VIP (port), an address of this node or 127.0.0.1, or add the network to spec.healthCheckTargets`;
  }
}
