/**
 * `profileModel`: latency and throughput of an ONNX model at each provider, batch size and
 * concurrency asked for, with a per-operator breakdown from ONNX Runtime's own profiler.
 *
 * Timed runs use a session without ONNX Runtime's profiling (it records every node of
 * every run in memory: ~2.6× the latency and unbounded memory on a real model); the time
 * is taken around each `session.run` with `process.hrtime.bigint()` into a preallocated
 * Float64Array, and nothing else happens between two calls. The operator breakdown comes
 * from a separate short run on a separate session with `enableProfiling` on.
 *
 * With concurrency N > 1, N callers share one session: once each calling `session.run`
 * for itself (unbatched), once through a MicroBatcher (maxBatch N) that merges concurrent
 * calls into one run, so the report shows what micro-batching gains. Both rows use the same
 * session, so the same intra-op threads. onnxruntime-node 1.30 runs `session.run` on the JS
 * thread (its binding's run is synchronous, called from a setImmediate), so no row overlaps
 * runs: the gain is fewer, larger runs, and two batches in flight (maxBatch N/2) measured
 * slower than one, not faster.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { readOnnxMetadata } from '../../language-server/src/onnx-metadata.js';
import { MicroBatcher } from '../inference/batcher.js';
import { isProviderName, openSession, PROVIDER_NAMES, type ProviderName } from '../inference/providers.js';
import { findOnPath, GpuSampler, type GpuSample } from './gpu.js';
import { makeFeeds, planInputs, ProfileUsageError, reportShape, type InputPlan } from './inputs.js';
import { findProfileFile, parseOrtProfile, type OpRow } from './op-profile.js';
import { MAX_KEPT_SAMPLES, SampleBuffer, summarizeLatency, type LatencySummary } from './stats.js';

export { ProfileUsageError } from './inputs.js';

/** A failure of the model or the machine (missing or unreadable file, a run that fails): exit status 1. */
export class ProfileError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'ProfileError';
    }
}

export interface ProfileOptions {
    /** Path of the .onnx file. */
    readonly model: string;
    /** Providers to compare, each its own set of runs (default: cpu). */
    readonly providers?: readonly string[];
    /** Batch sizes (default: 1). */
    readonly batches?: readonly number[];
    /** Concurrent callers (default 1). */
    readonly concurrency?: number;
    /** Untimed runs before each timed run, per caller (default 100). */
    readonly warmup?: number;
    /** Timed calls per run, over all callers (default 1000 unless durationSec is given). */
    readonly iterations?: number;
    /** Run each timed run for this long instead of a number of calls, seconds. */
    readonly durationSec?: number;
    /** Intra-op threads of ONNX Runtime (default: its own choice); inter-op is 1. */
    readonly threads?: number;
    /** Sizes of dynamic dimensions other than the batch: a name, or `INPUT[AXIS]`. */
    readonly dims?: Readonly<Record<string, number>>;
    /** Profiled runs for the operator breakdown (default 20; 0: no breakdown). One more, the first, is left out. */
    readonly opRuns?: number;
    /** Keep ONNX Runtime's raw profile here (Chrome trace JSON); deleted otherwise. */
    readonly keepProfile?: string;
    /** nvidia-smi to sample with: a path, null for none, undefined to look it up on PATH. */
    readonly nvidiaSmi?: string | null;
    /** Seed of the random inputs (default 1). */
    readonly seed?: number;
}

export interface ProfileRun {
    /** The provider that ran (after any fallback). */
    readonly provider: ProviderName;
    /** The provider asked for. */
    readonly requestedProvider: string;
    readonly batch: number;
    readonly concurrency: number;
    /** `none`: each caller calls `session.run` itself; `micro`: calls go through the micro-batcher. */
    readonly batching: 'none' | 'micro';
    /** Timed calls, over all callers. */
    readonly iterations: number;
    /** Per call, from the call to its answer (queue wait included when micro-batched). */
    readonly latencyMs: LatencySummary;
    /** Items (calls × batch) answered per second of wall time. */
    readonly throughputPerSec: number;
    /** Micro-batched runs: mean number of calls merged into one `session.run`. */
    readonly mergedCalls?: number;
}

