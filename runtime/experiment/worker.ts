/**
 * The body of an experiment worker thread: load and compile the model once (through the
 * loader it is given), then run the jobs it is handed, one replication at a time, and
 * post each outcome back. A failure inside a replication ends that replication only.
 * A twin whose agents call ONNX models gets one model host per worker (each model loaded
 * once, kept across jobs) and runs its replications asynchronously.
 */
import * as fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import type { InferenceUse } from '../../protocol/index.js';
import type { CompiledModel, ReplicationResult, ReplicationSpec } from '../engine/api.js';
import type { OnnxModelHost } from '../inference/model-host.js';
import { TraceEncoder } from '../trace/binary.js';
import { BlockFileWriter, TraceWriteError } from '../trace/block-file.js';
import type { FailureInfo, FromWorker, Job, JobOutcome, ToWorker, WorkerInit } from './messages.js';

export type ModelLoader = (source: unknown) => Promise<CompiledModel>;

/** Progress is posted at most this often (ms) while a replication runs. */
const PROGRESS_EVERY_MS = 100;

export function startWorker(load: ModelLoader): void {
    const port = parentPort;
    if (!port) throw new Error('the experiment worker must run in a worker thread');
    const init = workerData as WorkerInit;
    const stop = new Int32Array(init.stop);
    const pause = init.pause ? new Int32Array(init.pause) : undefined;
    const post = (message: FromWorker): void => port.postMessage(message);

    let model: CompiledModel | undefined;
    let host: OnnxModelHost | undefined;
    const pending: Job[] = [];
    let loaded = false;
    let draining = false;

    // Read on every trace record: the origin's offset is worked out once (performance.timeOrigin is a getter).
    const wallOffset = performance.timeOrigin * 1000 - init.wallOrigin;
    const wallClock = (): number => wallOffset + performance.now() * 1000;

    const runJob = async (m: CompiledModel, job: Job): Promise<JobOutcome> => {
        let lastPost = performance.now();
        let lastEvents = 0;
        let events = 0;
        let trace: TraceEncoder | undefined;
        let traceFd: number | undefined;
        let outcome: JobOutcome;
        try {
            if (job.trace && init.traceFile !== undefined) {
                // Appended after the header the runner's caller wrote, block by block, from this thread.
                traceFd = openTrace(init.traceFile);
                trace = new TraceEncoder(new BlockFileWriter(traceFd));
            }
            const spec: ReplicationSpec = {
                seed: job.seed,
                replication: job.replication,
                horizon: job.horizon,
                warmup: job.warmup,
                overrides: job.overrides,
                trace,
                wallClock,
                onProgress: (simTime, n) => {
                    events = n;
                    trace?.flushIfDue();
                    const now = performance.now();
                    if (now - lastPost >= PROGRESS_EVERY_MS) {
                        post({ type: 'progress', events: n - lastEvents, simTime });
                        lastEvents = n;
                        lastPost = now;
                    }
                    if (pause !== undefined && Atomics.load(pause, 0) !== 0) {
                        // Paused: what was recorded reaches the file and the count reaches the runner, then wait.
                        trace?.flush();
                        post({ type: 'progress', events: n - lastEvents, simTime, paused: true });
                        lastEvents = n;
                        waitWhilePaused(pause, stop);
                        lastPost = performance.now();
                    }
                },
                shouldStop: () => Atomics.load(stop, 0) !== 0,
                models: host
            };
            const before = host?.stats();
            const result: ReplicationResult = m.usesInference && m.runReplicationAsync ? await m.runReplicationAsync(spec) : m.runReplication(spec);
            if (result.events > lastEvents) post({ type: 'progress', events: result.events - lastEvents, simTime: result.simTime });
            const inference = host && before ? usedSince(before, host.stats()) : undefined;
            outcome = { status: result.status, kpis: { ...result.kpis }, events: result.events, simTime: result.simTime, entities: result.entities, ...(inference ? { inference } : {}) };
        } catch (error) {
            outcome = { status: 'failed', error: describeFailure(error, init.traceFile), events };
        }
        if (traceFd !== undefined) {
            try {
                trace!.flush();
            } catch (error) {
                // A trace that could not be written fails its replication (a disk full, say), with the reason.
                if (outcome.status !== 'failed') outcome = { status: 'failed', error: describeFailure(error, init.traceFile), events: outcome.events };
            } finally {
                fs.closeSync(traceFd);
            }
        }
        return outcome;
    };

    const drain = async (): Promise<void> => {
        if (!model || draining) return;
        draining = true;
        try {
            while (pending.length > 0) {
                const job = pending.shift()!;
                const outcome = await runJob(model, job);
                post({ type: 'done', point: job.point, replication: job.replication, outcome });
            }
        } finally {
            draining = false;
        }
    };

    port.on('message', (message: ToWorker) => {
        if (message.type === 'close') {
            port.close();
            return;
        }
        pending.push(message.job);
        if (loaded) void drain();
    });

    load(init.source).then(async m => {
        if (m.usesInference && m.models && m.models.length > 0) {
            // Loaded only here: a twin without models never loads onnxruntime's native code.
            const { createModelHost } = await import('../inference/model-host.js');
            // Warnings (a provider fell back) go to the runner, which says each once whatever the number of workers.
            host = await createModelHost(m.models, { onWarning: line => post({ type: 'warning', message: line }) });
        }
        return m;
    }).then(
        m => {
            model = m;
            loaded = true;
            post({ type: 'ready', twin: m.twin, kpis: m.kpis.map(k => ({ name: k.name, unit: k.unit })) });
            void drain();
        },
        (error: unknown) => {
            post({ type: 'load-failed', message: error instanceof Error ? error.message : String(error) });
        }
    );
}

