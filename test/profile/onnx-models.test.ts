/**
 * The generated test models load in onnxruntime and compute what their JavaScript
 * reference says (so other tests can rely on them).
 */
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { readOnnxMetadata } from '../../language-server/src/onnx-metadata';
import {
    identityModel, mlpForward, mlpModel, randomFloats, removeTempModels, sequenceForward, sequenceModel, SEQUENCE_WIDTH, writeTempModel
} from '../support/onnx-models';

afterAll(removeTempModels);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
    expect(a.length).toBe(b.length);
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
    return m;
}

describe('test ONNX models', () => {
    it('identity returns its input, at any batch size', async () => {
        const bytes = identityModel({ width: 3 });
        expect(readOnnxMetadata(bytes).inputs).toEqual([{ name: 'x', type: 'float32', shape: ['N', 3], hasShape: true }]);
        const session = await ort.InferenceSession.create(bytes);
        const x = randomFloats(12);
        const out = await session.run({ x: new ort.Tensor('float32', x, [4, 3]) });
        expect(Array.from(out.y.data as Float32Array)).toEqual(Array.from(x));
        expect(out.y.dims).toEqual([4, 3]);
        await session.release();
    });

    it('the MLP matches its float64 JavaScript forward pass', async () => {
        const mlp = mlpModel();
        expect(mlpModel().bytes).toEqual(mlp.bytes);
        const session = await ort.InferenceSession.create(writeTempModel(mlp.bytes, 'mlp.onnx'));
        const x = randomFloats(5 * 64, 3);
        const out = await session.run({ x: new ort.Tensor('float32', x, [5, 64]) });
        const expected = mlpForward(mlp, x);
        expect(out.y.dims).toEqual([5, 10]);
        expect(maxAbsDiff(out.y.data as Float32Array, expected)).toBeLessThan(1e-5);
        // The answer is not trivially zero: the network does something.
        expect(Math.max(...Array.from(expected, Math.abs))).toBeGreaterThan(0.05);
        await session.release();
    });

    it('the sequence model has two dynamic dimensions and averages over T', async () => {
        const bytes = sequenceModel();
        expect(readOnnxMetadata(bytes).inputs[0].shape).toEqual(['N', 'T', SEQUENCE_WIDTH]);
        const session = await ort.InferenceSession.create(bytes);
        const x = randomFloats(2 * 5 * SEQUENCE_WIDTH, 9);
        const out = await session.run({ x: new ort.Tensor('float32', x, [2, 5, SEQUENCE_WIDTH]) });
        expect(out.y.dims).toEqual([2, SEQUENCE_WIDTH]);
        expect(maxAbsDiff(out.y.data as Float32Array, sequenceForward(x, 2, 5))).toBeLessThan(1e-6);
        await session.release();
    });
});
