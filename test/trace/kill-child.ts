/**
 * A child process for the kill -9 test: stores a run (state running, its own pid), writes the
 * binary trace header to the run's trace.aimtrace and runs an endless traced replication of the fake
 * model on a worker thread, as the runtime server does; it runs until it is killed.
 * argv: workspace, worker entry.
 */
import { RunStore } from '../../runtime/store/run-store.js';
import { runExperiment } from '../../runtime/experiment/runner.js';
import { TRACE_FORMAT } from '../../runtime/trace/jsonl.js';
import { writeBinaryTraceHeader } from '../../runtime/trace/read.js';

const [workspace, workerEntry] = process.argv.slice(2);
const store = new RunStore(workspace);
const run = store.create({ file: 'fake.twin', files: ['fake.twin'], twin: 'Fake', experiment: null, params: [], plan: {}, options: {}, trace: true });
const wallOrigin = Math.round((performance.timeOrigin + performance.now()) * 1000);
const file = store.file(run.id, 'trace.aimtrace');
writeBinaryTraceHeader(file, {
    kind: 'header', format: TRACE_FORMAT, runId: run.id, twin: 'Fake', experiment: null, files: ['fake.twin'],
    point: 0, replication: 0, set: {}, seed: 5, clocks: { sim: 's', wall: 'us' }, wallOrigin
});
const handle = runExperiment({
    workerEntry, source: {}, workers: 1, wallOrigin,
    plan: { points: [{ overrides: { steps: 1e12 } }], replications: 1, seed: 5, horizon: Infinity, warmup: 0 },
    trace: { file, point: 0, replication: 0 }
});
process.stdout.write(`${run.id}\n`);
void handle.result.then(() => process.exit(0));
