/**
 * The runs of one server: started through the same session code as `aimatrix run`
 * (runtime/experiment/session.ts), stored in the workspace's run store, traced live into
 * their `trace.jsonl`, and controlled (stop, pause, resume) by any client.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { RunInfo, RunReport, RunState } from '../../protocol/index.js';
import { collectGarbage } from '../experiment/collect.js';
import { launchRun, RunPreparer, type LaunchedRun, type RunRequest } from '../experiment/session.js';
import type { Progress } from '../experiment/runner.js';
import { RunNotFoundError, RunStore, type RunRecord } from '../store/run-store.js';
import { openTraceTail, type TraceTail } from './trace-tail.js';

export class RunError extends Error {
    constructor(message: string, readonly reason: 'not-found' | 'wrong-state' | 'model' | 'usage', readonly data?: unknown) {
        super(message);
        this.name = 'RunError';
    }
}

interface LiveRun {
    readonly launched: LaunchedRun;
    state: RunState;
    tail?: TraceTail;
}

export interface RunEvents {
    /** `points`: the KPIs so far, when a replication finished since the last call. */
    progress(runId: string, progress: Progress, points?: RunReport['points']): void;
    state(runId: string, state: RunState, reason?: string): void;
    /** A warning from the run's workers (a model's provider fell back), each once. */
    warning(runId: string, message: string): void;
}

export interface StartRequest extends RunRequest {
    /** The real path of the twin file (already checked to be inside the workspace). */
    readonly file: string;
    readonly workers?: number;
    readonly trace: boolean;
}

/**
 * The most replications (over all points) and worker threads one run may ask for: the runner
 * holds a job and an outcome per replication in memory, and a thread per worker, so one
 * request for a billion replications or ten thousand workers would take the server down
 * for every client.
 */
export const MAX_JOBS = 1_000_000;
export const maxWorkers = (): number => Math.max(64, os.availableParallelism());

export class RunManager {
    private readonly live = new Map<string, LiveRun>();
    /** Tails of stored (ended) runs that someone reads. */
    private readonly stored = new Map<string, TraceTail>();
    /** Set by stopAll: no run starts after it. */
    private closing = false;
    readonly store: RunStore;
    private readonly preparer = new RunPreparer();

    constructor(readonly workspace: string, private readonly workerEntry: string, private readonly events: RunEvents) {
        this.store = new RunStore(workspace);
    }

    async start(request: StartRequest, options: Readonly<Record<string, unknown>>): Promise<string> {
        if (this.closing) throw new RunError('the server is stopping: no new runs', 'wrong-state');
        const prepared = await this.preparer.prepare(request.file, request, this.workspace);
        // A run checked while the server began to stop is not launched: stopAll would not stop it, and its workers would keep the process alive.
        if (this.closing) throw new RunError('the server is stopping: no new runs', 'wrong-state');
        if (prepared.kind === 'errors') {
            const errors = prepared.check.diagnostics.filter(d => d.severity === 'error');
            throw new RunError(`${options.file as string}: ${errors.length} error${errors.length === 1 ? '' : 's'}, not run`, 'model', {
                diagnostics: errors.map(({ file, line, column, code, message }) => ({ file, line, column, code, message }))
            });
        }
        if (prepared.kind === 'usage') throw new RunError(prepared.message, 'usage');
        const jobs = prepared.plan.points.length * prepared.plan.replications;
        if (jobs > MAX_JOBS) {
            throw new RunError(`${jobs} replications (${prepared.plan.points.length} point${prepared.plan.points.length === 1 ? '' : 's'} × ${prepared.plan.replications}) is more than a run may have (${MAX_JOBS})`, 'usage');
        }
        if (request.workers !== undefined && request.workers > maxWorkers()) throw new RunError(`workers: at most ${maxWorkers()}, got ${request.workers}`, 'usage');
        let runId = '';
        let lastState: RunState = 'running';
        let lastDone = 0;
        const launched = launchRun(prepared, {
            cwd: this.workspace, workerEntry: this.workerEntry, workers: request.workers,
            trace: request.trace ? 'live' : 'none', options,
            onWarning: message => { if (runId) this.events.warning(runId, message); },
            onProgress: progress => {
                if (!runId) return;
                const run = this.live.get(runId);
                if (run && progress.state !== lastState && (run.state === 'running' || run.state === 'pausing' || run.state === 'paused')) {
                    lastState = progress.state;
                    run.state = progress.state;
                    this.events.state(runId, progress.state);
                }
                const points = progress.done !== lastDone ? launched.pointsSoFar() : undefined;
                lastDone = progress.done;
                this.events.progress(runId, progress, points);
            }
        });
        runId = launched.record.id;
        const run: LiveRun = { launched, state: 'running' };
        this.live.set(runId, run);
        this.events.state(runId, 'running');
        void launched.end.then(end => {
            const state: RunState = end.kind === 'failed' ? 'failed' : end.record.state;
            run.state = state;
            run.tail?.end(state);
            this.live.delete(runId);
            if (run.tail && run.tail.subscriberCount > 0) this.stored.set(runId, run.tail);
            else run.tail?.close();
            this.events.state(runId, state, end.kind === 'failed' ? end.message : end.record.reason);
            // Between runs, what this one allocated goes (see collect.ts); not while another runs.
            if (this.live.size === 0) collectGarbage();
        });
        return runId;
    }

