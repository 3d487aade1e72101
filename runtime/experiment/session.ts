/**
 * A run from a twin file to stored results, shared by `aimatrix run` and the runtime server:
 * check the model and build the plan ({@link prepareRun}), then create the stored run, write
 * the trace header, run the replications on worker threads and store the results
 * ({@link launchRun}). What is printed, and how a user stops a run, belong to the callers.
 *
 * The trace of the first replication of the first point (binary, runtime/trace/binary.ts)
 * goes either to a hidden part file renamed to `trace.aimtrace` when the run ends (`aimatrix
 * run`: no trace file unless the run ended), or straight to `trace.aimtrace` (the server:
 * tailed live by subscribers, and kept up to its last complete block if the process is killed).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NodeFileSystem } from 'langium/node';
import { checkPaths, createAiMatrixServices, type AiMatrixLanguages, type CheckResult } from '../../language-server/src/index.js';
import * as ast from '../../language-server/generated/ast.js';
import type { InferenceUse, RunReport } from '../../protocol/index.js';
import { buildPlan, PlanError, selectTarget, type ExperimentPlan, type PlanOptions } from './plan.js';
import { runExperiment, ModelLoadError, type Progress, type RunHandle, type RunnerResult } from './runner.js';
import { summarize, type Summary } from './stats.js';
import type { FailureInfo, JobOutcome, KpiUnit } from './messages.js';
import type { TwinSource } from './load-model.js';
import { RunStore, type RunRecord } from '../store/run-store.js';
import { TRACE_FORMAT } from '../trace/jsonl.js';
import { writeBinaryTraceHeader } from '../trace/read.js';

/** A stored run's trace, in its folder; and the hidden file it is written to until `aimatrix run` ends. */
export const TRACE_FILE = 'trace.aimtrace';
export const TRACE_PART_FILE = '.trace.aimtrace.part';

export interface RunRequest extends PlanOptions {
    readonly experiment?: string;
}

export type Prepared =
    | { readonly kind: 'ready'; readonly plan: ExperimentPlan; readonly absolute: string; readonly files: readonly string[] }
    /** The model has errors: nothing is run. */
    | { readonly kind: 'errors'; readonly check: CheckResult }
    /** Not a twin file, an unknown experiment, a bad override: nothing is run. */
    | { readonly kind: 'usage'; readonly message: string };

/** Checks the model like `aimatrix check` and builds the plan. `file` is relative to `cwd` or absolute. */
export async function prepareRun(file: string, request: RunRequest, cwd: string, services?: AiMatrixLanguages): Promise<Prepared> {
    const check = await checkPaths([file], { cwd, services });
    if (check.errors > 0) return { kind: 'errors', check };
    const absolute = path.resolve(cwd, file);
    const document = check.documents.find(d => path.resolve(d.uri.fsPath) === absolute);
    const root = document?.parseResult.value;
    if (!ast.isTwinFile(root)) return { kind: 'usage', message: `${file}: not a twin file (aimatrix run takes a .twin file)` };
    try {
        const plan = buildPlan(selectTarget(root, file, request.experiment), request);
        return { kind: 'ready', plan, absolute, files: check.documents.map(d => relativeTo(cwd, d.uri.fsPath)) };
    } catch (error) {
        if (error instanceof PlanError) return { kind: 'usage', message: error.message };
        throw error;
    }
}

/**
 * Prepares the runs of a long-lived process (the runtime server) with one set of language
 * services. Made per run, they were most of what the server allocated for a run (tens of MB,
 * collected late: the server's heap doubled over runs back to back). Each run's documents are
 * dropped from the workspace once its plan is built, so the next run reads its files afresh;
 * runs are prepared one at a time, since they share the workspace.
 */
export class RunPreparer {
    private services: AiMatrixLanguages | undefined;
    private turn: Promise<unknown> = Promise.resolve();

    prepare(file: string, request: RunRequest, cwd: string): Promise<Prepared> {
        const next = this.turn.then(async () => {
            const services = this.services ??= createAiMatrixServices(NodeFileSystem);
            const workspace = services.shared.workspace;
            const before = new Set(workspace.LangiumDocuments.all.map(d => d.uri.toString()));
            try {
                return await prepareRun(file, request, cwd, services);
            } finally {
                for (const document of workspace.LangiumDocuments.all.toArray()) {
                    if (before.has(document.uri.toString())) continue;
                    workspace.LangiumDocuments.deleteDocument(document.uri);
                    workspace.IndexManager.remove(document.uri);
                }
            }
        });
        this.turn = next.catch(() => undefined);
        return next;
    }
}

