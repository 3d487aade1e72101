/**
 * Small ONNX models built in memory with onnx-proto for the inference and profiler tests,
 * each with what a test needs to check onnxruntime's answers independently:
 *
 * - `identityModel()`: y = x, input `x: [N, width]` (the per-call floor of the binding).
 * - `mlpModel()`: 64 → 128 → 128 → 10, Gemm + Relu, deterministic weights (mulberry32),
 *   input `x: [N, 64]`, output `y: [N, 10]`; `mlpForward` is the same network in plain
 *   JavaScript float64 arithmetic over the same float32 weights.
 * - `sequenceModel()`: two dynamic dimensions, `x: [N, T, 8]` → `y = mean over T: [N, 8]`
 *   (ReduceMean); `sequenceForward` computes it in JavaScript.
 *
 * The bytes are reproducible: the same call gives the same bytes. `writeTempModel` puts
 * bytes in a file of a fresh temporary folder for code that wants a path;
 * `removeTempModels` deletes every folder it made.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { mulberry32 } from '../../runtime/profile/inputs.js';

const DataType = onnx.TensorProto.DataType;

/** Element types the generators can declare, as the agent language spells them. */
export type ElementType = 'float32' | 'float64' | 'int32' | 'int64';

const ELEMENT_TYPE: Record<ElementType, number> = {
    float32: DataType.FLOAT,
    float64: DataType.DOUBLE,
    int32: DataType.INT32,
    int64: DataType.INT64
};

/** One dimension: a fixed size or the name of a symbolic (dynamic) dimension. */
export type Dim = number | string;

/** mulberry32: a small, fast, seedable generator (same as the peer benchmarks use); the profiler's own. */
export { mulberry32 };

function valueInfo(name: string, elemType: number, dims: readonly Dim[]): onnx.ValueInfoProto {
    return onnx.ValueInfoProto.create({
        name,
        type: {
            tensorType: {
                elemType,
                shape: { dim: dims.map(d => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) }
            }
        }
    });
}

function floatInitializer(name: string, dims: number[], data: Float32Array): onnx.TensorProto {
    // A copy, so the proto owns exactly the tensor's bytes (no shared or offset buffer).
    const raw = new Uint8Array(data.byteLength);
    raw.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return onnx.TensorProto.create({ name, dims, dataType: DataType.FLOAT, rawData: raw });
}

function encode(graph: onnx.GraphProto, producer: string): Uint8Array {
    const model = onnx.ModelProto.create({
        irVersion: 8,
        producerName: producer,
        opsetImport: [{ domain: '', version: 13 }],
        graph
    });
    return onnx.ModelProto.encode(model).finish();
}

export interface IdentityOptions {
    /** Width of the second dimension (default 1): `x: [N, width]`. */
    readonly width?: number;
    /** Element type of x and y (default float32). */
    readonly type?: ElementType;
    /** Name of the batch dimension (default `N`); a number makes the batch fixed. */
    readonly batch?: Dim;
}

/** y = x with `x, y: [N, width]`. */
export function identityModel(options: IdentityOptions = {}): Uint8Array {
    const width = options.width ?? 1;
    const elem = ELEMENT_TYPE[options.type ?? 'float32'];
    const batch = options.batch ?? 'N';
    return encode(onnx.GraphProto.create({
        name: 'identity',
        node: [onnx.NodeProto.create({ opType: 'Identity', name: 'identity', input: ['x'], output: ['y'] })],
        input: [valueInfo('x', elem, [batch, width])],
        output: [valueInfo('y', elem, [batch, width])]
    }), 'aimatrix test/support/onnx-models identity');
}

/** One dense layer of the MLP: `W` is row-major `[inputs, outputs]`, `B` has `outputs` entries. */
export interface DenseLayer {
    readonly inputs: number;
    readonly outputs: number;
    readonly W: Float32Array;
    readonly B: Float32Array;
    /** Whether a Relu follows (every layer but the last). */
    readonly relu: boolean;
}

export interface MlpModel {
    readonly bytes: Uint8Array;
    readonly layers: readonly DenseLayer[];
    /** Input width (64) and output width (10). */
    readonly inputWidth: number;
    readonly outputWidth: number;
}

/** Layer sizes of the MLP. */
export const MLP_SIZES: readonly (readonly [number, number])[] = [[64, 128], [128, 128], [128, 10]];

/**
 * The MLP `x: [N, 64]` → Gemm(64×128) → Relu → Gemm(128×128) → Relu → Gemm(128×10) → `y: [N, 10]`.
 * Weights are uniform in ±1/√inputs, biases in ±0.1, drawn from mulberry32(seed) layer by
 * layer (W then B), so `seed` (default 7) fixes the model byte for byte.
 */