export interface ProfileReport {
    readonly model: string;
    readonly inputs: { readonly name: string; readonly type: string; readonly shape: (number | string)[] }[];
    readonly runs: ProfileRun[];
    readonly ops: OpRow[];
    readonly memory: { readonly rssBeforeMb: number; readonly rssAfterMb: number };
    readonly gpu: GpuSample[] | null;
}

export type ProfileProgress =
    | { readonly kind: 'warning'; readonly message: string }
    | { readonly kind: 'note'; readonly message: string }
    | { readonly kind: 'stage'; readonly message: string }
    | { readonly kind: 'run'; readonly run: ProfileRun };

interface Resolved {
    readonly model: string;
    readonly providers: readonly ProviderName[];
    readonly batches: readonly number[];
    readonly concurrency: number;
    readonly warmup: number;
    readonly iterations: number | undefined;
    readonly durationMs: number | undefined;
    readonly threads: number | undefined;
    readonly opRuns: number;
    readonly seed: number;
}

function wholeAtLeast(value: number | undefined, fallback: number, min: number, what: string): number {
    const v = value ?? fallback;
    if (!Number.isSafeInteger(v) || v < min) throw new ProfileUsageError(`${what} must be a whole number ≥ ${min} (got ${String(value)})`);
    return v;
}

function resolveOptions(options: ProfileOptions): Resolved {
    const providers = options.providers && options.providers.length > 0 ? [...options.providers] : ['cpu'];
    for (const p of providers) {
        if (!isProviderName(p)) throw new ProfileUsageError(`unknown execution provider '${p}' (known: ${PROVIDER_NAMES.join(', ')})`);
    }
    const batches = options.batches && options.batches.length > 0 ? [...options.batches] : [1];
    batches.forEach(b => wholeAtLeast(b, 1, 1, 'a batch size'));
    if (options.iterations !== undefined && options.durationSec !== undefined) {
        throw new ProfileUsageError('give either --iterations or --duration, not both');
    }
    if (options.durationSec !== undefined && !(Number.isFinite(options.durationSec) && options.durationSec > 0)) {
        throw new ProfileUsageError(`the duration must be a positive number of seconds (got ${options.durationSec})`);
    }
    return {
        model: options.model,
        providers: [...new Set(providers)] as ProviderName[],
        batches: [...new Set(batches)],
        concurrency: wholeAtLeast(options.concurrency, 1, 1, 'the concurrency'),
        warmup: wholeAtLeast(options.warmup, 100, 0, 'the number of warm-up runs'),
        iterations: options.durationSec === undefined ? wholeAtLeast(options.iterations, 1000, 1, 'the number of iterations') : undefined,
        durationMs: options.durationSec !== undefined ? options.durationSec * 1000 : undefined,
        threads: options.threads !== undefined ? wholeAtLeast(options.threads, 1, 1, 'the number of threads') : undefined,
        opRuns: wholeAtLeast(options.opRuns, 20, 0, 'the number of profiled runs'),
        seed: options.seed ?? 1
    };
}

/** Reads the model's metadata: a missing or non-ONNX file is a ProfileError naming it. */
function readModel(file: string): ReturnType<typeof readOnnxMetadata> {
    let bytes: Buffer;
    try {
        bytes = fs.readFileSync(file);
    } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') throw new ProfileError(`${file}: model file not found`);
        if (code === 'EISDIR') throw new ProfileError(`${file}: is a folder, not an .onnx file`);
        throw new ProfileError(`${file}: cannot read it (${code ?? String(error)})`);
    }
    try {
        return readOnnxMetadata(bytes);
    } catch (error) {
        throw new ProfileError(`${file}: ${error instanceof Error ? error.message : String(error)}`);
    }
}

