/**
 * Builds small ONNX models with onnx-proto, so that tests of the model checks read
 * real files: an Identity graph with chosen inputs and outputs.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';

export interface TensorDecl {
    name: string;
    /** onnx.TensorProto.DataType */
    type: number;
    /** Fixed sizes or symbolic names. */
    shape: (number | string)[];
}

export const DataType = onnx.TensorProto.DataType;

function valueInfo(t: TensorDecl): onnx.IValueInfoProto {
    return {
        name: t.name,
        type: { tensorType: { elemType: t.type, shape: { dim: t.shape.map(d => typeof d === 'number' ? { dimValue: d } : { dimParam: d }) } } }
    };
}

/**
 * An ONNX model whose graph passes each input to the output at the same position
 * (Identity nodes). `initializers` are extra graph inputs that have a constant value
 * (they are not inputs a caller supplies).
 */
export function identityModel(inputs: TensorDecl[], outputs: TensorDecl[], initializers: TensorDecl[] = []): Uint8Array {
    const model = onnx.ModelProto.create({
        irVersion: 8,
        producerName: 'aimatrix-tests',
        opsetImport: [{ domain: '', version: 13 }],
        graph: {
            name: 'identity',
            node: outputs.map((o, i) => ({ opType: 'Identity', input: [inputs[Math.min(i, inputs.length - 1)].name], output: [o.name] })),
            input: [...inputs, ...initializers].map(valueInfo),
            output: outputs.map(valueInfo),
            initializer: initializers.map(t => ({ name: t.name, dataType: t.type, dims: t.shape.map(d => typeof d === 'number' ? d : 1), floatData: [0] }))
        }
    });
    return onnx.ModelProto.encode(model).finish();
}

/** The model the tests describe: input `x` float32 [N, 4], output `y` float32 [N, 4]. */
export function standardModel(): Uint8Array {
    return identityModel(
        [{ name: 'x', type: DataType.FLOAT, shape: ['N', 4] }],
        [{ name: 'y', type: DataType.FLOAT, shape: ['N', 4] }]
    );
}

/** A fresh temporary folder, removed by the returned function. */
export function tempFolder(prefix = 'aimatrix-onnx-'): { dir: string; cleanup: () => void } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
