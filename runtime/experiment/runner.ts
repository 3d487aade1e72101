/**
 * Runs the replications of every point of an experiment on worker threads.
 *
 * Each worker loads and compiles the model itself, then is handed jobs (one replication
 * of one point) one at a time as it finishes the last, so a slow point does not hold the
 * others back. Outcomes are kept by (point, replication), and the seed of a replication is
 * (experiment seed, replication index): the results do not depend on the number of
 * workers, and the same replication index across points shares its random numbers
 * (common random numbers).
 */
import * as os from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { Constant } from '../engine/api.js';
import type { FromWorker, Job, JobOutcome, KpiUnit, ToWorker, WorkerInit } from './messages.js';
import { giveBackWorker, takeWorker } from './worker-pool.js';

export interface RunnerPlan {
    readonly points: ReadonlyArray<{ readonly overrides: Readonly<Record<string, Constant>> }>;
    readonly replications: number;
    readonly seed: number;
    /** Seconds; Infinity: until no event is left. */
    readonly horizon: number;
    readonly warmup: number;
}

export interface RunnerOptions {
    /** The worker script (a CommonJS file that calls `startWorker`); `dist/worker.cjs` in the bundle. */
    readonly workerEntry: string;
    /** Handed to each worker's loader. */
    readonly source: unknown;
    readonly plan: RunnerPlan;
    /** Worker threads (default: the number of cores, at most one per job). */
    readonly workers?: number;
    /** Trace one job into this file (JSON Lines appended after a header the caller wrote). */
    readonly trace?: { readonly file: string; readonly point: number; readonly replication: number };
    /** Wall clock origin of the run, µs since the epoch (default: now). */
    readonly wallOrigin?: number;
    readonly onProgress?: (progress: Progress) => void;
    /** A worker's warning (a model's provider fell back), each distinct one once. */
    readonly onWarning?: (message: string) => void;
}

export interface Progress {
    readonly done: number;
    readonly total: number;
    readonly failed: number;
    /** Events processed so far, finished and running replications together. */
    readonly events: number;
    readonly eventsPerSecond: number;
    /** Seconds left, estimated; undefined until there is something to estimate from. */
    readonly etaSeconds: number | undefined;
    readonly elapsedMs: number;
    /**
     * running; pausing: pause() was called and some running replication has not reached its
     * next progress check yet; paused: every running replication is parked (events stay put)
     * and no job is handed out until resume().
     */
    readonly state: 'running' | 'pausing' | 'paused';
}

export interface RunnerResult {
    /** completed: every job completed; stopped: asked to stop first; failed: some replication failed (or a worker died). */
    readonly state: 'completed' | 'stopped' | 'failed';
    readonly twin: string;
    readonly kpis: readonly KpiUnit[];
    /** outcomes[point][replication]; undefined for a job that never ran. */
    readonly outcomes: ReadonlyArray<ReadonlyArray<JobOutcome | undefined>>;
    /** Events of the replications that ran to their end. */
    readonly events: number;
    readonly wallMs: number;
}

export interface RunHandle {
    readonly result: Promise<RunnerResult>;
    /** Asks every running replication to stop at its next check, and hands out no more jobs. */
    stop(): void;
    /** Ends the workers now; what was finished is kept. */
    kill(): void;
    /**
     * Parks every running replication at its next progress check (its trace flushed to the
     * file first) and hands out no new job; progress reports `pausing`, then `paused`.
     * stop() and kill() still work while paused.
     */
    pause(): void;
    /** Lets the parked replications go on and hands out jobs again. */
    resume(): void;
    /** What has finished so far: the KPIs' names and units (empty until a worker is ready) and outcomes[point][replication]. */
    soFar(): { readonly kpis: readonly KpiUnit[]; readonly outcomes: ReadonlyArray<ReadonlyArray<JobOutcome | undefined>> };
}

/**
 * A replication allocates little when untraced (the engine lives in typed arrays) and a
 * stream of short-lived records when traced; V8's default young generation then grows to
 * tens of MB per worker for no speed gain. A smaller one keeps a traced run's footprint
 * down: with bench:server's traced bank run, 160 MB at peak with V8's default, 132–138 MB with
 * 6–12 MB; `aimatrix run` of the untraced bank was no slower (772–802 ms against 797–867 ms).
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 8 };

/** A model that could not be loaded in a worker (its files, its compilation). */
export class ModelLoadError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'ModelLoadError';
    }
}

/** Numbers runs in this process: a worker's messages carry the number of the run they are for. */
let nextRun = 1;

