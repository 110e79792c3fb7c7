// The contract between an UpstreamGroup and one `discovery "<kind>" { }` block.
import type { TargetSpec } from '../address.ts';

export interface DiscoverySource {
  /** the block's kind, e.g. "dns" (metrics label) */
  readonly kind: string;
  /** ms between refreshes; undefined = resolved once and never refreshed (static) */
  readonly intervalMs: number | undefined;
  /**
   * The current targets. Throws when the source cannot answer (the group keeps the last good
   * set); an empty array is a valid answer (the service has no instances). Honours `signal`.
   */
  resolve(signal: AbortSignal): Promise<TargetSpec[]>;
  /** releases sockets/clients (optional) */
  close?(): Promise<void> | void;
}
