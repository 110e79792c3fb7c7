// Chooses the storage for `cache { backend }`.
import type { Logger } from 'pino';
import type { BackendEvents, CacheBackend } from './entry.ts';
import type { CacheStorageSettings } from './schema.ts';
import { MemoryBackend } from './store-memory.ts';

export function openBackend(s: CacheStorageSettings, events: BackendEvents, _log: Logger): CacheBackend {
  return new MemoryBackend(s.memoryBudget, events);
}