function openTrace(file: string): number {
    try {
        return fs.openSync(file, 'a');
    } catch (error) {
        throw new TraceWriteError(error instanceof Error ? error.message : String(error));
    }
}

/** Pause slices (ms): a paused replication looks at the stop flag at least this often. */
const PAUSE_SLICE_MS = 50;

/** Blocks this thread while `pause[0]` is non-zero, in slices, returning early when `stop[0]` is set. */
export function waitWhilePaused(pause: Int32Array, stop: Int32Array): void {
    while (Atomics.load(pause, 0) !== 0 && Atomics.load(stop, 0) === 0) Atomics.wait(pause, 0, Atomics.load(pause, 0), PAUSE_SLICE_MS);
}

/**
 * A SimulationError says where, when and who; anything else is an internal error. Checked
 * by shape, not `instanceof`: a model compiled in another bundle has its own class.
 */
export function describeFailure(error: unknown, traceFile?: string): FailureInfo {
    if (error instanceof Error && error.name === 'TraceWriteError') {
        // Not the model's fault nor an internal error: the disk's, say so and say which file.
        const message = `cannot write the trace${traceFile ? ` to ${traceFile}` : ''}: ${error.message}`;
        return { message, text: message };
    }
    if (error instanceof Error && error.name === 'SimulationError') {
        const e = error as Error & { loc?: FailureInfo['loc']; simTime?: number; subject?: string; describe?: () => string };
        const text = typeof e.describe === 'function' ? e.describe() : e.message;
        return { message: e.message, loc: e.loc, simTime: e.simTime, subject: e.subject, text };
    }
    const message = error instanceof Error ? error.message : String(error);
    return { message, text: `internal error: ${message}` };
}

/** One replication's use of the host's models: the difference of two `stats()` of one host (same models, same order). */
function usedSince(before: readonly InferenceUse[], after: readonly InferenceUse[]): InferenceUse[] {
    return after.map((a, i) => ({
        model: a.model, provider: a.provider, calls: a.calls - before[i].calls, runs: a.runs - before[i].runs,
        cacheHits: a.cacheHits - before[i].cacheHits, cacheMisses: a.cacheMisses - before[i].cacheMisses
    }));
}
