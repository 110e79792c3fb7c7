// The forwarding feature's blocks of `upstream "id" { }` (sentinel-reference.md §1.7): upstream
// TLS and HTTP version. (load-balancing, health-check, circuit-breaker and retry-policy are the
// balancing, health and retry features' keys.)
import { Type } from 'typebox';
import { Block } from '../../src/config/types-helpers.ts';

export const UpstreamTlsSchema = Block({
  sni: Type.Optional(Type.String()),
  'insecure-skip-verify': Type.Optional(Type.Boolean({ default: false })),
  'client-cert': Type.Optional(Type.String()),
  'client-key': Type.Optional(Type.String()),
  'ca-cert': Type.Optional(Type.String()),
});

/**
 * `http-version { }`: max-version 2 = h2 when TLS ALPN offers it (cleartext stays HTTP/1.1);
 * min-version 2 = h2 only (ALPN offers only h2; cleartext is h2c with prior knowledge). No default
 * for max-version: it is at least min-version (so `min-version 2` alone is valid), else 1.
 */
export const HttpVersionSchema = Block({
  'min-version': Type.Optional(Type.Integer({ minimum: 1, maximum: 2, default: 1 })),
  'max-version': Type.Optional(Type.Integer({ minimum: 1, maximum: 2 })),
  // seconds between keep-alive PINGs on idle HTTP/2 sessions; 0 = off
  'h2-ping-interval': Type.Optional(Type.Integer({ minimum: 0 })),
  // concurrent streams per HTTP/2 session (the peer's lower limit wins)
  'max-h2-streams': Type.Optional(Type.Integer({ minimum: 1 })),
});

/** The keys the forwarding feature adds to the config (its manifest's `schema`). */
export const ForwardingConfigKeys = { upstream: { tls: Type.Optional(UpstreamTlsSchema), 'http-version': Type.Optional(HttpVersionSchema) } };
declare module '../../src/config/schema.ts' {
  interface UpstreamKeys {
    tls: (typeof ForwardingConfigKeys)['upstream']['tls'];
    'http-version': (typeof ForwardingConfigKeys)['upstream']['http-version'];
  }
}
