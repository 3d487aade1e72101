/**
 * The messages between the experiment runner (main thread) and its workers: declared once,
 * imported by both ends. A worker loads and compiles the model itself, then runs the jobs
 * (one replication of one point) it is handed, one at a time.
 */
import type { InferenceUse, SourceLocation } from '../../protocol/index.js';
import type { Constant } from '../engine/api.js';

/** What a worker is handed at the start of a run. */
export interface WorkerInit {
    /** What the worker's loader turns into a compiled model (for the CLI: the file and the experiment). */
    readonly source: unknown;
    /** One Int32: non-zero asks the running replication to stop (read through Atomics, since a busy worker reads no message). */
    readonly stop: SharedArrayBuffer;
    /**
     * One Int32: non-zero asks the running replication to pause at its next progress check
     * (it flushes its trace, then waits with Atomics.wait in short slices, still honouring
     * `stop`). Absent: the run cannot be paused.
     */
    readonly pause?: SharedArrayBuffer;
    /** Wall clock origin of the run, microseconds since the epoch: trace wall times count from it. */
    readonly wallOrigin: number;
    /** The file the traced job appends its trace blocks to, if any job is traced. */
    readonly traceFile?: string;
}

export interface Job {
    readonly point: number;
    readonly replication: number;
    readonly seed: number;
    readonly horizon: number;
    readonly warmup: number;
    readonly overrides: Readonly<Record<string, Constant>>;
    /** Record this job's trace into WorkerInit.traceFile. */
    readonly trace: boolean;
}

export type ToWorker =
    /** A run starts on this worker: `run` numbers it (what the worker posts for it carries the number). */
    | { readonly type: 'init'; readonly run: number; readonly init: WorkerInit }
    | { readonly type: 'job'; readonly job: Job }
    /** The run is over: the worker drops its model and waits for the next `init`. */
    | { readonly type: 'end' };

export interface KpiUnit {
    readonly name: string;
    readonly unit: string | undefined;
}

/** Where and when a replication failed, as the worker saw it. */
export interface FailureInfo {
    readonly message: string;
    readonly loc?: SourceLocation;
    readonly simTime?: number;
    readonly subject?: string;
    /** One line: `bank.twin:11:5: at t=42.1 s (Customer#17): negative delay -0.3 s`. */
    readonly text: string;
}

export type JobOutcome =
    | {
        readonly status: 'completed' | 'stopped';
        readonly kpis: Readonly<Record<string, number>>;
        readonly events: number;
        readonly simTime: number;
        readonly entities: number;
        /** The models this replication called (absent when none). */
        readonly inference?: readonly InferenceUse[];
    }
    | { readonly status: 'failed'; readonly error: FailureInfo; readonly events: number };

/** What a worker posts, less the run's number. */
export type FromWorkerBody =
    | { readonly type: 'ready'; readonly twin: string; readonly kpis: readonly KpiUnit[] }
    | { readonly type: 'load-failed'; readonly message: string }
    /** Something the user should know that does not stop the run (a model's provider fell back). */
    | { readonly type: 'warning'; readonly message: string }
    | {
        readonly type: 'progress'; readonly events: number; readonly simTime: number;
        /** true: posted as the replication parks on a pause request (events then stay put until resumed). */
        readonly paused?: boolean;
    }
    | { readonly type: 'done'; readonly point: number; readonly replication: number; readonly outcome: JobOutcome };

/**
 * What a worker posts, with the number of the run it is for: a worker kept for the next run may
 * still have posted something for the last one, which that run's runner no longer hears.
 */
export type FromWorker = FromWorkerBody & { readonly run: number };
