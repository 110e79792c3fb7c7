// Listener `tls { ... }` block (sentinel-reference.md §1.4). Unknown nodes are hard errors here.
// `acme` is accepted by the schema only so that validateTlsConfig can say clearly that ACME is
// not supported (instead of a generic "unknown key").
import { Type, type Static } from 'typebox';
import { StrictBlock, Repeated, Duration, Enum } from '../../src/config/types-helpers.ts';

export const SniSchema = StrictBlock({
  hostnames: Type.Optional(Type.Array(Type.String())),
  'priority-hostnames': Type.Optional(Type.Array(Type.String())),
  'cert-file': Type.Optional(Type.String()),
  'key-file': Type.Optional(Type.String()),
  acme: Type.Optional(Type.Unknown()),
});

export const SniCertsSchema = StrictBlock({
  'cert-folder': Type.String(),
  'reload-mode': Type.Optional(Enum(['off', 'interval', 'watch'] as const, { default: 'off' })),
  'reload-interval': Type.Optional(Duration),
});

export const ListenerTlsSchema = StrictBlock({
  'cert-file': Type.Optional(Type.String()),
  'key-file': Type.Optional(Type.String()),
  'ca-file': Type.Optional(Type.String()),
  'client-auth': Type.Optional(Type.Boolean({ default: false })),
  'min-version': Type.Optional(Type.String({ default: '1.2' })),
  'max-version': Type.Optional(Type.String()),
  'cipher-suite': Type.Optional(Type.Array(Type.String())),
  'ocsp-stapling': Type.Optional(Type.Boolean({ default: true })),
  'session-resumption': Type.Optional(Type.Boolean({ default: true })),
  sni: Repeated(SniSchema),
  'sni-certs': Repeated(SniCertsSchema),
  'allow-sni-overlaps': Type.Optional(Type.Boolean({ default: false })),
  acme: Type.Optional(Type.Unknown()),
});
export type ListenerTlsConfig = Static<typeof ListenerTlsSchema>;

/** The keys the tls feature adds to the config (its manifest's `schema`). */
export const TlsConfigKeys = { listener: { tls: Type.Optional(ListenerTlsSchema) } };
declare module '../../src/config/schema.ts' {
  interface ListenerKeys {
    tls: (typeof TlsConfigKeys)['listener']['tls'];
  }
}
