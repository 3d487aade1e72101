/**
 * Reads the inputs and outputs of an ONNX model (names, element types, shapes) from
 * its bytes, without running it. The validator compares them with a `model`'s declared
 * tensors; the runtime reuses the same reader.
 */
import { onnx } from 'onnx-proto';

export interface OnnxTensorInfo {
    readonly name: string;
    /** Element type as the agent language spells it (`float32`, `int64`, …), or `tensor type N` when it has no name there. */
    readonly type: string;
    /** One entry per dimension: a fixed size, or the name of a symbolic dimension (`N`), or `?` when unnamed. Empty when the rank is unknown. */
    readonly shape: (number | string)[];
    /** False when the model does not state a shape at all (any rank matches). */
    readonly hasShape: boolean;
}

export interface OnnxMetadata {
    readonly inputs: OnnxTensorInfo[];
    readonly outputs: OnnxTensorInfo[];
    readonly irVersion: number;
    readonly opsets: { domain: string; version: number }[];
    readonly producer: string;
}

const ELEMENT_TYPES: Record<number, string> = {
    [onnx.TensorProto.DataType.FLOAT]: 'float32',
    [onnx.TensorProto.DataType.UINT8]: 'uint8',
    [onnx.TensorProto.DataType.INT8]: 'int8',
    [onnx.TensorProto.DataType.UINT16]: 'uint16',
    [onnx.TensorProto.DataType.INT16]: 'int16',
    [onnx.TensorProto.DataType.INT32]: 'int32',
    [onnx.TensorProto.DataType.INT64]: 'int64',
    [onnx.TensorProto.DataType.STRING]: 'string',
    [onnx.TensorProto.DataType.BOOL]: 'bool',
    [onnx.TensorProto.DataType.FLOAT16]: 'float16',
    [onnx.TensorProto.DataType.DOUBLE]: 'float64',
    [onnx.TensorProto.DataType.UINT32]: 'uint32',
    [onnx.TensorProto.DataType.UINT64]: 'uint64',
    [onnx.TensorProto.DataType.COMPLEX64]: 'complex64',
    [onnx.TensorProto.DataType.COMPLEX128]: 'complex128',
    [onnx.TensorProto.DataType.BFLOAT16]: 'bfloat16'
};

/** The agent-language name of an ONNX element type number. */
export function onnxElementTypeName(elemType: number): string {
    return ELEMENT_TYPES[elemType] ?? `tensor type ${elemType}`;
}

function toNumber(v: number | { toNumber(): number } | null | undefined): number | undefined {
    if (v === null || v === undefined) return undefined;
    return typeof v === 'number' ? v : v.toNumber();
}

function tensorInfo(value: onnx.IValueInfoProto): OnnxTensorInfo {
    const tensor = value.type?.tensorType;
    const dims = tensor?.shape?.dim ?? [];
    return {
        name: value.name ?? '',
        type: tensor ? onnxElementTypeName(tensor.elemType ?? 0) : 'non-tensor',
        shape: dims.map(d => {
            const size = toNumber(d.dimValue);
            if (d.dimParam) return d.dimParam;
            return size !== undefined && size > 0 ? size : '?';
        }),
        hasShape: tensor?.shape !== undefined && tensor.shape !== null
    };
}

/**
 * Decodes an ONNX ModelProto and returns its graph's inputs (without initializers)
 * and outputs. Throws an Error with a clear message when the bytes are not an ONNX model.
 */
export function readOnnxMetadata(bytes: Uint8Array): OnnxMetadata {
    if (bytes.length === 0) throw new Error('not an ONNX model: the file is empty');
    let model: onnx.ModelProto;
    try {
        model = onnx.ModelProto.decode(bytes);
    } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new Error(`not an ONNX model: the file does not decode as an ONNX ModelProto (${reason})`);
    }
    const graph = model.graph;
    const irVersion = toNumber(model.irVersion) ?? 0;
    if (!graph) throw new Error('not an ONNX model: it has no graph');
    if (irVersion <= 0) throw new Error('not an ONNX model: it has no IR version');
    const outputs = graph.output ?? [];
    if (outputs.length === 0) throw new Error('not an ONNX model: its graph has no outputs');
    const allNamed = [...(graph.input ?? []), ...outputs].every(v => typeof v.name === 'string' && v.name.length > 0);
    if (!allNamed) throw new Error('not an ONNX model: a graph input or output has no name');
    const initializers = new Set<string>([
        ...(graph.initializer ?? []).map(t => t.name ?? ''),
        ...(graph.sparseInitializer ?? []).map(t => t.values?.name ?? '')
    ]);
    return {
        inputs: (graph.input ?? []).filter(v => !initializers.has(v.name ?? '')).map(tensorInfo),
        outputs: outputs.map(tensorInfo),
        irVersion,
        opsets: (model.opsetImport ?? []).map(o => ({ domain: o.domain ?? '', version: toNumber(o.version) ?? 0 })),
        producer: model.producerName ?? ''
    };
}
