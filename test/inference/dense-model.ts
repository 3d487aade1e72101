/**
 * A small dense network for the engine's inference tests: `x: [N, 4]` → Gemm(4×16) → Relu →
 * Gemm(16×1) → `y: [N, 1]`, weights from mulberry32(seed), plus its forward pass in
 * float64 JavaScript. One output element per call, so an agent can add it up in a state.
 */
import { onnx } from 'onnx-proto';
import { mulberry32 } from '../support/onnx-models.js';

const FLOAT = onnx.TensorProto.DataType.FLOAT;

export interface DenseModel {
    readonly bytes: Uint8Array;
    forward(x: readonly number[]): number;
}

function valueInfo(name: string, dims: (number | string)[], elemType = FLOAT): onnx.ValueInfoProto {
    return onnx.ValueInfoProto.create({
        name,
        type: { tensorType: { elemType, shape: { dim: dims.map(d => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } }
    });
}

function init(name: string, dims: number[], data: Float32Array): onnx.TensorProto {
    return onnx.TensorProto.create({ name, dims, dataType: FLOAT, rawData: new Uint8Array(data.buffer.slice(0)) });
}

export function denseModel(seed = 3, batch: number | string = 'N'): DenseModel {
    const rnd = mulberry32(seed);
    const draw = (n: number, scale: number): Float32Array => Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * scale);
    const W0 = draw(4 * 16, 0.5), B0 = draw(16, 0.1), W1 = draw(16, 0.25), B1 = draw(1, 0.1);
    const graph = onnx.GraphProto.create({
        name: 'dense',
        node: [
            onnx.NodeProto.create({ opType: 'Gemm', name: 'g0', input: ['x', 'W0', 'B0'], output: ['h'] }),
            onnx.NodeProto.create({ opType: 'Relu', name: 'r0', input: ['h'], output: ['hr'] }),
            onnx.NodeProto.create({ opType: 'Gemm', name: 'g1', input: ['hr', 'W1', 'B1'], output: ['y'] })
        ],
        initializer: [init('W0', [4, 16], W0), init('B0', [16], B0), init('W1', [16, 1], W1), init('B1', [1], B1)],
        input: [valueInfo('x', [batch, 4])],
        output: [valueInfo('y', [batch, 1])]
    });
    const bytes = onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, producerName: 'aimatrix test dense', opsetImport: [{ domain: '', version: 13 }], graph })).finish();
    return {
        bytes,
        forward(x: readonly number[]): number {
            const xf = x.map(v => Math.fround(v));
            let y = B1[0];
            for (let j = 0; j < 16; j++) {
                let h = B0[j];
                for (let i = 0; i < 4; i++) h += xf[i] * W0[i * 16 + j];
                y += Math.max(0, h) * W1[j];
            }
            return y;
        }
    };
}
