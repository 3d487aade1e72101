/**
 * A child process for the store test: creates a run, then rewrites a large results file
 * over and over (each a complete, self-checking document) until it is killed.
 */
import { RunStore } from '../../runtime/store/run-store.js';

const store = new RunStore(process.argv[2]);
const run = store.create({ file: 'x.twin', files: ['x.twin'], twin: 'X', experiment: null, params: [], plan: {}, options: {}, trace: false });
process.stdout.write(run.id + '\n');
for (let version = 0; ; version++) {
    const values = Array.from({ length: 20_000 }, (_, i) => version * 1e6 + i);
    store.writeResults(run.id, { version, count: values.length, values });
    store.update(run, { progress: { finished: version, total: 1e9, failed: 0 } });
}
