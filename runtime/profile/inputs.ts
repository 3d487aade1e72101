/**
 * The inputs a profile feeds a model: shapes resolved from the model's metadata, the
 * batch size and `--dim` overrides, then filled with seeded random values of the right
 * element type.
 *
 * Which dimension is the batch: in each input, the dimension that carries the batch name
 * (the first dynamic dimension of the first input that has one, when that dimension is
 * named: `N`, `batch`), else the input's first unnamed dynamic dimension. Every other
 * dynamic dimension must be fixed: by `--dim NAME=SIZE` (a named dimension, everywhere
 * it occurs) or `--dim 'INPUT[AXIS]=SIZE'` (one axis of one input), or by the one
 * heuristic below; otherwise the profile stops with a line naming the dimension.
 *
 * Heuristic (an assumption, said in a note whenever it is used, and `--dim` overrides it):
 * a model with a scalar integer input named `sr`, `sample_rate` or `sampling_rate` is taken
 * for a streaming audio model such as Silero VAD. That input gets 16000 (Hz), and a
 * dynamic non-batch dimension of a rank-2 float input gets 512 samples (a 32 ms window at
 * 16 kHz, the frame Silero VAD v5 expects). Nothing else is guessed.
 */
import * as ort from 'onnxruntime-node';
import type { OnnxTensorInfo } from '../../language-server/src/onnx-metadata.js';

/** A mistake in what was asked (flags, dimensions): exit status 2. */
export class ProfileUsageError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'ProfileUsageError';
    }
}

/** One dimension of an input as the profile will feed it. */
export type PlannedDim =
    | { readonly kind: 'fixed'; readonly size: number }
    | { readonly kind: 'batch'; readonly label: string };

export interface PlannedInput {
    readonly name: string;
    readonly type: string;
    readonly dims: readonly PlannedDim[];
    /** A fixed value for every element (the sample rate heuristic); random otherwise. */
    readonly fill?: number;
}

export interface InputPlan {
    readonly inputs: readonly PlannedInput[];
    /** Whether some input has a batch dimension (else only batch 1 is meaningful). */
    readonly batched: boolean;
    /** One line per assumption made (the heuristic), for the report's notes. */
    readonly notes: readonly string[];
}

const SAMPLE_RATE_NAMES = new Set(['sr', 'sample_rate', 'sampling_rate']);
const AUDIO_SAMPLE_RATE = 16000;
const AUDIO_WINDOW = 512;
const INTEGER_TYPES = new Set(['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64']);
const FLOAT_TYPES = new Set(['float32', 'float64', 'float16']);
const SUPPORTED_TYPES = new Set([...INTEGER_TYPES, ...FLOAT_TYPES, 'bool', 'string']);

/** Parses one `--dim` value: `NAME=SIZE` or `INPUT[AXIS]=SIZE`. */
export function parseDimOverride(text: string): { key: string; size: number } {
    const m = /^(.+)=\s*(\d+)\s*$/.exec(text);
    const size = m ? Number(m[2]) : NaN;
    if (!m || !Number.isSafeInteger(size) || size < 1 || m[1].trim() === '') {
        throw new ProfileUsageError(`--dim '${text}': expected NAME=SIZE or 'INPUT[AXIS]=SIZE' with a whole SIZE ≥ 1`);
    }
    return { key: m[1].trim(), size };
}

/** `input[1]`: how a dimension is named in messages and in `--dim`. */
function axisKey(input: string, axis: number): string {
    return `${input}[${axis}]`;
}

/**
 * Resolves every input's dimensions. `dims` maps a dimension name or `INPUT[AXIS]` to a
 * size. Throws ProfileUsageError for a dimension that stays dynamic, an override that
 * matches nothing, or one that names the batch dimension.
 */
export function planInputs(inputs: readonly OnnxTensorInfo[], dims: ReadonlyMap<string, number>): InputPlan {
    const notes: string[] = [];
    for (const input of inputs) {
        if (!SUPPORTED_TYPES.has(input.type)) {
            throw new ProfileUsageError(`input '${input.name}' has element type ${input.type}, which the profiler cannot generate`);
        }
        if (!input.hasShape) {
            throw new ProfileUsageError(`input '${input.name}' has no shape in the model; the profiler cannot generate it`);
        }
    }
    const batchName = (() => {
        for (const input of inputs) {
            const first = input.shape.find(d => typeof d === 'string');
            if (first !== undefined) return first === '?' ? undefined : first as string;
        }
        return undefined;
    })();
    const audio = inputs.some(i => SAMPLE_RATE_NAMES.has(i.name) && i.shape.length === 0 && INTEGER_TYPES.has(i.type));
    const used = new Set<string>();
    const planned: PlannedInput[] = inputs.map(input => {
        const named = batchName !== undefined ? input.shape.indexOf(batchName) : -1;
        const batchAxis = named >= 0 ? named : input.shape.indexOf('?');
        const planDims = input.shape.map((d, axis): PlannedDim => {
            if (typeof d === 'number') return { kind: 'fixed', size: d };
            const key = axisKey(input.name, axis);
            const byAxis = dims.get(key);
            const byName = d !== '?' ? dims.get(d) : undefined;
            // The batch's name names the same size wherever it occurs (`[N, N]`): each such axis is the batch.
            if (axis === batchAxis || (batchName !== undefined && d === batchName)) {
                if (byAxis !== undefined || byName !== undefined) {
                    throw new ProfileUsageError(`--dim ${byAxis !== undefined ? key : d}: that is the batch dimension of input '${input.name}'; set it with --batch`);
                }
                return { kind: 'batch', label: d === '?' ? 'batch' : d };
            }
            if (byAxis !== undefined) { used.add(key); return { kind: 'fixed', size: byAxis }; }
            if (byName !== undefined) { used.add(d); return { kind: 'fixed', size: byName }; }
            if (audio && input.shape.length === 2 && FLOAT_TYPES.has(input.type)) {
                notes.push(`${key} = ${AUDIO_WINDOW} (assumed: an audio window of ${AUDIO_WINDOW} samples, 32 ms at 16 kHz, for a model with a sample-rate input; change it with --dim '${key}=SIZE')`);
                return { kind: 'fixed', size: AUDIO_WINDOW };
            }
            const how = d === '?' ? `--dim '${key}=SIZE'` : `--dim ${d}=SIZE`;
            throw new ProfileUsageError(`dimension ${d === '?' ? key : `'${d}' (${key})`} of the model is dynamic and is not the batch dimension: fix it with ${how}`);
        });
        const sampleRate = audio && SAMPLE_RATE_NAMES.has(input.name) && input.shape.length === 0 && INTEGER_TYPES.has(input.type);
        if (sampleRate) notes.push(`${input.name} = ${AUDIO_SAMPLE_RATE} (assumed: a sample rate in Hz)`);
        return { name: input.name, type: input.type, dims: planDims, ...(sampleRate ? { fill: AUDIO_SAMPLE_RATE } : {}) };
    });
    for (const key of dims.keys()) {
        if (!used.has(key)) {
            const dynamic = [...new Set(inputs.flatMap(i => i.shape.flatMap((d, axis) => typeof d === 'string' ? [d === '?' ? axisKey(i.name, axis) : d] : [])))];
            throw new ProfileUsageError(`--dim ${key}: the model has no such dynamic dimension outside the batch (dynamic: ${dynamic.length > 0 ? dynamic.join(', ') : 'none'})`);
        }
    }
    return { inputs: planned, batched: planned.some(i => i.dims.some(d => d.kind === 'batch')), notes };
}

