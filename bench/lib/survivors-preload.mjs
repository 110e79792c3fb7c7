// SIGUSR2 #1: start V8's sampling heap profiler keeping only samples that survive scavenges
// (objects collected by a scavenge are dropped; those collected by a mark-compact are kept).
// SIGUSR2 #2: write the profile to $SURVIVORS_OUT.
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
const s = new Session();
s.connect();
let on = false;
process.on('SIGUSR2', () => {
  if (!on) {
    on = true;
    process.stdout.write('SURVIVORS start\n');
    s.post('HeapProfiler.startSampling', { samplingInterval: Number(process.env.SURVIVORS_INTERVAL ?? 4096), includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false }, (e) => { if (e) console.error('startSampling', e); });
  } else {
    s.post('HeapProfiler.stopSampling', (e, r) => {
      if (e) console.error('stopSampling', e);
      else writeFileSync(process.env.SURVIVORS_OUT, JSON.stringify(r.profile));
    });
  }
});