export function mlpModel(seed = 7): MlpModel {
    const rnd = mulberry32(seed);
    const draw = (count: number, scale: number): Float32Array => {
        const a = new Float32Array(count);
        for (let i = 0; i < count; i++) a[i] = (rnd() * 2 - 1) * scale;
        return a;
    };
    const layers: DenseLayer[] = [];
    const nodes: onnx.NodeProto[] = [];
    const initializers: onnx.TensorProto[] = [];
    let current = 'x';
    MLP_SIZES.forEach(([inputs, outputs], k) => {
        const W = draw(inputs * outputs, 1 / Math.sqrt(inputs));
        const B = draw(outputs, 0.1);
        const relu = k < MLP_SIZES.length - 1;
        layers.push({ inputs, outputs, W, B, relu });
        initializers.push(floatInitializer(`W${k}`, [inputs, outputs], W), floatInitializer(`B${k}`, [outputs], B));
        const gemmOut = relu ? `g${k}` : 'y';
        nodes.push(onnx.NodeProto.create({ opType: 'Gemm', name: `gemm${k}`, input: [current, `W${k}`, `B${k}`], output: [gemmOut] }));
        if (relu) {
            nodes.push(onnx.NodeProto.create({ opType: 'Relu', name: `relu${k}`, input: [gemmOut], output: [`h${k}`] }));
            current = `h${k}`;
        }
    });
    const inputWidth = MLP_SIZES[0][0];
    const outputWidth = MLP_SIZES[MLP_SIZES.length - 1][1];
    const bytes = encode(onnx.GraphProto.create({
        name: 'mlp',
        node: nodes,
        initializer: initializers,
        input: [valueInfo('x', DataType.FLOAT, ['N', inputWidth])],
        output: [valueInfo('y', DataType.FLOAT, ['N', outputWidth])]
    }), 'aimatrix test/support/onnx-models mlp');
    return { bytes, layers, inputWidth, outputWidth };
}

/**
 * The MLP's forward pass in float64 over its float32 weights: `x` is row-major
 * `[batch, 64]` (batch = x.length / 64); returns row-major `[batch, 10]`.
 * onnxruntime computes in float32, so compare with a tolerance (~1e-5).
 */
export function mlpForward(mlp: MlpModel, x: ArrayLike<number>): Float64Array {
    const batch = x.length / mlp.inputWidth;
    if (!Number.isInteger(batch)) throw new Error(`mlpForward: ${x.length} values are not rows of ${mlp.inputWidth}`);
    const result = new Float64Array(batch * mlp.outputWidth);
    for (let b = 0; b < batch; b++) {
        let h: Float64Array = Float64Array.from({ length: mlp.inputWidth }, (_, j) => x[b * mlp.inputWidth + j]);
        for (const { inputs, outputs, W, B, relu } of mlp.layers) {
            const out = new Float64Array(outputs);
            for (let c = 0; c < outputs; c++) {
                let s = B[c];
                for (let r = 0; r < inputs; r++) s += h[r] * W[r * outputs + c];
                out[c] = relu ? Math.max(0, s) : s;
            }
            h = out;
        }
        result.set(h, b * mlp.outputWidth);
    }
    return result;
}

/** Feature width of `sequenceModel`'s input and output. */
export const SEQUENCE_WIDTH = 8;

/**
 * A model with two dynamic dimensions: `x: [N, T, 8]` float32 → `y = ReduceMean(x, axis 1): [N, 8]`
 * (a sequence pooled over time). N is the batch, T the sequence length.
 */
export function sequenceModel(): Uint8Array {
    return encode(onnx.GraphProto.create({
        name: 'sequence_mean',
        node: [onnx.NodeProto.create({
            opType: 'ReduceMean',
            name: 'mean_over_time',
            input: ['x'],
            output: ['y'],
            attribute: [
                { name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: [1] },
                { name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 }
            ]
        })],
        input: [valueInfo('x', DataType.FLOAT, ['N', 'T', SEQUENCE_WIDTH])],
        output: [valueInfo('y', DataType.FLOAT, ['N', SEQUENCE_WIDTH])]
    }), 'aimatrix test/support/onnx-models sequence');
}

/** `sequenceModel`'s answer in float64: `x` row-major `[batch, steps, 8]` → `[batch, 8]`. */
export function sequenceForward(x: ArrayLike<number>, batch: number, steps: number): Float64Array {
    if (x.length !== batch * steps * SEQUENCE_WIDTH) {
        throw new Error(`sequenceForward: ${x.length} values are not [${batch}, ${steps}, ${SEQUENCE_WIDTH}]`);
    }
    const y = new Float64Array(batch * SEQUENCE_WIDTH);
    for (let b = 0; b < batch; b++) {
        for (let f = 0; f < SEQUENCE_WIDTH; f++) {
            let s = 0;
            for (let t = 0; t < steps; t++) s += x[(b * steps + t) * SEQUENCE_WIDTH + f];
            y[b * SEQUENCE_WIDTH + f] = s / steps;
        }
    }
    return y;
}

/** Deterministic float32 test data in [-1, 1). */
export function randomFloats(count: number, seed = 1): Float32Array {
    const rnd = mulberry32(seed);
    const a = new Float32Array(count);
    for (let i = 0; i < count; i++) a[i] = rnd() * 2 - 1;
    return a;
}

const tempDirs: string[] = [];

/** Writes `bytes` to `<fresh temp folder>/<fileName>` and returns the file's path. */
export function writeTempModel(bytes: Uint8Array, fileName = 'model.onnx'): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-onnx-'));
    tempDirs.push(dir);
    const file = path.join(dir, fileName);
    fs.writeFileSync(file, bytes);
    return file;
}

/** Deletes every folder `writeTempModel` made in this process (call it in afterAll). */
export function removeTempModels(): void {
    for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}