/** An input's shape for one batch size. */
export function shapeFor(input: PlannedInput, batch: number): number[] {
    return input.dims.map(d => (d.kind === 'fixed' ? d.size : batch));
}

/** The shape as the report shows it: sizes, and the batch dimension by its name. */
export function reportShape(input: PlannedInput): (number | string)[] {
    return input.dims.map(d => (d.kind === 'fixed' ? d.size : d.label));
}

/** mulberry32: seeded, so a profile feeds the same values every time (the tests' generated models use it too). */
export function mulberry32(seed: number): () => number {
    let a = seed | 0;
    return () => {
        a = (a + 0x6d2b79f5) | 0;
        let t = Math.imul(a ^ (a >>> 15), a | 1);
        t = (t + Math.imul(t ^ (t >>> 7), t | 61)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

/** IEEE half precision bits of a number in [-1, 1] (round to nearest; enough for test data). */
function toHalf(x: number): number {
    const f32 = new Float32Array([x]);
    const u = new Uint32Array(f32.buffer)[0];
    const sign = (u >>> 16) & 0x8000;
    const exp = ((u >>> 23) & 0xff) - 127 + 15;
    if (exp <= 0) return sign;
    return sign | (exp << 10) | ((u >>> 13) & 0x3ff);
}

/**
 * Random tensors for every input at `batch`: floats uniform in [-1, 1), integers in
 * 0..9 (small enough to be valid indices for most models), booleans 0/1.
 */
export function makeFeeds(plan: InputPlan, batch: number, seed = 1): Record<string, ort.Tensor> {
    const rnd = mulberry32(seed);
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of plan.inputs) {
        const dims = shapeFor(input, batch);
        const n = dims.reduce((a, b) => a * b, 1);
        const value = (): number => (input.fill !== undefined ? input.fill : FLOAT_TYPES.has(input.type) ? rnd() * 2 - 1 : Math.floor(rnd() * 10));
        let tensor: ort.Tensor;
        switch (input.type) {
            case 'float32': tensor = new ort.Tensor('float32', Float32Array.from({ length: n }, value), dims); break;
            case 'float64': tensor = new ort.Tensor('float64', Float64Array.from({ length: n }, value), dims); break;
            case 'float16': tensor = new ort.Tensor('float16', Uint16Array.from({ length: n }, () => toHalf(value())), dims); break;
            case 'int8': tensor = new ort.Tensor('int8', Int8Array.from({ length: n }, value), dims); break;
            case 'uint8': tensor = new ort.Tensor('uint8', Uint8Array.from({ length: n }, value), dims); break;
            case 'int16': tensor = new ort.Tensor('int16', Int16Array.from({ length: n }, value), dims); break;
            case 'uint16': tensor = new ort.Tensor('uint16', Uint16Array.from({ length: n }, value), dims); break;
            case 'int32': tensor = new ort.Tensor('int32', Int32Array.from({ length: n }, value), dims); break;
            case 'uint32': tensor = new ort.Tensor('uint32', Uint32Array.from({ length: n }, value), dims); break;
            case 'int64': tensor = new ort.Tensor('int64', BigInt64Array.from({ length: n }, () => BigInt(value())), dims); break;
            case 'uint64': tensor = new ort.Tensor('uint64', BigUint64Array.from({ length: n }, () => BigInt(value())), dims); break;
            case 'bool': tensor = new ort.Tensor('bool', Uint8Array.from({ length: n }, () => (rnd() < 0.5 ? 0 : 1)), dims); break;
            case 'string': tensor = new ort.Tensor('string', Array.from({ length: n }, () => 'a'), dims); break;
            default: throw new ProfileUsageError(`input '${input.name}' has element type ${input.type}, which the profiler cannot generate`);
        }
        feeds[input.name] = tensor;
    }
    return feeds;
}
