/**
 * The model host at its edges: element types other than float32 (float16, int64, bool)
 * reach agents as the numbers they stand for, and a NaN for an int64 input is an error
 * naming the input; calls left queued by a
 * replication that ended early do not join the next replication's batches; dispose()
 * settles calls still queued.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { afterAll, describe, expect, it } from 'vitest';
import type { ModelDecl } from '../../runtime/engine/api.js';
import { createModelHost } from '../../runtime/inference/model-host.js';
import { identityModel } from '../support/onnx-models.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-host-edge-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const T = onnx.TensorProto.DataType;

function valueInfo(name: string, dims: (number | string)[], elemType: number): onnx.ValueInfoProto {
    return onnx.ValueInfoProto.create({
        name,
        type: { tensorType: { elemType, shape: { dim: dims.map(d => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } }
    });
}

/** x: float32 [N, 3] → h: float16 (Cast), i: int64 (Cast), b: bool (x > 0). */
function castModel(): Uint8Array {
    const zero = onnx.TensorProto.create({ name: 'zero', dims: [], dataType: T.FLOAT, rawData: new Uint8Array(new Float32Array([0]).buffer) });
    const graph = onnx.GraphProto.create({
        name: 'casts',
        node: [
            onnx.NodeProto.create({ opType: 'Cast', name: 'c16', input: ['x'], output: ['h'], attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: T.FLOAT16 }] }),
            onnx.NodeProto.create({ opType: 'Cast', name: 'c64', input: ['x'], output: ['i'], attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: T.INT64 }] }),
            onnx.NodeProto.create({ opType: 'Greater', name: 'gt', input: ['x', 'zero'], output: ['b'] })
        ],
        initializer: [zero],
        input: [valueInfo('x', ['N', 3], T.FLOAT)],
        output: [valueInfo('h', ['N', 3], T.FLOAT16), valueInfo('i', ['N', 3], T.INT64), valueInfo('b', ['N', 3], T.BOOL)]
    });
    return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, producerName: 'aimatrix test casts', opsetImport: [{ domain: '', version: 13 }], graph })).finish();
}

fs.writeFileSync(path.join(dir, 'casts.onnx'), castModel());
fs.writeFileSync(path.join(dir, 'id.onnx'), identityModel({ width: 2 }));

const call = { simTime: 0, subject: 'A#1', site: undefined };

const decl = (over: Partial<ModelDecl>): ModelDecl => ({
    name: 'Id', file: path.join(dir, 'id.onnx'),
    inputs: [{ name: 'x', type: 'float32', shape: ['N', 2] }], outputs: [],
    providers: ['cpu'], batch: 8, maxWaitMs: 0, cacheSize: 0, cacheTtl: Infinity, callers: ['A'],
    loc: { file: 'a.agent', line: 3, column: 3 }, ...over
});

describe('outputs of other element types', () => {
    it('float16, int64 and bool outputs are the numbers they stand for', async () => {
        const host = await createModelHost([decl({ name: 'Casts', file: path.join(dir, 'casts.onnx'), inputs: [{ name: 'x', type: 'float32', shape: ['N', 3] }] })]);
        const answer = host.infer(0, { x: [1.5, -2.25, 0] }, call);
        host.flush();
        const r = await answer;
        expect(r.outputs.h).toEqual([1.5, -2.25, 0]);
        expect(r.outputs.i).toEqual([1, -2, 0]);
        expect(r.outputs.b).toEqual([1, 0, 0]);
        await host.dispose();
    });
});

describe('calls still queued', () => {
    it('a call left queued when a replication ended does not join the next replication\'s batch, and settles', async () => {
        const host = await createModelHost([decl({})]);
        const stale = [host.infer(0, { x: [1, 2] }, call), host.infer(0, { x: [3, 4] }, call)];
        const settled = Promise.allSettled(stale);
        host.beginReplication({ trace: undefined, wall: () => 0 });
        const fresh = host.infer(0, { x: [5, 6] }, call);
        host.flush();
        const r = await fresh;
        expect(r.outputs.y).toEqual([5, 6]);
        expect(r.info.batch).toBe(1);
        const outcomes = await settled;
        expect(outcomes.map(o => o.status)).toEqual(['rejected', 'rejected']);
        expect(host.stats()[0].runs).toBe(1);
        await host.dispose();
    });

    it('dispose() settles calls still queued instead of leaving them pending for ever', async () => {
        const host = await createModelHost([decl({})]);
        const queued = host.infer(0, { x: [1, 2] }, call);
        await host.dispose();
        const outcome = await Promise.race([queued.then(() => 'resolved', () => 'rejected'), new Promise(resolve => setImmediate(() => resolve('pending')))]);
        expect(outcome).toBe('rejected');
    });
});

