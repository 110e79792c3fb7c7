// Chooses the storage for `cache { backend }`.
import type { BackendEvents, CacheBackend } from './entry.ts';
import type { CacheStorageSettings } from '../schema.ts';
import { DiskBackend } from './disk.ts';
import { HybridBackend } from './hybrid.ts';
import { MemoryBackend } from './memory.ts';

export function openBackend(s: CacheStorageSettings, events: BackendEvents): CacheBackend {
  if (s.backend === 'memory' || s.diskPath === undefined) return new MemoryBackend(s.memoryBudget, events);
  const disk = new DiskBackend({ root: s.diskPath, shards: s.diskShards, maxBytes: s.diskMaxSize, events });
  if (s.backend === 'disk') return disk;
  return new HybridBackend(new MemoryBackend(s.memoryBudget, HybridBackend.memoryEvents(events)), disk);
}