function rssMb(): number {
    return process.memoryUsage.rss() / 2 ** 20;
}

type Feeds = Record<string, ort.Tensor>;

/** Warm-up, then `iterations` sequential calls (or until the deadline), each timed on its own. The raw loop, nothing added. */
async function timeSequential(session: ort.InferenceSession, feeds: Feeds, r: Resolved): Promise<Timed> {
    for (let i = 0; i < r.warmup; i++) await session.run(feeds);
    if (r.iterations !== undefined && r.iterations <= MAX_KEPT_SAMPLES) {
        const n = r.iterations;
        const lat = new Float64Array(n);
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < n; i++) {
            const a = process.hrtime.bigint();
            await session.run(feeds);
            lat[i] = Number(process.hrtime.bigint() - a) / 1e3;
        }
        return arrayTimed(lat, process.hrtime.bigint() - t0);
    }
    // A duration, or more iterations than a preallocated array should hold: a bounded buffer.
    const buf = new SampleBuffer(4096);
    const t0 = process.hrtime.bigint();
    const deadline = r.durationMs !== undefined ? t0 + BigInt(Math.round(r.durationMs * 1e6)) : undefined;
    const n = r.iterations ?? Infinity;
    let b = t0;
    do {
        const a = b;
        await session.run(feeds);
        b = process.hrtime.bigint();
        buf.push(Number(b - a) / 1e3);
    } while (deadline !== undefined ? b < deadline : buf.count < n);
    return { count: buf.count, latencyMs: buf.summarize(), wallNs: b - t0 };
}

/** What a timed run measured: calls, their latency summary, and the wall time of the whole run. */
interface Timed {
    readonly count: number;
    readonly latencyMs: LatencySummary;
    readonly wallNs: bigint;
}

function arrayTimed(samples: Float64Array, wallNs: bigint): Timed {
    return { count: samples.length, latencyMs: summarizeLatency(samples), wallNs };
}

/**
 * N concurrent callers, each with its own inputs, share `call`; they take call numbers
 * from one counter until `iterations` (or the deadline), each call timed on its own.
 * `call` is awaited as it is (no wrapper, so both rows pay the same per-call cost);
 * `timedStart` runs once, after the warm-up, just before the clock starts.
 */
async function timeConcurrent(
    call: (feeds: Feeds) => Promise<unknown>, callerFeeds: readonly Feeds[], r: Resolved, timedStart: () => void = () => undefined
): Promise<Timed> {
    const warm = r.warmup * callerFeeds.length;
    let w = 0;
    await Promise.all(callerFeeds.map(async feeds => { while (w++ < warm) await call(feeds); }));
    timedStart();
    if (r.iterations !== undefined && r.iterations <= MAX_KEPT_SAMPLES) {
        const n = r.iterations;
        const lat = new Float64Array(n);
        let next = 0;
        const t0 = process.hrtime.bigint();
        await Promise.all(callerFeeds.map(async feeds => {
            for (let i = next++; i < n; i = next++) {
                const a = process.hrtime.bigint();
                await call(feeds);
                lat[i] = Number(process.hrtime.bigint() - a) / 1e3;
            }
        }));
        return arrayTimed(lat, process.hrtime.bigint() - t0);
    }
    // A duration, or more iterations than a preallocated array should hold: a bounded buffer.
    const buf = new SampleBuffer(4096);
    const t0 = process.hrtime.bigint();
    const deadline = r.durationMs !== undefined ? t0 + BigInt(Math.round(r.durationMs * 1e6)) : undefined;
    const n = r.iterations ?? Infinity;
    let started = 0;
    let end = t0;
    await Promise.all(callerFeeds.map(async feeds => {
        for (;;) {
            const a = process.hrtime.bigint();
            // Every caller makes its first call, however short the duration: a run always has samples.
            if (deadline !== undefined ? a >= deadline && started >= callerFeeds.length : started >= n) break;
            started++;
            await call(feeds);
            const b = process.hrtime.bigint();
            buf.push(Number(b - a) / 1e3);
            if (b > end) end = b;
        }
    }));
    return { count: buf.count, latencyMs: buf.summarize(), wallNs: end - t0 };
}

