'use strict';
// Builds models/demand.onnx, the demand forecaster the Replenisher agent calls
// (replenishment.agent, model DemandForecast): a linear model, one Gemm node,
//   features: float32 [N, 4]  ->  demand = features · W + B : float32 [N, 1]
// The four features are: orders per hour lately, units in stock, units on order, and
// the day of the week (0-6). The weights say what a planner would: the next 8 hours
// bring about 8 times the hourly order rate, a little more late in the week, and
// stock already in hand or on order does not change demand.
// The file is reproducible byte for byte: `node examples/warehouse/models/make-model.cjs [OUT]`
// (OUT defaults to demand.onnx next to this script).
const fs = require('node:fs');
const path = require('node:path');
const { onnx } = require('onnx-proto');

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const WEIGHTS = [8, 0, 0, 0.5];   // W: [4, 1]
const BIAS = [2];                 // B: [1]

function initializer(name, dims, values) {
    const data = new Float32Array(values);
    return onnx.TensorProto.create({ name, dims, dataType: FLOAT, rawData: new Uint8Array(data.buffer) });
}

function valueInfo(name, dims) {
    return onnx.ValueInfoProto.create({
        name,
        type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map(d => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } }
    });
}

const graph = onnx.GraphProto.create({
    name: 'demand_forecast',
    node: [onnx.NodeProto.create({ opType: 'Gemm', name: 'linear', input: ['features', 'W', 'B'], output: ['demand'] })],
    initializer: [initializer('W', [4, 1], WEIGHTS), initializer('B', [1], BIAS)],
    input: [valueInfo('features', ['N', 4])],
    output: [valueInfo('demand', ['N', 1])]
});

const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'aimatrix examples/warehouse/models/make-model.cjs',
    modelVersion: 1,
    docString: 'Orders expected in the next 8 hours from (order rate per hour, stock, on order, weekday).',
    opsetImport: [{ domain: '', version: 13 }],
    graph
});

const out = path.resolve(process.argv[2] ?? path.join(__dirname, 'demand.onnx'));
const bytes = onnx.ModelProto.encode(model).finish();
fs.writeFileSync(out, bytes);
console.log(`wrote ${path.relative(process.cwd(), out)} (${bytes.length} bytes)`);
