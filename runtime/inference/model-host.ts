/**
 * The engine's ModelHost on onnxruntime-node: each declared model is opened once (on the
 * first provider of its preference list that this machine has), its declared inputs and
 * outputs are checked against the session's metadata, and every `infer` becomes a tensor
 * call through a MicroBatcher and a response cache whose clock is simulated time (so hit
 * counts do not depend on the machine).
 */
import * as ort from 'onnxruntime-node';
import type { InferCall, InferResult, ModelDecl, ModelHost, TensorDecl } from '../engine/api.js';
import type { InferenceUse, TraceSink } from '../../protocol/index.js';
import { MicroBatcher } from './batcher.js';
import { ResponseCache, inputKey } from './cache.js';
import { openSession, type ProviderName } from './providers.js';

export interface ModelHostOptions {
    /** One line per provider fallback (`model 'M': provider 'cuda' is not available here; using 'cpu'`). */
    readonly onWarning?: (line: string) => void;
    /** ONNX Runtime threads per session (default 1: experiment workers already run in parallel). */
    readonly intraOpThreads?: number;
}

export interface ModelStats extends InferenceUse {
    readonly provider: ProviderName;
}


export interface OnnxModelHost extends ModelHost {
    /** What each model runs on, and how it was used since the host was made. */
    stats(): ModelStats[];
    /** Releases the sessions. */
    dispose(): Promise<void>;
}

type Outputs = Record<string, number | number[]>;

interface LoadedModel {
    readonly decl: ModelDecl;
    readonly session: ort.InferenceSession;
    readonly provider: ProviderName;
    /** The fallback line, when the first provider asked for was not used. */
    readonly fallback: string | undefined;
    readonly inputs: readonly InputPlan[];
    readonly outputs: readonly string[];
    readonly batcher: MicroBatcher;
    readonly cache: ResponseCache<Promise<Outputs>>;
    calls: number;
}

interface InputPlan {
    readonly name: string;
    readonly type: ort.Tensor.Type;
    /** The call's shape: symbolic dimensions become 1, except one that the element count fixes (-1). */
    readonly shape: readonly number[];
}

/** Opens every model and checks its declaration; one line naming the agents that call it, the model and the tensor when something does not fit. */
export async function createModelHost(models: readonly ModelDecl[], opts: ModelHostOptions = {}): Promise<OnnxModelHost> {
    let simTime = 0;
    const loaded: LoadedModel[] = [];
    try {
        for (const decl of models) loaded.push(await load(decl, opts, () => simTime));
    } catch (error) {
        await Promise.all(loaded.map(m => m.session.release()));
        throw error;
    }

    return {
        infer(model: number, inputs: Readonly<Record<string, unknown>>, call: InferCall): Promise<InferResult> {
            const m = loaded[model];
            if (m === undefined) return Promise.reject(new Error(`no model #${model} in this host`));
            simTime = call.simTime;
            m.calls++;
            const feeds = buildFeeds(m, inputs);
            if (!m.cache.enabled) return runModel(m, feeds);
            const key = inputKey(m.decl.name, feeds);
            const cached = m.cache.get(key);
            if (cached !== undefined) {
                return cached.then(outputs => ({ outputs, info: { provider: m.provider, batch: 0, queueWaitUs: 0, runUs: 0, cacheHit: true } }));
            }
            const result = runModel(m, feeds);
            // The cache holds the answer as soon as it is asked for: an identical call at the same instant is a hit too.
            const outputs = result.then(r => r.outputs);
            outputs.catch(() => m.cache.delete(key, outputs));
            m.cache.set(key, outputs);
            return result;
        },
        flush(): void {
            for (const m of loaded) m.batcher.flush();
        },
        beginReplication(run: { readonly trace: TraceSink | undefined; readonly wall: () => number }): void {
            simTime = 0;
            // Calls a replication that ended early left queued must not run in this one's batches.
            for (const m of loaded) m.batcher.cancel(new Error(`model '${m.decl.name}': the replication that made this call ended before it ran`));
            for (const m of loaded) m.cache.clear();
            if (run.trace?.enabled) {
                for (const m of loaded) {
                    run.trace.record({
                        kind: 'instant', name: 'model loaded', t: 0, wall: run.wall(), subject: m.decl.name, loc: m.decl.loc,
                        attrs: {
                            model: m.decl.name, provider: m.provider, requested: m.decl.providers.join(', ') || 'cpu',
                            batching: m.batcher.batching, ...(m.fallback ? { fallback: m.fallback } : {})
                        }
                    });
                }
            }
        },
        stats(): ModelStats[] {
            return loaded.map(m => ({ model: m.decl.name, provider: m.provider, calls: m.calls, runs: m.batcher.runs, cacheHits: m.cache.hits, cacheMisses: m.cache.misses }));
        },
        async dispose(): Promise<void> {
            for (const m of loaded) m.batcher.cancel(new Error(`model '${m.decl.name}': the model host was closed before this call ran`));
            await Promise.all(loaded.map(m => m.session.release()));
        }
    };
}