describe('inputs of other element types', () => {
    const elem: Record<string, number> = { int64: T.INT64, bool: T.BOOL, string: T.STRING, uint8: T.UINT8, int32: T.INT32 };
    for (const [type, e] of Object.entries(elem)) {
        const graph = onnx.GraphProto.create({
            name: 'identity',
            node: [onnx.NodeProto.create({ opType: 'Identity', name: 'identity', input: ['x'], output: ['y'] })],
            input: [valueInfo('x', ['N', 2], e)],
            output: [valueInfo('y', ['N', 2], e)]
        });
        fs.writeFileSync(path.join(dir, `id-${type}.onnx`), onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, producerName: 'aimatrix test', opsetImport: [{ domain: '', version: 13 }], graph })).finish());
    }
    const typed = (type: string): ModelDecl => decl({ name: 'Id', file: path.join(dir, `id-${type}.onnx`), inputs: [{ name: 'x', type, shape: ['N', 2] }], batch: 1 });

    it('int64 and bool inputs are built from numbers and booleans and come back as numbers', async () => {
        const host = await createModelHost([typed('int64'), typed('bool')]);
        const asked = [host.infer(0, { x: [7, -3] }, call), host.infer(1, { x: [true, 0] }, call)];
        host.flush();
        const [i64, bool] = await Promise.all(asked);
        expect(i64.outputs.y).toEqual([7, -3]);
        expect(bool.outputs.y).toEqual([1, 0]);
        await host.dispose();
    });

    it('a value that is not a whole number in an int64 input is an error naming the input and the element', async () => {
        const host = await createModelHost([typed('int64')]);
        for (const bad of [NaN, Infinity]) {
            const error = await Promise.resolve().then(() => host.infer(0, { x: [1, bad] }, call)).then(() => undefined, (e: unknown) => e as Error);
            expect(error?.message).toBe(`input 'x' of model 'Id': element 2 is ${bad}, not a whole number`);
        }
        await host.dispose();
    });

    it('a value outside a narrow integer type is an error naming the input, not wrapped (300 → 44) or zeroed (NaN → 0)', async () => {
        const host = await createModelHost([typed('uint8'), typed('int32')]);
        const ok = [host.infer(0, { x: [255, 0] }, call), host.infer(1, { x: [-5, 2147483647] }, call)];
        host.flush();
        expect((await Promise.all(ok)).map(r => r.outputs.y)).toEqual([[255, 0], [-5, 2147483647]]);
        const failed = async (model: number, x: number[]): Promise<string | undefined> =>
            Promise.resolve().then(() => host.infer(model, { x }, call)).then(() => undefined, (e: unknown) => (e as Error).message);
        expect(await failed(0, [1, 300])).toBe("input 'x' of model 'Id': element 2 is 300, outside uint8 (0..255)");
        expect(await failed(0, [-1, 3])).toBe("input 'x' of model 'Id': element 1 is -1, outside uint8 (0..255)");
        expect(await failed(1, [NaN, 3])).toBe("input 'x' of model 'Id': element 1 is NaN, outside int32 (-2147483648..2147483647)");
        await host.dispose();
    });
});

describe('the cache and calls a replication left queued', () => {
    it('a left-over call that is rejected does not evict the next replication\'s answer for the same input', async () => {
        const host = await createModelHost([decl({ cacheSize: 16 })]);
        const stale = host.infer(0, { x: [1, 2] }, call);
        stale.catch(() => undefined);
        host.beginReplication({ trace: undefined, wall: () => 0 });
        const first = host.infer(0, { x: [1, 2] }, call);
        host.flush();
        expect((await first).info.cacheHit).toBe(false);
        await stale.then(() => undefined, () => undefined);
        const again = host.infer(0, { x: [1, 2] }, call);
        host.flush();
        const r = await again;
        expect(r.info.cacheHit).toBe(true);
        expect(r.outputs.y).toEqual([1, 2]);
        await host.dispose();
    });
});

describe('string outputs', () => {
    it('a declared string output fails to load naming it; an undeclared one is left out instead of reading NaN', async () => {
        const file = path.join(dir, 'id-string.onnx');
        const declared = decl({ name: 'Words', file, inputs: [{ name: 'x', type: 'string', shape: ['N', 2] }], outputs: [{ name: 'y', type: 'string', shape: ['N', 2] }], batch: 1 });
        const error = await createModelHost([declared]).then(() => undefined, (e: unknown) => e as Error);
        expect(error?.message).toBe("a.agent:3:3: model 'Words' (called by A): output 'y' has element type string, which an agent cannot use (it gets numbers)");
        const host = await createModelHost([{ ...declared, outputs: [] }]);
        const answer = host.infer(0, { x: ['3', '4'] }, call);
        host.flush();
        expect((await answer).outputs).toEqual({});
        await host.dispose();
    });
});

describe('MicroBatcher and a batch name on two axes', () => {
    it('does not stack calls of an [N, N] model along the first axis (the merged [2, 1] would not be [2, 2])', async () => {
        const graph = onnx.GraphProto.create({
            name: 'nn', node: [onnx.NodeProto.create({ opType: 'Identity', name: 'i', input: ['x'], output: ['y'] })],
            input: [valueInfo('x', ['N', 'N'], T.FLOAT)], output: [valueInfo('y', ['N', 'N'], T.FLOAT)]
        });
        const file = path.join(dir, 'nn.onnx');
        fs.writeFileSync(file, onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, producerName: 'aimatrix test', opsetImport: [{ domain: '', version: 13 }], graph })).finish());
        const { MicroBatcher } = await import('../../runtime/inference/batcher.js');
        const { openSession } = await import('../../runtime/inference/providers.js');
        const { session } = await openSession(file, { providers: ['cpu'] });
        expect(new MicroBatcher(session, { maxBatch: 8, maxWaitMs: 0 }).batching).toBe(false);
        await session.release();
    });
});
