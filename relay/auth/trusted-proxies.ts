import { BlockList, isIP } from "node:net";

/** Names for the ranges a proxy usually sits in, so a deployment need not spell them out. */
const NAMED: Record<string, string[]> = {
  loopback: ["127.0.0.0/8", "::1/128"],
  private: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
};

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) is `10.0.0.1`. */
export function normalizeAddress(addr: string): string {
  const a = addr.toLowerCase();
  return a.startsWith("::ffff:") && isIP(a.slice(7)) === 4 ? a.slice(7) : a;
}

/**
 * The proxies whose `X-Forwarded-For` the relay believes (`FANOUT_TRUSTED_PROXIES`): a list
 * of addresses and CIDR ranges, plus the names `loopback` and `private`.
 */
export class TrustedProxies {
  private constructor(
    private readonly list: BlockList,
    /** The configured entries, as given. */
    readonly entries: readonly string[],
  ) {}

  /** Throws an Error naming the first entry that is neither an address, a CIDR range nor a known name. */
  static parse(entries: readonly string[]): TrustedProxies {
    const list = new BlockList();
    for (const entry of entries.flatMap((e) => NAMED[e.toLowerCase()] ?? [e])) {
      const [addr, prefix, extra] = entry.split("/");
      const family = isIP(addr);
      const max = family === 4 ? 32 : 128;
      if (family === 0 || extra !== undefined || (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= max))) {
        throw new Error(`${JSON.stringify(entry)} is not an IP address, a CIDR range (10.0.0.0/8, fd00::/8), "loopback" or "private"`);
      }
      const type = family === 4 ? "ipv4" : "ipv6";
      if (prefix === undefined) list.addAddress(addr, type);
      else list.addSubnet(addr, Number(prefix), type);
    }
    return new TrustedProxies(list, entries);
  }

  get size(): number {
    return this.entries.length;
  }

  /** Is `addr` (any textual form Node gives for a peer) one of the trusted proxies? */
  has(addr: string): boolean {
    if (this.entries.length === 0) return false;
    const a = normalizeAddress(addr);
    const family = isIP(a);
    return family !== 0 && this.list.check(a, family === 4 ? "ipv4" : "ipv6");
  }
}