function oneLine(error: unknown): string {
    const text = error instanceof Error ? error.message : String(error);
    return text.split(/\r?\n/).map(s => s.trim()).filter(s => s.length > 0).join(' ').slice(0, 400);
}

/**
 * Compares what N calls answered through a micro-batcher with what each answers alone:
 * `maxDiff` is the largest absolute difference over every output element (0: identical;
 * undefined when an output is not numeric), `largestBatch` the most calls that ran together.
 */
export async function compareBatched(
    session: ort.InferenceSession, callerFeeds: readonly Feeds[]
): Promise<{ maxDiff: number | undefined; largestBatch: number }> {
    const batcher = new MicroBatcher(session, { maxBatch: callerFeeds.length, maxWaitMs: 0 });
    const batched = await Promise.all(callerFeeds.map(feeds => batcher.run(feeds)));
    const largestBatch = Math.max(...batched.map(b => b.batchSize));
    return { maxDiff: await maxDifference(session, callerFeeds, batched.map(b => b.outputs)), largestBatch };
}

async function maxDifference(
    session: ort.InferenceSession, callerFeeds: readonly Feeds[], batched: readonly Record<string, ort.Tensor>[]
): Promise<number | undefined> {
    const alone = [];
    for (const feeds of callerFeeds) alone.push(await session.run(feeds));
    let worst = 0;
    for (let c = 0; c < callerFeeds.length; c++) {
        for (const name of session.outputNames) {
            const a = alone[c][name].data;
            const b = batched[c][name].data;
            if (a.length !== b.length) return Infinity;
            for (let i = 0; i < a.length; i++) {
                const x = a[i];
                const y = b[i];
                if (typeof x === 'string' || typeof y === 'string') return undefined;
                const d = Math.abs(Number(x) - Number(y));
                if (!(d <= worst)) worst = Number.isNaN(d) ? (Number.isNaN(Number(x)) && Number.isNaN(Number(y)) ? worst : Infinity) : d;
            }
        }
    }
    return worst;
}