async function load(decl: ModelDecl, opts: ModelHostOptions, now: () => number): Promise<LoadedModel> {
    const who = describeModel(decl);
    let fallback: string | undefined;
    let opened;
    try {
        opened = await openSession(decl.file, {
            providers: decl.providers,
            intraOpThreads: opts.intraOpThreads ?? 1,
            interOpThreads: 1,
            onWarning: line => { fallback = line; }
        });
    } catch (error) {
        throw new Error(`${who}: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (fallback) opts.onWarning?.(`model '${decl.name}': ${fallback}`);
    const { session, provider } = opened;
    try {
        const inputs = checkTensors(decl, 'input', session.inputMetadata, who);
        checkTensors(decl, 'output', session.outputMetadata, who);
        // Agents get numbers: a string output would read NaN. Declared, it is an error; undeclared, it is left out.
        const stringOutputs = new Set(session.outputMetadata.filter(o => o.isTensor && o.type === 'string').map(o => o.name));
        const declaredString = decl.outputs.find(t => stringOutputs.has(t.name));
        if (declaredString) throw new Error(`${who}: output '${declaredString.name}' has element type string, which an agent cannot use (it gets numbers)`);
        const outputs = decl.outputs.length > 0 ? decl.outputs.map(t => t.name) : session.outputNames.filter(n => !stringOutputs.has(n));
        return {
            decl, session, provider, fallback, inputs, outputs,
            // The engine says when every call of an instant is in (flush): no wall-clock window, so batches are the same on every run.
            batcher: new MicroBatcher(session, { maxBatch: decl.batch, maxWaitMs: Infinity }),
            cache: new ResponseCache<Promise<Outputs>>({ size: decl.cacheSize, ttl: decl.cacheTtl, now }),
            calls: 0
        };
    } catch (error) {
        await session.release();
        throw error;
    }
}

/** `replenishment.agent:12:3: model 'DemandForecast' (called by Replenisher)`. */
function describeModel(decl: ModelDecl): string {
    const callers = decl.callers.length > 0 ? ` (called by ${decl.callers.join(', ')})` : '';
    return `${decl.loc.file}:${decl.loc.line}:${decl.loc.column}: model '${decl.name}'${callers}`;
}

const TENSOR_TYPES: ReadonlySet<string> = new Set([
    'float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'bool', 'string'
]);

/**
 * Declared tensors against the session's: every declared name exists with the declared
 * element type and a compatible shape (same rank; fixed sizes equal where both are fixed),
 * and every input of the file is declared. Returns how each input is built.
 */
function checkTensors(decl: ModelDecl, kind: 'input' | 'output', metadata: readonly ort.InferenceSession.ValueMetadata[], who: string): InputPlan[] {
    const declared: readonly TensorDecl[] = kind === 'input' ? decl.inputs : decl.outputs;
    const byName = new Map(metadata.map(m => [m.name, m]));
    const list = metadata.map(m => m.name).join(', ');
    const plans: InputPlan[] = [];
    for (const t of declared) {
        const m = byName.get(t.name);
        if (m === undefined) throw new Error(`${who}: ${kind} '${t.name}' is not in ${decl.file} (its ${kind}s: ${list || 'none'})`);
        if (!m.isTensor) throw new Error(`${who}: ${kind} '${t.name}' of the ONNX file is not a tensor`);
        if (m.type !== t.type) throw new Error(`${who}: ${kind} '${t.name}' is declared ${t.type} but the ONNX file has ${m.type}`);
        if (t.shape.length > 0 && m.shape.length > 0) {
            const fits = t.shape.length === m.shape.length && t.shape.every((d, i) => typeof d !== 'number' || typeof m.shape[i] !== 'number' || d === m.shape[i]);
            if (!fits) throw new Error(`${who}: ${kind} '${t.name}' is declared ${formatShape(t.shape)} but the ONNX file has ${formatShape(m.shape)}`);
        }
        if (kind === 'input') {
            if (!TENSOR_TYPES.has(t.type)) throw new Error(`${who}: input '${t.name}' has element type ${t.type}, which an agent cannot build`);
            plans.push({ name: t.name, type: t.type as ort.Tensor.Type, shape: callShape(t.shape.length > 0 ? t.shape : m.shape, who, t.name) });
        }
    }
    if (kind === 'input') {
        const names = new Set(declared.map(t => t.name));
        const undeclared = metadata.filter(m => !names.has(m.name)).map(m => m.name);
        if (undeclared.length > 0) {
            throw new Error(`${who}: the ONNX file's input${undeclared.length > 1 ? 's' : ''} ${undeclared.map(n => `'${n}'`).join(', ')} ${undeclared.length > 1 ? 'are' : 'is'} not declared`);
        }
    }
    return plans;
}