export function runExperiment(options: RunnerOptions): RunHandle {
    const { plan } = options;
    const runNo = nextRun++;
    const started = performance.now();
    const jobs: Job[] = [];
    for (let point = 0; point < plan.points.length; point++) {
        for (let replication = 0; replication < plan.replications; replication++) {
            jobs.push({
                point, replication, seed: plan.seed, horizon: plan.horizon, warmup: plan.warmup,
                overrides: plan.points[point].overrides,
                trace: options.trace !== undefined && options.trace.point === point && options.trace.replication === replication
            });
        }
    }
    const total = jobs.length;
    const outcomes: Array<Array<JobOutcome | undefined>> = plan.points.map(() => new Array<JobOutcome | undefined>(plan.replications).fill(undefined));
    const stopBuffer = new SharedArrayBuffer(4);
    const stopFlag = new Int32Array(stopBuffer);
    const pauseBuffer = new SharedArrayBuffer(4);
    const pauseFlag = new Int32Array(pauseBuffer);
    const init: WorkerInit = {
        source: options.source,
        stop: stopBuffer,
        pause: pauseBuffer,
        wallOrigin: options.wallOrigin ?? Math.round((performance.timeOrigin + performance.now()) * 1000),
        traceFile: options.trace?.file
    };
    const count = Math.max(1, Math.min(options.workers ?? os.availableParallelism(), total));

    let next = 0;
    let done = 0;
    let failed = 0;
    let finishedEvents = 0;
    let liveEvents = 0;
    let stopping = false;
    let twin: string | undefined;
    let kpis: readonly KpiUnit[] = [];
    let loadError: string | undefined;
    let workerDied = false;
    let lastProgress = 0;
    let paused = false;
    const warned = new Set<string>();
    /** Workers whose running job reported that it is parked. */
    const parkedInJob = new Set<Worker>();
    /** Idle workers kept waiting for a job while paused. */
    const waitingForJob = new Set<Worker>();

    let settle!: (r: RunnerResult) => void;
    let fail!: (e: Error) => void;
    const result = new Promise<RunnerResult>((resolve, reject) => { settle = resolve; fail = reject; });

    const workers = new Set<Worker>();
    /** Simulated time reached by each worker's running job. */
    const liveSimTime = new Map<Worker, number>();
    const current = new Map<Worker, Job | undefined>();

    const report = (force: boolean): void => {
        if (!options.onProgress) return;
        const now = performance.now();
        if (!force && now - lastProgress < 100) return;
        lastProgress = now;
        const elapsedMs = now - started;
        const events = finishedEvents + liveEvents;
        const rate = elapsedMs > 0 ? events / (elapsedMs / 1000) : 0;
        // Work done: finished jobs, plus the simulated-time fraction of running ones when the horizon is finite.
        let fraction = done;
        if (Number.isFinite(plan.horizon)) for (const t of liveSimTime.values()) fraction += Math.min(1, t / plan.horizon);
        const etaSeconds = done === total ? 0 : fraction > 0 ? (elapsedMs / 1000) / fraction * (total - fraction) : undefined;
        options.onProgress({ done, total, failed, events, eventsPerSecond: rate, etaSeconds, elapsedMs, state: runState() });
    };

    const runState = (): Progress['state'] => {
        if (!paused) return 'running';
        for (const [w, job] of current) if (job !== undefined && !parkedInJob.has(w)) return 'pausing';
        return 'paused';
    };

    const hand = (worker: Worker): void => {
        if (paused && !stopping && next < jobs.length && loadError === undefined) {
            current.set(worker, undefined);
            waitingForJob.add(worker);
            return;
        }
        if (stopping || next >= jobs.length || loadError !== undefined) {
            current.set(worker, undefined);
            closeIfIdle();
            return;
        }
        const job = jobs[next++];
        current.set(worker, job);
        worker.postMessage({ type: 'job', job } satisfies ToWorker);
    };

    const closeIfIdle = (): void => {
        if (waitingForJob.size > 0 && !stopping && loadError === undefined) return;
        for (const job of current.values()) if (job !== undefined) return;
        if (workers.size > 0 && [...workers].some(w => !current.has(w))) return; // a worker still loading
        finish();
    };

    let finished = false;
    const finish = (): void => {
        if (finished) return;
        finished = true;
        // A worker with no job running is kept for the next run (it is sent `end` and drops this
        // run's model); one that is running a job (a kill), still loading, or that failed is ended.
        // The traced job writes its trace from its worker: the run has ended when that worker has
        // finished its job or ended (a killed one may be inside a write), so that nothing is
        // appended after the run settles.
        const ending: Array<Promise<number>> = [];
        for (const w of workers) {
            detach.get(w)?.();
            if (current.has(w) && current.get(w) === undefined && !broken.has(w)) {
                w.postMessage({ type: 'end' } satisfies ToWorker);
                giveBackWorker(options.workerEntry, w);
            } else {
                ending.push(w.terminate());
            }
        }
        workers.clear();
        report(true);
        const settled = (then: () => void): void => {
            if (options.trace === undefined || ending.length === 0) then();
            else void Promise.all(ending).finally(then);
        };
        if (loadError !== undefined) {
            const error = new ModelLoadError(loadError);
            settled(() => fail(error));
            return;
        }
        const state = failed > 0 || workerDied || (!stopping && done < total) ? 'failed' : stopping && done < total ? 'stopped' : 'completed';
        const ended: RunnerResult = { state, twin: twin ?? '', kpis, outcomes, events: finishedEvents, wallMs: performance.now() - started };
        // Not fsync'd: a trace runs to hundreds of MB, and syncing it would hold the run's end for
        // the disk; what was written survives a killed process (it is in the page cache), and after a
        // crash of the machine readers keep the complete blocks.
        settled(() => settle(options.trace === undefined ? ended : { ...ended, wallMs: performance.now() - started }));
    };

    /** Each worker's listeners come off when the run lets it go. */
    const detach = new Map<Worker, () => void>();
    /** Workers that failed (an uncaught error): never kept. */
    const broken = new Set<Worker>();

    for (let i = 0; i < count; i++) {
        const worker = takeWorker(options.workerEntry, WORKER_LIMITS);
        workers.add(worker);
        const onMessage = (message: FromWorker): void => {
            // A kept worker may have posted something for its last run just before this one took it.
            if (message.run !== runNo) return;
            switch (message.type) {
                case 'ready':
                    twin ??= message.twin;
                    if (kpis.length === 0) kpis = message.kpis;
                    hand(worker);
                    break;
                case 'warning':
                    if (!warned.has(message.message)) {
                        warned.add(message.message);
                        options.onWarning?.(message.message);
                    }
                    break;
                case 'load-failed':
                    loadError ??= message.message;
                    // It is idle, and may serve the next run.
                    current.set(worker, undefined);
                    finish();
                    break;
                case 'progress':
                    liveEvents += message.events;
                    liveSimTime.set(worker, message.simTime);
                    if (message.paused === true) parkedInJob.add(worker);
                    report(message.paused === true);
                    break;
                case 'done': {
                    liveSimTime.delete(worker);
                    parkedInJob.delete(worker);
                    outcomes[message.point][message.replication] = message.outcome;
                    if (message.outcome.status === 'completed') {
                        done++;
                        finishedEvents += message.outcome.events;
                    } else if (message.outcome.status === 'failed') {
                        done++;
                        failed++;
                    }
                    liveEvents = Math.max(0, liveEvents - message.outcome.events);
                    hand(worker);
                    // After hand: a worker held back by a pause counts as parked.
                    if (!finished) report(true);
                    break;
                }
            }
        };
        const onError = (error: Error): void => {
            broken.add(worker);
            const job = current.get(worker);
            if (job) {
                outcomes[job.point][job.replication] = {
                    status: 'failed', events: 0,
                    error: { message: `worker crashed: ${error.message}`, text: `internal error: worker crashed: ${error.message}` }
                };
                done++;
                failed++;
            } else if (twin === undefined) {
                loadError ??= `worker crashed while loading the model: ${error.message}`;
            }
            workerDied = true;
        };
        const onExit = (code: number): void => {
            if (finished) return;
            broken.add(worker);
            const ready = current.has(worker);
            workers.delete(worker);
            current.delete(worker);
            // The last worker gone, and none ever ready (a kept worker that stopped while idle, say): the
            // run fails with that reason rather than with nothing run and no word why. Others go on without it.
            if (workers.size === 0 && !ready && twin === undefined) loadError ??= `the experiment worker stopped (exit code ${code}) before it had loaded the model`;
            if (workers.size === 0) finish();
            else if (loadError === undefined) closeIfIdle();
        };
        worker.on('message', onMessage);
        worker.on('error', onError);
        worker.on('exit', onExit);
        detach.set(worker, () => {
            worker.off('message', onMessage);
            worker.off('error', onError);
            worker.off('exit', onExit);
        });
        worker.postMessage({ type: 'init', run: runNo, init } satisfies ToWorker);
    }

    return {
        result,
        stop() {
            stopping = true;
            Atomics.store(stopFlag, 0, 1);
            Atomics.notify(pauseFlag, 0);
            waitingForJob.clear();
            closeIfIdle();
        },
        kill() {
            stopping = true;
            Atomics.store(stopFlag, 0, 1);
            Atomics.notify(pauseFlag, 0);
            finish();
        },
        pause() {
            if (paused || finished) return;
            paused = true;
            Atomics.store(pauseFlag, 0, 1);
            report(true);
        },
        resume() {
            if (!paused) return;
            paused = false;
            parkedInJob.clear();
            Atomics.store(pauseFlag, 0, 0);
            Atomics.notify(pauseFlag, 0);
            report(true);
            if (finished) return;
            const idle = [...waitingForJob];
            waitingForJob.clear();
            for (const w of idle) hand(w);
        },
        soFar() {
            return { kpis, outcomes };
        }
    };
}