/** Profiles `options.model`; progress (warnings, notes, each finished run) goes to `onProgress`. */
export async function profileModel(options: ProfileOptions, onProgress: (p: ProfileProgress) => void = () => undefined): Promise<ProfileReport> {
    const r = resolveOptions(options);
    const metadata = readModel(r.model);
    const dims = new Map<string, number>();
    for (const [key, size] of Object.entries(options.dims ?? {})) {
        if (!Number.isSafeInteger(size) || size < 1) throw new ProfileUsageError(`--dim ${key}=${size}: the size must be a whole number ≥ 1`);
        dims.set(key, size);
    }
    if (options.keepProfile !== undefined && r.opRuns > 0) checkKeepPath(options.keepProfile);
    const plan: InputPlan = planInputs(metadata.inputs, dims);
    for (const note of plan.notes) onProgress({ kind: 'note', message: note });
    if (!plan.batched && r.batches.some(b => b !== 1)) {
        throw new ProfileUsageError(`${r.model}: no input has a dynamic dimension to batch on, so only --batch 1 applies`);
    }
    const smi = options.nvidiaSmi === undefined ? findOnPath('nvidia-smi') : options.nvidiaSmi ?? undefined;
    if (smi === undefined && options.nvidiaSmi === undefined) onProgress({ kind: 'note', message: 'nvidia-smi not found: no GPU utilisation or memory samples' });
    let gpu: GpuSample[] | null = smi !== undefined ? [] : null;
    let gpuFailed = false;

    const rssBeforeMb = rssMb();
    const runs: ProfileRun[] = [];
    const ranOn: { requested: ProviderName; provider: ProviderName }[] = [];
    for (const requested of r.providers) {
        onProgress({ kind: 'stage', message: `opening ${path.basename(r.model)} on ${requested}` });
        const opened = await open(r, requested, false, undefined, onProgress);
        ranOn.push({ requested, provider: opened.provider });
        const session = opened.session;
        try {
            for (const batch of r.batches) {
                const modes: ('none' | 'micro')[] = r.concurrency > 1 ? ['none', 'micro'] : ['none'];
                const callerFeeds = Array.from({ length: r.concurrency }, (_, c) => makeFeeds(plan, batch, r.seed + c));
                let batcher: MicroBatcher | undefined;
                if (r.concurrency > 1) {
                    batcher = new MicroBatcher(session, { maxBatch: r.concurrency, maxWaitMs: 0 });
                    if (!batcher.batching) {
                        modes.pop();
                        onProgress({ kind: 'note', message: `micro-batching not measured: not every input and output of the model has a dynamic first dimension` });
                    }
                }
                for (const batching of modes) {
                    onProgress({ kind: 'stage', message: `${opened.provider} batch ${batch} concurrency ${r.concurrency}${batching === 'micro' ? ' micro-batched' : ''}` });
                    if (batching === 'micro') {
                        const diff = (await runOrFail(() => compareBatched(session, callerFeeds), r.model)).maxDiff;
                        if (diff !== undefined && diff > 0) {
                            onProgress({ kind: 'warning', message: `micro-batched outputs differ from unbatched ones by up to ${diff.toExponential(2)}` });
                        }
                    }
                    const sampler = smi !== undefined && !gpuFailed ? new GpuSampler(smi, runs.length) : undefined;
                    // The batcher's session.run calls during the timed part (warm-up left out).
                    let runsBefore = 0;
                    let timed: Timed;
                    try {
                        timed = await runOrFail(() => {
                            if (r.concurrency === 1) return timeSequential(session, callerFeeds[0], r);
                            if (batching === 'none') return timeConcurrent(feeds => session.run(feeds), callerFeeds, r);
                            const b = batcher!;
                            return timeConcurrent(feeds => b.run(feeds), callerFeeds, r, () => { runsBefore = b.runs; });
                        }, r.model);
                    } catch (error) {
                        // A run that fails (out of GPU memory at a large batch) must not leave nvidia-smi running: it kept the process alive.
                        await sampler?.stop(0);
                        throw error;
                    }
                    const sessionRuns = batching === 'micro' ? batcher!.runs - runsBefore : 0;
                    if (sampler) {
                        const got = await sampler.stop();
                        if (got.failure !== undefined) {
                            gpuFailed = true;
                            onProgress({ kind: 'note', message: `nvidia-smi failed (${got.failure}): no GPU samples` });
                        }
                        gpu?.push(...got.samples);
                    }
                    const count = timed.count;
                    const run: ProfileRun = {
                        provider: opened.provider,
                        requestedProvider: requested,
                        batch,
                        concurrency: r.concurrency,
                        batching,
                        iterations: count,
                        latencyMs: timed.latencyMs,
                        throughputPerSec: (count * batch) / (Number(timed.wallNs) / 1e9),
                        ...(sessionRuns > 0 ? { mergedCalls: count / sessionRuns } : {})
                    };
                    runs.push(run);
                    onProgress({ kind: 'run', run });
                }
            }
        } finally {
            await session.release();
        }
    }
    const rssAfterMb = rssMb();
    if (gpu !== null && gpu.length === 0) gpu = null;

    const ops: OpRow[] = [];
    if (r.opRuns > 0) {
        // One breakdown per provider that actually ran (two requests falling back to the CPU profile it once).
        const distinct = ranOn.filter((x, i) => ranOn.findIndex(y => y.provider === x.provider) === i);
        for (const [i, { requested, provider }] of distinct.entries()) {
            onProgress({ kind: 'stage', message: `operator breakdown on ${provider}` });
            const keep = options.keepProfile === undefined ? undefined
                : i === 0 ? options.keepProfile : keepName(options.keepProfile, provider);
            ops.push(...await operatorBreakdown(r, requested, plan, keep, onProgress));
        }
    }
    return {
        model: r.model,
        inputs: plan.inputs.map(i => ({ name: i.name, type: i.type, shape: reportShape(i) })),
        runs,
        ops,
        memory: { rssBeforeMb, rssAfterMb },
        gpu
    };
}