/** A batch of one: a symbolic first dimension is 1; one other symbolic dimension (-1) takes what the element count says. */
function callShape(shape: readonly (number | string)[], who: string, name: string): number[] {
    const out = shape.map((d, i) => (typeof d === 'number' && d >= 0 ? d : i === 0 ? 1 : -1));
    if (out.filter(d => d === -1).length > 1) {
        throw new Error(`${who}: input '${name}' ${formatShape(shape)} has more than one dynamic dimension besides the batch: declare fixed sizes`);
    }
    return out;
}

function formatShape(shape: readonly (number | string)[]): string {
    return `[${shape.map(d => (d === '' ? '?' : String(d))).join(', ')}]`;
}

function runModel(m: LoadedModel, feeds: Record<string, ort.Tensor>): Promise<InferResult> {
    return m.batcher.run(feeds).then(r => {
        const outputs: Outputs = {};
        for (const name of m.outputs) outputs[name] = toNumbers(r.outputs[name], m.decl.name, name);
        return { outputs, info: { provider: m.provider, batch: r.batchSize, queueWaitUs: r.queueWaitUs, runUs: r.runUs, cacheHit: false } };
    }, (error: unknown) => {
        const text = error instanceof Error ? error.message.split('\n')[0] : String(error);
        throw new Error(`model '${m.decl.name}' failed to run: ${text}`);
    });
}

function toNumbers(t: ort.Tensor | undefined, model: string, name: string): number | number[] {
    if (t === undefined) throw new Error(`model '${model}' gave no output '${name}'`);
    const data = t.data;
    const values: number[] = [];
    if (t.type === 'float16' && !(data instanceof Float32Array)) {
        // onnxruntime-node hands float16 as its raw IEEE half bits (a Uint16Array where Node has no Float16Array).
        for (let i = 0; i < data.length; i++) values.push(halfToNumber(Number((data as ArrayLike<number>)[i])));
        return values.length === 1 ? values[0] : values;
    }
    for (let i = 0; i < data.length; i++) {
        const v = (data as ArrayLike<unknown>)[i];
        values.push(typeof v === 'bigint' ? Number(v) : typeof v === 'boolean' ? (v ? 1 : 0) : Number(v));
    }
    return values.length === 1 ? values[0] : values;
}