export interface LaunchOptions {
    readonly cwd: string;
    readonly workerEntry: string;
    readonly workers?: number;
    /** none: no trace; part: hidden file renamed to trace.aimtrace at the end; live: straight to trace.aimtrace. */
    readonly trace: 'none' | 'part' | 'live';
    /** Recorded in run.json as the options it was run with. */
    readonly options: Readonly<Record<string, unknown>>;
    readonly onProgress?: (progress: Progress) => void;
    /** A warning from the workers (a model's provider fell back), each once. */
    readonly onWarning?: (message: string) => void;
}

export type RunEnd =
    /** The model could not be loaded in a worker, or the runner failed: recorded as failed, no results. */
    | { readonly kind: 'failed'; readonly record: RunRecord; readonly message: string; readonly loadError: boolean }
    | {
        readonly kind: 'ended';
        readonly record: RunRecord;
        readonly report: RunReport;
        readonly result: RunnerResult;
        readonly finished: number;
        readonly total: number;
        /** The stored trace, when one was recorded. */
        readonly traceFile?: string;
    };

export interface LaunchedRun {
    readonly record: RunRecord;
    readonly handle: RunHandle;
    /** The file the trace is being written to while the run goes on. */
    readonly liveTraceFile?: string;
    readonly end: Promise<RunEnd>;
    /** The KPIs of each point over the replications finished so far (what `run.progress` shows while the run goes on). */
    pointsSoFar(): RunReport['points'];
}

/** Creates the stored run (state running), writes the trace header and starts the replications. */
export function launchRun(prepared: Extract<Prepared, { kind: 'ready' }>, options: LaunchOptions): LaunchedRun {
    const { plan, absolute, files } = prepared;
    const store = new RunStore(options.cwd);
    const record = store.create({
        file: relativeTo(options.cwd, absolute), files, twin: plan.twin, experiment: plan.experiment ?? null,
        params: plan.params,
        plan: {
            points: plan.points, replications: plan.replications, seed: plan.seed,
            horizon: plan.horizon === Infinity ? null : plan.horizon, horizonShown: plan.horizonShown,
            warmup: plan.warmup, report: plan.report ?? null
        },
        options: { ...options.options },
        trace: options.trace !== 'none'
    });
    const wallOrigin = Math.round((performance.timeOrigin + performance.now()) * 1000);
    const stored = store.file(record.id, TRACE_FILE);
    const traceFile = options.trace === 'none' ? undefined
        : options.trace === 'live' ? stored : path.join(store.folder(record.id), TRACE_PART_FILE);
    const source: TwinSource = { file: absolute, experiment: plan.experiment, cwd: options.cwd };
    // The run is stored as running from here: a failure to start it (the trace header cannot be
    // written, a worker cannot be made) ends it as failed, or it would stay running for good.
    let handle: RunHandle;
    try {
        if (traceFile) {
            writeBinaryTraceHeader(traceFile, {
                kind: 'header', format: TRACE_FORMAT, runId: record.id, twin: plan.twin,
                experiment: plan.experiment ?? null, files, point: 0, replication: 0, set: plan.points[0].set,
                seed: plan.seed, clocks: { sim: 's', wall: 'us' }, wallOrigin
            });
        }
        handle = runExperiment({
            workerEntry: options.workerEntry, source, plan, workers: options.workers, wallOrigin,
            trace: traceFile ? { file: traceFile, point: 0, replication: 0 } : undefined,
            onProgress: options.onProgress,
            onWarning: options.onWarning
        });
    } catch (error) {
        const message = `the run could not start: ${error instanceof Error ? error.message : String(error)}`;
        if (traceFile) fs.rmSync(traceFile, { force: true });
        store.update(record, { state: 'failed', endedAt: new Date().toISOString(), reason: message });
        throw new Error(message);
    }
    const end = handle.result.then(
        (result): RunEnd => {
            const report = buildReport(record.id, plan, result);
            const total = plan.points.length * plan.replications;
            const finished = result.outcomes.flat().filter(o => o?.status === 'completed').length;
            store.writeResults(record.id, {
                ...report,
                perReplication: result.outcomes.map((point, p) => ({
                    set: plan.points[p].set,
                    replications: point.map((o, r) => o === undefined ? { replication: r, status: 'not run' } : { replication: r, ...o })
                }))
            });
            if (traceFile && traceFile !== stored) fs.renameSync(traceFile, stored);
            const reason = result.state === 'stopped' ? `stopped by the user: ${finished} of ${total} replications finished`
                : result.state === 'failed' ? `${report.errors.length} of ${total} replications failed` : undefined;
            const updated = store.update(record, {
                state: result.state, endedAt: new Date().toISOString(),
                progress: { finished, total, failed: report.errors.length }, ...(reason ? { reason } : {})
            });
            return { kind: 'ended', record: updated, report, result, finished, total, traceFile: traceFile ? stored : undefined };
        },
        (error: unknown): RunEnd => {
            const loadError = error instanceof ModelLoadError;
            const message = loadError ? error.message : `internal error: ${error instanceof Error ? error.message : String(error)}`;
            const updated = store.update(record, { state: 'failed', endedAt: new Date().toISOString(), reason: message });
            if (traceFile && traceFile !== stored) fs.rmSync(traceFile, { force: true });
            return { kind: 'failed', record: updated, message, loadError };
        }
    );
    const pointsSoFar = (): RunReport['points'] => {
        const { kpis, outcomes } = handle.soFar();
        return summarizePoints(plan, kpis, outcomes);
    };
    return { record, handle, liveTraceFile: traceFile, end, pointsSoFar };
}