/** `--out` is checked before any run: a folder there was found only when the raw profile was copied, after every timed run, and the whole report was lost. */
function checkKeepPath(file: string): void {
    let stat: fs.Stats | undefined;
    try {
        stat = fs.statSync(file);
    } catch {
        stat = undefined;
    }
    if (stat?.isDirectory()) throw new ProfileUsageError(`--out ${file}: is a folder; give a file name, e.g. ${path.join(file, 'profile.json')}`);
    let dir = path.dirname(path.resolve(file));
    // The nearest folder that exists must be one (a file in the way of the path cannot become a folder).
    for (;;) {
        let parent: fs.Stats | undefined;
        try {
            parent = fs.statSync(dir);
        } catch {
            parent = undefined;
        }
        if (parent !== undefined) {
            if (!parent.isDirectory()) throw new ProfileUsageError(`--out ${file}: ${dir} is a file, not a folder`);
            return;
        }
        const up = path.dirname(dir);
        if (up === dir) return;
        dir = up;
    }
}

function keepName(file: string, provider: string): string {
    const ext = path.extname(file);
    return `${file.slice(0, file.length - ext.length)}.${provider}${ext || '.json'}`;
}

async function open(r: Resolved, provider: ProviderName, profiling: boolean, prefix: string | undefined, onProgress: (p: ProfileProgress) => void) {
    try {
        return await openSession(r.model, {
            providers: [provider],
            ...(r.threads !== undefined ? { intraOpThreads: r.threads } : {}),
            interOpThreads: 1,
            ...(profiling ? { enableProfiling: true, profileFilePrefix: prefix } : {}),
            onWarning: line => onProgress({ kind: 'warning', message: line })
        });
    } catch (error) {
        throw new ProfileError(oneLine(error));
    }
}

async function runOrFail<T>(f: () => Promise<T>, model: string): Promise<T> {
    try {
        return await f();
    } catch (error) {
        if (error instanceof ProfileError || error instanceof ProfileUsageError) throw error;
        throw new ProfileError(`${model}: a run failed: ${oneLine(error)}`);
    }
}

/** A short run with ONNX Runtime's profiler on, at the first batch size; the raw profile is deleted unless `keep` names where to keep it. */
async function operatorBreakdown(
    r: Resolved, provider: ProviderName, plan: InputPlan, keep: string | undefined, onProgress: (p: ProfileProgress) => void
): Promise<OpRow[]> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-ort-profile-'));
    try {
        const prefix = path.join(dir, 'profile');
        // Warnings were said when the timed session opened.
        const opened = await open(r, provider, true, prefix, () => undefined);
        const feeds = makeFeeds(plan, r.batches[0], r.seed);
        try {
            await runOrFail(async () => {
                for (let i = 0; i < r.opRuns + 1; i++) await opened.session.run(feeds);
            }, r.model);
            opened.session.endProfiling();
        } finally {
            await opened.session.release();
        }
        const file = findProfileFile(prefix);
        if (!file) {
            onProgress({ kind: 'warning', message: 'ONNX Runtime wrote no profile: no operator breakdown' });
            return [];
        }
        const parsed = parseOrtProfile(JSON.parse(fs.readFileSync(file, 'utf8')), 1);
        if (keep !== undefined) {
            fs.mkdirSync(path.dirname(path.resolve(keep)), { recursive: true });
            fs.copyFileSync(file, keep);
            onProgress({ kind: 'note', message: `ONNX Runtime profile of ${opened.provider} kept in ${keep}` });
        }
        return parsed.ops;
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}
