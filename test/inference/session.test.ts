import * as fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { MicroBatcher } from '../../runtime/inference/batcher.js';
import { ResponseCache, inputKey } from '../../runtime/inference/cache.js';
import { availableProviders, openSession } from '../../runtime/inference/providers.js';
import { identityModel, mlpForward, mlpModel, randomFloats, removeTempModels, SEQUENCE_WIDTH, sequenceModel, writeTempModel } from '../support/onnx-models.js';

afterAll(removeTempModels);

const mlp = mlpModel();
const mlpFile = writeTempModel(mlp.bytes, 'mlp.onnx');

describe('openSession', () => {
    it('falls back from a provider this machine lacks to the CPU with one warning naming both', async () => {
        const here = availableProviders();
        expect(here).toContain('cpu');
        const missing = (['cuda', 'tensorrt', 'dml', 'coreml'] as const).find(p => !here.includes(p));
        expect(missing).toBeDefined();
        const warnings: string[] = [];
        const opened = await openSession(mlpFile, { providers: [missing!, 'cpu'], onWarning: l => warnings.push(l) });
        expect(opened.provider).toBe('cpu');
        expect(opened.requested).toEqual([missing, 'cpu']);
        expect(warnings).toEqual([`provider '${missing}' is not available here; using 'cpu'`]);
    });

    it('ends at the CPU even when the list does not name it, and warns nothing when the first is there', async () => {
        const warnings: string[] = [];
        expect((await openSession(mlpFile, { providers: ['cuda'], onWarning: l => warnings.push(l) })).provider).toBe('cpu');
        expect((await openSession(mlpFile, { providers: ['cpu'], onWarning: l => warnings.push(l) })).provider).toBe('cpu');
        expect(warnings).toHaveLength(availableProviders().includes('cuda') ? 0 : 1);
    });

    it('rejects an unknown provider name, a missing file and a file that is not ONNX with one line naming it', async () => {
        await expect(openSession(mlpFile, { providers: ['gpu'] })).rejects.toThrow(/^unknown execution provider 'gpu' \(known: tensorrt, cuda, dml, coreml, webgpu, cpu\)$/);
        await expect(openSession('/nonexistent/m.onnx', { providers: ['cpu'] })).rejects.toThrow('/nonexistent/m.onnx: model file not found');
        const bad = writeTempModel(new TextEncoder().encode('not a model at all'), 'bad.onnx');
        const error = await openSession(bad, { providers: ['cpu'] }).then(() => undefined, (e: unknown) => e as Error);
        expect(error?.message).toMatch(new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot load the model: `));
        expect(error?.message).not.toContain('\n');
        const truncated = writeTempModel(mlp.bytes.subarray(0, mlp.bytes.length >> 1), 'truncated.onnx');
        await expect(openSession(truncated, { providers: ['cpu'] })).rejects.toThrow(/truncated\.onnx: cannot load the model/);
    });
});

describe('MicroBatcher', () => {
    it('merges concurrent calls into one run whose rows are bit for bit the unbatched answers', async () => {
        const { session } = await openSession(mlpFile, { providers: ['cpu'] });
        const batcher = new MicroBatcher(session, { maxBatch: 64, maxWaitMs: 1000 });
        expect(batcher.batching).toBe(true);
        const inputs = Array.from({ length: 32 }, (_, k) => randomFloats(64, k + 1));
        const alone = [];
        for (const x of inputs) alone.push(await session.run({ x: new ort.Tensor('float32', x, [1, 64]) }));
        const pending = inputs.map(x => batcher.run({ x: new ort.Tensor('float32', x, [1, 64]) }));
        batcher.flush(); // without waiting for the window
        const batched = await Promise.all(pending);
        let maxDiff = 0;
        for (let k = 0; k < inputs.length; k++) {
            const got = batched[k].outputs.y;
            expect(got.dims).toEqual([1, 10]);
            expect(batched[k].batchSize).toBe(32);
            expect(Array.from(got.data as Float32Array)).toEqual(Array.from(alone[k].y.data as Float32Array));
            const expected = mlpForward(mlp, inputs[k]);
            for (let i = 0; i < 10; i++) maxDiff = Math.max(maxDiff, Math.abs((got.data as Float32Array)[i] - expected[i]));
        }
        expect(maxDiff).toBeLessThan(1e-5);
    });

    it('starts a batch when maxBatch calls are queued and keeps calls of another shape apart', async () => {
        const { session } = await openSession(writeTempModel(identityModel({ width: 3 })), { providers: ['cpu'] });
        const batcher = new MicroBatcher(session, { maxBatch: 4, maxWaitMs: 60_000 });
        const rows = Array.from({ length: 8 }, (_, k) => Float32Array.of(k, k + 0.5, -k));
        const results = await Promise.all(rows.map(r => batcher.run({ x: new ort.Tensor('float32', r, [1, 3]) })));
        expect(results.map(r => r.batchSize)).toEqual([4, 4, 4, 4, 4, 4, 4, 4]);
        results.forEach((r, k) => expect(Array.from(r.outputs.y.data as Float32Array)).toEqual(Array.from(rows[k])));
        // A call of two rows shares a batch with one-row calls; its rows come back together.
        const a = batcher.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3]) });
        const b = batcher.run({ x: new ort.Tensor('float32', Float32Array.of(7, 8, 9), [1, 3]) });
        batcher.flush();
        const [ra, rb] = await Promise.all([a, b]);
        expect(ra.outputs.y.dims).toEqual([2, 3]);
        expect(Array.from(ra.outputs.y.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
        expect(Array.from(rb.outputs.y.data as Float32Array)).toEqual([7, 8, 9]);
        expect(ra.batchSize).toBe(2);
    });

    it('keeps calls whose dimensions after the first differ in separate batches, in arrival order', async () => {
        const session = await ort.InferenceSession.create(sequenceModel());
        const batcher = new MicroBatcher(session, { maxBatch: 8, maxWaitMs: 60_000 });
        const steps = [2, 2, 3, 3, 2];
        const xs = steps.map((t, k) => randomFloats(t * SEQUENCE_WIDTH, 20 + k));
        const pending = xs.map((x, k) => batcher.run({ x: new ort.Tensor('float32', x, [1, steps[k], SEQUENCE_WIDTH]) }));
        batcher.flush();
        const results = await Promise.all(pending);
        // T=2, T=2 run together; T=3 closes that batch and starts one; the last T=2 closes that and runs alone at flush().
        expect(results.map(r => r.batchSize)).toEqual([2, 2, 2, 2, 1]);
        expect(batcher.runs).toBe(3);
        for (let k = 0; k < xs.length; k++) {
            const alone = await session.run({ x: new ort.Tensor('float32', xs[k], [1, steps[k], SEQUENCE_WIDTH]) });
            expect(results[k].outputs.y.dims).toEqual([1, SEQUENCE_WIDTH]);
            expect(Array.from(results[k].outputs.y.data as Float32Array)).toEqual(Array.from(alone.y.data as Float32Array));
        }
        await session.release();
    });

    it('gives each caller its own rows: a caller writing into its output changes no other caller\'s', async () => {
        const session = await ort.InferenceSession.create(identityModel({ width: 3 }));
        const batcher = new MicroBatcher(session, { maxBatch: 3, maxWaitMs: 60_000 });
        const rows = [Float32Array.of(1, 2, 3), Float32Array.of(4, 5, 6, 7, 8, 9), Float32Array.of(10, 11, 12)];
        const [a, b, c] = await Promise.all(rows.map(r => batcher.run({ x: new ort.Tensor('float32', r, [r.length / 3, 3]) })));
        expect([a.batchSize, b.batchSize, c.batchSize]).toEqual([3, 3, 3]);
        const ya = a.outputs.y.data as Float32Array;
        const yb = b.outputs.y.data as Float32Array;
        expect([ya.length, yb.length]).toEqual([3, 6]);
        // Its data holds its own rows only: nothing of the batch's other rows is reachable through .buffer.
        expect([ya.buffer.byteLength, yb.buffer.byteLength]).toEqual([12, 24]);
        ya.fill(-1);
        yb[5] = -2;
        expect(Array.from(b.outputs.y.data as Float32Array)).toEqual([4, 5, 6, 7, 8, -2]);
        expect(Array.from(c.outputs.y.data as Float32Array)).toEqual([10, 11, 12]);
        // The inputs were copied into the batch, not shared with it.
        expect(Array.from(rows[0])).toEqual([1, 2, 3]);
        // An output row serves as the input of another call.
        const pending = batcher.run({ x: c.outputs.y });
        batcher.flush();
        const again = await pending;
        expect(Array.from(again.outputs.y.data as Float32Array)).toEqual([10, 11, 12]);
        await session.release();
    });

    it('with an infinite wait, holds calls until flush() or a full batch', async () => {
        const { session } = await openSession(writeTempModel(identityModel()), { providers: ['cpu'] });
        const batcher = new MicroBatcher(session, { maxBatch: 3, maxWaitMs: Infinity });
        let settled = 0;
        const first = [1, 2].map(k => batcher.run({ x: new ort.Tensor('float32', Float32Array.of(k), [1, 1]) }).then(r => { settled++; return r; }));
        await new Promise(resolve => setTimeout(resolve, 20));
        expect([settled, batcher.queued]).toEqual([0, 2]);
        batcher.flush();
        expect((await Promise.all(first)).map(r => [r.batchSize, (r.outputs.y.data as Float32Array)[0]])).toEqual([[2, 1], [2, 2]]);
        const full = await Promise.all([3, 4, 5].map(k => batcher.run({ x: new ort.Tensor('float32', Float32Array.of(k), [1, 1]) })));
        expect(full.map(r => r.batchSize)).toEqual([3, 3, 3]);
        expect(batcher.runs).toBe(2);
    });

    it('runs every call alone when a first dimension is fixed', async () => {
        const { session } = await openSession(writeTempModel(identityModel({ width: 2, batch: 1 })), { providers: ['cpu'] });
        const batcher = new MicroBatcher(session, { maxBatch: 32, maxWaitMs: 1000 });
        expect(batcher.batching).toBe(false);
        const results = await Promise.all([1, 2, 3].map(k => batcher.run({ x: new ort.Tensor('float32', Float32Array.of(k, -k), [1, 2]) })));
        expect(results.map(r => r.batchSize)).toEqual([1, 1, 1]);
        expect(results.map(r => Array.from(r.outputs.y.data as Float32Array))).toEqual([[1, -1], [2, -2], [3, -3]]);
    });

    it('rejects every call of a batch when the run fails', async () => {
        const { session } = await openSession(mlpFile, { providers: ['cpu'] });
        const batcher = new MicroBatcher(session, { maxBatch: 8, maxWaitMs: 1000 });
        const bad = [0, 1].map(() => batcher.run({ wrong: new ort.Tensor('float32', new Float32Array(64), [1, 64]) }));
        batcher.flush();
        for (const p of bad) await expect(p).rejects.toThrow();
    });
});

describe('ResponseCache', () => {
    it('counts hits and misses, evicts the least recently used, and expires by the injected clock', () => {
        let now = 0;
        const cache = new ResponseCache<number>({ size: 2, ttl: 10, now: () => now });
        expect(cache.get('a')).toBeUndefined();
        cache.set('a', 1);
        cache.set('b', 2);
        expect(cache.get('a')).toBe(1); // a is now the most recent
        cache.set('c', 3); // evicts b
        expect(cache.get('b')).toBeUndefined();
        expect(cache.get('c')).toBe(3);
        now = 9.5;
        expect(cache.get('a')).toBe(1);
        now = 10;
        expect(cache.get('a')).toBeUndefined(); // stored at 0, ttl 10
        expect([cache.hits, cache.misses]).toEqual([3, 3]);
    });

    it('keys by model, input name, element type, dimensions and bytes', () => {
        const t = (data: Float32Array, dims: number[]): ort.Tensor => new ort.Tensor('float32', data, dims);
        const base = inputKey('m', { x: t(Float32Array.of(1, 2), [1, 2]) });
        expect(inputKey('m', { x: t(Float32Array.of(1, 2), [1, 2]) })).toBe(base);
        expect(inputKey('n', { x: t(Float32Array.of(1, 2), [1, 2]) })).not.toBe(base);
        expect(inputKey('m', { y: t(Float32Array.of(1, 2), [1, 2]) })).not.toBe(base);
        expect(inputKey('m', { x: t(Float32Array.of(1, 2), [2, 1]) })).not.toBe(base);
        expect(inputKey('m', { x: t(Float32Array.of(1, 3), [1, 2]) })).not.toBe(base);
        expect(inputKey('m', { x: new ort.Tensor('int32', Int32Array.of(1065353216, 1073741824), [1, 2]) })).not.toBe(base);
        // The bytes of a view, not of the whole buffer under it.
        const big = Float32Array.of(9, 1, 2, 9);
        expect(inputKey('m', { x: t(big.subarray(1, 3), [1, 2]) })).toBe(base);
    });

    it('stores nothing at size 0 and refuses a ttl that is not positive', () => {
        const off = new ResponseCache<number>({ size: 0, ttl: Infinity, now: () => 0 });
        off.set('a', 1);
        expect(off.get('a')).toBeUndefined();
        expect(() => new ResponseCache<number>({ size: 4, ttl: 0, now: () => 0 })).toThrow(/time-to-live/);
    });
});

it('leaves no profile files behind when profiling is off', () => {
    expect(fs.readdirSync('.').filter(f => f.startsWith('onnxruntime_profile'))).toEqual([]);
});