export function buildReport(runId: string, plan: ExperimentPlan, result: RunnerResult): RunReport {
    const errors: Array<{ point: number; replication: number } & FailureInfo> = [];
    result.outcomes.forEach((outcomes, p) => outcomes.forEach((o, r) => { if (o?.status === 'failed') errors.push({ point: p, replication: r, ...o.error }); }));
    return {
        runId, state: result.state, twin: plan.twin, experiment: plan.experiment ?? null, seed: plan.seed,
        replications: plan.replications, horizon: plan.horizonShown, points: summarizePoints(plan, result.kpis, result.outcomes),
        events: result.events, wallMs: Math.round(result.wallMs), errors, ...inferenceUse(result.outcomes)
    };
}

/** The models the replications called, summed over the completed ones (in the order the host loaded them). */
function inferenceUse(outcomes: RunnerResult['outcomes']): { inference?: InferenceUse[] } {
    const byModel = new Map<string, InferenceUse>();
    for (const o of outcomes.flat()) {
        if (o?.status !== 'completed' || !o.inference) continue;
        for (const u of o.inference) {
            const sum = byModel.get(u.model);
            byModel.set(u.model, sum === undefined ? { ...u } : {
                ...sum, calls: sum.calls + u.calls, runs: sum.runs + u.runs, cacheHits: sum.cacheHits + u.cacheHits, cacheMisses: sum.cacheMisses + u.cacheMisses
            });
        }
    }
    return byModel.size > 0 ? { inference: [...byModel.values()] } : {};
}

/** Each point's KPI statistics over its completed replications; the experiment's `report` chooses the KPIs and their order. */
export function summarizePoints(plan: ExperimentPlan, kpis: readonly KpiUnit[], outcomes: ReadonlyArray<ReadonlyArray<JobOutcome | undefined>>): RunReport['points'] {
    const wanted: KpiUnit[] = plan.report ? plan.report.flatMap(name => kpis.filter(k => k.name === name)) : [...kpis];
    return plan.points.map((point, p) => {
        const summaries: Record<string, { unit: string | null } & Summary> = {};
        for (const kpi of wanted) {
            const values = outcomes[p].flatMap(o => o?.status === 'completed' ? [o.kpis[kpi.name]] : []);
            summaries[kpi.name] = { unit: kpi.unit ?? null, ...summarize(values) };
        }
        return { set: point.set, kpis: summaries };
    });
}

/** A path relative to the workspace when it is inside it, else as given. */
export function relativeTo(cwd: string, file: string): string {
    const rel = path.relative(cwd, file);
    return rel === '' ? '.' : rel.startsWith('..') ? file : rel;
}