    private liveRun(ref: string): LiveRun & { runId: string } {
        const runId = this.resolve(ref).id;
        const run = this.live.get(runId);
        if (!run) throw new RunError(`run ${runId} is not running in this server (${this.store.read(runId).state})`, 'wrong-state');
        return { ...run, runId };
    }

    stop(ref: string): RunState {
        const run = this.liveRun(ref);
        run.launched.handle.stop();
        return run.state;
    }

    pause(ref: string): RunState {
        const run = this.liveRun(ref);
        run.launched.handle.pause();
        return 'pausing';
    }

    resume(ref: string): RunState {
        const run = this.liveRun(ref);
        run.launched.handle.resume();
        return 'running';
    }

    resolve(ref: string): RunRecord {
        try {
            return this.store.resolve(ref);
        } catch (error) {
            if (error instanceof RunNotFoundError) throw new RunError(error.message, 'not-found');
            throw error;
        }
    }

    list(): RunInfo[] {
        return this.store.list().map(r => this.info(r));
    }

    info(r: RunRecord): RunInfo {
        const live = this.live.get(r.id);
        return {
            runId: r.id, state: live ? live.state : r.state, file: r.file, twin: r.twin, experiment: r.experiment,
            startedAt: r.startedAt, ...(r.endedAt ? { endedAt: r.endedAt } : {}), trace: r.trace, live: live !== undefined,
            ...(r.progress ? { progress: r.progress } : {}), ...(r.reason ? { reason: r.reason } : {})
        };
    }

    results(ref: string): { runId: string; state: RunState; results: RunReport | null } {
        const record = this.resolve(ref);
        const state = this.live.get(record.id)?.state ?? record.state;
        if (this.live.has(record.id) || !fs.existsSync(this.store.file(record.id, 'results.json'))) return { runId: record.id, state, results: null };
        let stored: RunReport & { perReplication?: unknown };
        try {
            stored = this.store.readResults(record.id) as RunReport & { perReplication?: unknown };
            if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) throw new Error('not an object');
        } catch (error) {
            throw new RunError(`run ${record.id}: its results.json is unreadable (${error instanceof Error ? error.message : String(error)})`, 'not-found');
        }
        const { perReplication: _omitted, ...report } = stored;
        void _omitted;
        return { runId: record.id, state, results: report };
    }

    /** The tail of a run's trace: live while it runs, the stored file after. */
    tail(ref: string): { tail: TraceTail; live: boolean } {
        const record = this.resolve(ref);
        const run = this.live.get(record.id);
        if (run) {
            if (!run.launched.liveTraceFile) throw new RunError(`run ${record.id} records no trace (start it with trace: true)`, 'wrong-state');
            run.tail ??= openTraceTail(record.id, run.launched.liveTraceFile);
            return { tail: run.tail, live: true };
        }
        let tail = this.stored.get(record.id);
        if (!tail) {
            const file = this.store.traceFile(record.id);
            if (file === undefined) throw new RunError(`run ${record.id} has no trace`, 'not-found');
            tail = openTraceTail(record.id, file);
            tail.end(record.state);
            this.stored.set(record.id, tail);
        }
        return { tail, live: false };
    }

    /** A stored tail nobody reads any more is closed. */
    release(tail: TraceTail): void {
        if (tail.subscriberCount === 0 && this.stored.get(tail.runId) === tail) {
            this.stored.delete(tail.runId);
            tail.close();
        }
    }

    get liveCount(): number {
        return this.live.size;
    }

    /** Stops every live run (their finished replications are stored) and waits for them, at most `graceMs`, then ends them. */
    async stopAll(graceMs = 3000): Promise<void> {
        this.closing = true;
        const runs = [...this.live.values()];
        for (const run of runs) run.launched.handle.stop();
        const ends = Promise.all(runs.map(r => r.launched.end));
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>(resolve => { timer = setTimeout(() => resolve('late'), graceMs); });
        if (await Promise.race([ends, late]) === 'late') {
            for (const run of runs) run.launched.handle.kill();
            await ends;
        }
        clearTimeout(timer);
        for (const tail of this.stored.values()) tail.close();
        this.stored.clear();
    }
}
