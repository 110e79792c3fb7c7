// Denylist rules: the pure part of the denylist agent. Config (from the agent's KDL `config {}`
// block, pushed in the Configure event, or from CLI flags):
//   paths "/admin" "/internal"        path prefixes (segment-aware: "/admin" does not hit "/administrator")
//   ips "10.0.0.1" "192.168.0.0/16"   client addresses or CIDR ranges (IPv4/IPv6)
//   headers { user-agent "sqlmap" }   header name -> exact value ("*" = any value, i.e. presence)
//   status 403; message "Forbidden"
import { BlockList, isIP } from 'node:net';

export interface DenylistConfig {
  paths: string[];
  ips: string[];
  headers: Record<string, string[]>;
  status: number;
  message: string;
}

export interface DenyHit {
  rule: 'path' | 'ip' | 'header';
  detail: string;
}

function list(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

/** Normalises the free-form JSON of a KDL config block (single values become lists). */
export function parseDenylistConfig(raw: unknown): DenylistConfig {
  const obj = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const headers: Record<string, string[]> = {};
  const h = obj.headers;
  if (typeof h === 'object' && h !== null && !Array.isArray(h)) {
    for (const [name, values] of Object.entries(h)) headers[name.toLowerCase()] = list(values === true ? '*' : values);
  }
  const status = Number.isInteger(obj.status) ? (obj.status as number) : 403;
  return {
    paths: list(obj.paths ?? obj.path),
    ips: list(obj.ips ?? obj.ip),
    headers,
    status,
    message: typeof obj.message === 'string' ? obj.message : 'Forbidden',
  };
}

export class Denylist {
  private readonly blocked = new BlockList();

  constructor(readonly config: DenylistConfig) {
    for (const entry of config.ips) {
      const [addr, bits] = entry.split('/');
      const family = isIP(addr ?? '');
      if (family === 0) throw new Error(`denylist: invalid ip "${entry}"`);
      const type = family === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.blocked.addAddress(addr!, type);
      else this.blocked.addSubnet(addr!, Number(bits), type);
    }
  }

  check(req: { path: string; clientIp: string; headers: Record<string, string[]> }): DenyHit | undefined {
    for (const prefix of this.config.paths) {
      if (pathHasPrefix(req.path, prefix)) return { rule: 'path', detail: prefix };
    }
    const family = isIP(req.clientIp);
    if (family !== 0 && this.blocked.check(req.clientIp, family === 6 ? 'ipv6' : 'ipv4')) return { rule: 'ip', detail: req.clientIp };
    for (const [name, values] of Object.entries(this.config.headers)) {
      const got = req.headers[name];
      if (!got) continue;
      if (values.includes('*') || got.some((v) => values.includes(v))) return { rule: 'header', detail: name };
    }
    return undefined;
  }
}

function pathHasPrefix(path: string, prefix: string): boolean {
  if (!path.startsWith(prefix)) return false;
  return prefix.endsWith('/') || path.length === prefix.length || path[prefix.length] === '/';
}
