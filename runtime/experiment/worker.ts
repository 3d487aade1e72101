/**
 * The body of an experiment worker thread. It serves runs one after another (the runner keeps
 * idle workers for the next run): for each, it loads and compiles the model once (through the
 * loader it is given), then runs the jobs it is handed, one replication at a time, and posts
 * each outcome back, tagged with the run's number. A failure inside a replication ends that
 * replication only. A twin whose agents call ONNX models gets one model host per worker and
 * run (each model loaded once, kept across jobs, closed at the run's end) and runs its
 * replications asynchronously.
 */
import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { InferenceUse } from '../../protocol/index.js';
import type { CompiledModel, ReplicationResult, ReplicationSpec } from '../engine/api.js';
import type { OnnxModelHost } from '../inference/model-host.js';
import { TraceEncoder } from '../trace/binary.js';
import { BlockFileWriter, TraceWriteError } from '../trace/block-file.js';
import { collectGarbage } from './collect.js';
import type { FailureInfo, FromWorker, FromWorkerBody, Job, JobOutcome, ToWorker, WorkerInit } from './messages.js';

export type ModelLoader = (source: unknown) => Promise<CompiledModel>;

/** Progress is posted at most this often (ms) while a replication runs. */
const PROGRESS_EVERY_MS = 100;

export function startWorker(load: ModelLoader): void {
    const port = parentPort;
    if (!port) throw new Error('the experiment worker must run in a worker thread');

    /** The run this worker serves now: between its `init` and its `end`. */
    interface Run {
        readonly no: number;
        readonly init: WorkerInit;
        readonly stop: Int32Array;
        readonly pause: Int32Array | undefined;
        /** Microseconds since the run's wall origin. */
        readonly wallClock: () => number;
        model: CompiledModel | undefined;
        host: OnnxModelHost | undefined;
        readonly pending: Job[];
        /** Settles when the jobs handed so far have run. */
        drained: Promise<void>;
        draining: boolean;
    }
    let run: Run | undefined;

    const runJob = async (r: Run, m: CompiledModel, job: Job): Promise<JobOutcome> => {
        const { init, stop, pause, host, wallClock } = r;
        const post = (message: FromWorkerBody): void => port.postMessage({ ...message, run: r.no } satisfies FromWorker);
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

    const drain = async (r: Run): Promise<void> => {
        if (r.model === undefined || r.draining) return;
        r.draining = true;
        try {
            while (r.pending.length > 0) {
                const job = r.pending.shift()!;
                const outcome = await runJob(r, r.model, job);
                port.postMessage({ type: 'done', point: job.point, replication: job.replication, outcome, run: r.no } satisfies FromWorker);
            }
        } finally {
            r.draining = false;
        }
    };

    /** A run starts: its model is loaded and compiled, then the runner hands it jobs. */
    const begin = async (no: number, init: WorkerInit): Promise<void> => {
        // Read on every trace record: the origin's offset is worked out once (performance.timeOrigin is a getter).
        const wallOffset = performance.timeOrigin * 1000 - init.wallOrigin;
        const r: Run = {
            no, init, stop: new Int32Array(init.stop), pause: init.pause ? new Int32Array(init.pause) : undefined,
            wallClock: () => wallOffset + performance.now() * 1000,
            model: undefined, host: undefined, pending: [], drained: Promise.resolve(), draining: false
        };
        run = r;
        const post = (message: FromWorkerBody): void => port.postMessage({ ...message, run: no } satisfies FromWorker);
        try {
            const m = await load(init.source);
            if (m.usesInference && m.models && m.models.length > 0) {
                // Loaded only here: a twin without models never loads onnxruntime's native code.
                const { createModelHost } = await import('../inference/model-host.js');
                // Warnings (a provider fell back) go to the runner, which says each once whatever the number of workers.
                r.host = await createModelHost(m.models, { onWarning: line => post({ type: 'warning', message: line }) });
            }
            r.model = m;
            post({ type: 'ready', twin: m.twin, kpis: m.kpis.map(k => ({ name: k.name, unit: k.unit })) });
            r.drained = drain(r);
        } catch (error) {
            post({ type: 'load-failed', message: error instanceof Error ? error.message : String(error) });
        }
    };

    /** The run is over (the runner hands this worker on to the next one): its models are closed and its model dropped. */
    const end = async (): Promise<void> => {
        const r = run;
        run = undefined;
        if (r === undefined) return;
        await r.drained;
        await r.host?.dispose();
        // What the run loaded (the language core's documents, the compiled model, a traced run's
        // garbage) goes now, between runs, rather than stay in the old generation of a worker that
        // serves run after run.
        collectGarbage();
    };

    // init and end are handled in turn, each once the one before has finished (loading a model and
    // closing its host are asynchronous); jobs come only after this run's `ready`.
    let turn: Promise<void> = Promise.resolve();
    port.on('message', (message: ToWorker) => {
        switch (message.type) {
            case 'init':
                turn = turn.then(() => begin(message.run, message.init));
                break;
            case 'job':
                if (run !== undefined) {
                    run.pending.push(message.job);
                    if (!run.draining) run.drained = drain(run);
                }
                break;
            case 'end':
                // A failure to close the run's models (an ONNX session that will not release) must not
                // stop this worker from serving the next run: that run's init comes after it in turn.
                turn = turn.then(end).catch(() => undefined);
                break;
        }
    });
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