/** The number an IEEE 754 half-precision bit pattern stands for. */
function halfToNumber(bits: number): number {
    const sign = bits & 0x8000 ? -1 : 1;
    const exp = (bits >> 10) & 0x1f;
    const frac = bits & 0x3ff;
    if (exp === 0) return sign * frac * 2 ** -24;
    if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
    return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** The feeds of one call: each declared input from the `infer` argument of that name (a number, a boolean or a list), with a batch of one. */
function buildFeeds(m: LoadedModel, inputs: Readonly<Record<string, unknown>>): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const plan of m.inputs) {
        const where = `input '${plan.name}' of model '${m.decl.name}'`;
        if (!(plan.name in inputs)) throw new Error(`${where} is not given`);
        const values = flatten(inputs[plan.name]);
        const fixed = plan.shape.reduce((a, d) => (d === -1 ? a : a * d), 1);
        let shape = plan.shape;
        if (plan.shape.includes(-1)) {
            if (fixed === 0 || values.length % fixed !== 0 || values.length === 0) {
                throw new Error(`${where} needs a multiple of ${fixed} values (${formatShape(plan.shape.map(d => (d === -1 ? '?' : d)))}), got ${values.length}`);
            }
            shape = plan.shape.map(d => (d === -1 ? values.length / fixed : d));
        } else if (values.length !== fixed) {
            throw new Error(`${where} needs ${fixed} value${fixed === 1 ? '' : 's'} (${formatShape(plan.shape)}), got ${values.length}`);
        }
        feeds[plan.name] = makeTensor(plan.type, values, shape, where);
    }
    return feeds;
}

function flatten(v: unknown): unknown[] {
    if (!Array.isArray(v)) return [v];
    const out: unknown[] = [];
    const go = (x: unknown): void => {
        if (Array.isArray(x)) for (const y of x) go(y);
        else out.push(x);
    };
    go(v);
    return out;
}

const INTEGER_RANGE: Partial<Record<string, readonly [number, number]>> = {
    int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535],
    int32: [-2147483648, 2147483647], uint32: [0, 4294967295], uint64: [0, Infinity]
};

function makeTensor(type: ort.Tensor.Type, values: readonly unknown[], shape: readonly number[], where: string): ort.Tensor {
    const dims = [...shape];
    if (type === 'string') return new ort.Tensor('string', values.map(String), dims);
    const numbers = values.map((v, i) => {
        if (typeof v === 'number') return v;
        if (typeof v === 'boolean') return v ? 1 : 0;
        throw new Error(`${where}: element ${i + 1} is ${typeof v === 'string' ? `the string ${JSON.stringify(v)}` : String(v)}, not a number`);
    });
    if (type === 'int64' || type === 'uint64') {
        // BigInt() of NaN or ±Infinity throws a RangeError that names neither the input nor the element.
        const at = numbers.findIndex(x => !Number.isFinite(x));
        if (at >= 0) throw new Error(`${where}: element ${at + 1} is ${numbers[at]}, not a whole number`);
    }
    const range = INTEGER_RANGE[type];
    if (range !== undefined) {
        // A typed array would wrap 300 into a uint8 as 44 and store NaN as 0, silently.
        const at = numbers.findIndex(x => !(Math.trunc(x) >= range[0] && Math.trunc(x) <= range[1]));
        if (at >= 0) throw new Error(`${where}: element ${at + 1} is ${numbers[at]}, outside ${type} (${range[0]}..${range[1]})`);
    }
    switch (type) {
        case 'float32': return new ort.Tensor('float32', Float32Array.from(numbers), dims);
        case 'float64': return new ort.Tensor('float64', Float64Array.from(numbers), dims);
        case 'int8': return new ort.Tensor('int8', Int8Array.from(numbers), dims);
        case 'int16': return new ort.Tensor('int16', Int16Array.from(numbers), dims);
        case 'int32': return new ort.Tensor('int32', Int32Array.from(numbers), dims);
        case 'uint8': return new ort.Tensor('uint8', Uint8Array.from(numbers), dims);
        case 'uint16': return new ort.Tensor('uint16', Uint16Array.from(numbers), dims);
        case 'uint32': return new ort.Tensor('uint32', Uint32Array.from(numbers), dims);
        case 'bool': return new ort.Tensor('bool', Uint8Array.from(numbers, x => (x !== 0 ? 1 : 0)), dims);
        case 'int64': return new ort.Tensor('int64', BigInt64Array.from(numbers, x => BigInt(Math.trunc(x))), dims);
        case 'uint64': return new ort.Tensor('uint64', BigUint64Array.from(numbers, x => BigInt(Math.trunc(x))), dims);
        default: throw new Error(`${where}: element type ${type} cannot be built from numbers`);
    }
}
