/**
 * Parsing ONNX Runtime's JSON profile into operator rows: on a profile that a real session
 * writes (the MLP and Silero VAD v5, whose If nodes nest subgraph kernels), and on
 * hand-made events whose self times are known.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { findProfileFile, parseOrtProfile } from '../../runtime/profile/op-profile';
import { mlpModel, randomFloats } from '../support/onnx-models';

const SILERO_V5 = path.resolve(__dirname, '../../node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-op-profile-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs `runs` times with ORT's profiler on and returns the parsed JSON document it wrote. */
async function realProfile(model: string | Uint8Array, feeds: Record<string, ort.Tensor>, runs: number, name: string): Promise<unknown> {
    const prefix = path.join(dir, name);
    const session = await ort.InferenceSession.create(model as string, { enableProfiling: true, profileFilePrefix: prefix, graphOptimizationLevel: 'all', intraOpNumThreads: 1, interOpNumThreads: 1 });
    for (let i = 0; i < runs; i++) await session.run(feeds);
    session.endProfiling();
    await session.release();
    const file = findProfileFile(prefix);
    expect(file, 'ORT wrote a profile').toBeDefined();
    return JSON.parse(fs.readFileSync(file!, 'utf8'));
}

describe('parseOrtProfile on real profiles', () => {
    it('gives the MLP its three Gemm layers (two fused with Relu), each called once per counted run', async () => {
        const doc = await realProfile(mlpModel().bytes, { x: new ort.Tensor('float32', randomFloats(64), [1, 64]) }, 6, 'mlp');
        const parsed = parseOrtProfile(doc, 1);
        expect(parsed.runs).toBe(5);
        expect(parsed.ops.map(o => o.opType).sort()).toEqual(['FusedGemm', 'FusedGemm', 'Gemm']);
        for (const op of parsed.ops) {
            expect(op.provider).toBe('CPUExecutionProvider');
            expect(op.calls).toBe(5);
            expect(op.meanUs).toBeCloseTo(op.totalMs * 1000 / op.calls, 9);
            expect(op.share).toBeGreaterThan(0);
            expect(op.name).toMatch(/gemm[0-2]/);
        }
        const shares = parsed.ops.reduce((s, o) => s + o.share, 0);
        expect(shares).toBeLessThanOrEqual(1 + 1e-9);
        expect(parsed.kernelMs).toBeLessThanOrEqual(parsed.runMs);
        // Sorted by total time, largest first.
        for (let i = 1; i < parsed.ops.length; i++) expect(parsed.ops[i - 1].totalMs).toBeGreaterThanOrEqual(parsed.ops[i].totalMs);
        // Without skipping, the first (allocating) run is counted too.
        expect(parseOrtProfile(doc, 0).ops[0].calls).toBe(6);
    });

    it('breaks Silero VAD v5 down into its operators with self times that never exceed the runs', async () => {
        const feeds = {
            input: new ort.Tensor('float32', randomFloats(512), [1, 512]),
            state: new ort.Tensor('float32', new Float32Array(256), [2, 1, 128]),
            sr: new ort.Tensor('int64', BigInt64Array.from([16000n]), [])
        };
        const parsed = parseOrtProfile(await realProfile(SILERO_V5, feeds, 4, 'silero'), 1);
        expect(parsed.runs).toBe(3);
        const types = new Set(parsed.ops.map(o => o.opType));
        for (const t of ['If', 'LSTM', 'Conv']) expect(types, t).toContain(t);
        expect(parsed.ops.length).toBeGreaterThan(20);
        // If nodes contain their subgraph's kernels: counted as self time the total stays below the runs' wall time.
        expect(parsed.kernelMs).toBeGreaterThan(0);
        expect(parsed.kernelMs).toBeLessThanOrEqual(parsed.runMs);
        expect(parsed.ops.reduce((s, o) => s + o.share, 0)).toBeLessThanOrEqual(1 + 1e-9);
        expect(parsed.ops.every(o => o.provider === 'CPUExecutionProvider')).toBe(true);
    });
});

describe('parseOrtProfile on known events', () => {
    const kernel = (name: string, op: string, ts: number, dur: number, tid = 1) =>
        ({ cat: 'Node', name: `${name}_kernel_time`, ts, dur, tid, ph: 'X', args: { op_name: op, provider: 'CPUExecutionProvider' } });
    const run = (ts: number, dur: number) => ({ cat: 'Session', name: 'model_run', ts, dur, tid: 1, ph: 'X', args: {} });

    it('subtracts nested kernels from their parent and skips the first run', () => {
        const doc = [
            { cat: 'Session', name: 'session_initialization', ts: 0, dur: 50, args: {} },
            run(100, 100), kernel('a', 'MatMul', 110, 50),
            run(300, 100),
            kernel('if', 'If', 300, 80), kernel('inner', 'Add', 310, 30), kernel('deeper', 'Mul', 315, 10), kernel('inner2', 'Add', 350, 20),
            kernel('a', 'MatMul', 385, 10),
            // Same interval on another thread: not nested.
            kernel('other', 'Relu', 320, 5, 2),
            { cat: 'Node', name: 'a_fence_before', ts: 301, dur: 1, args: {} },
            'garbage', null, { cat: 'Node', name: 'x_kernel_time' }
        ];
        const parsed = parseOrtProfile(doc, 1);
        const byName = Object.fromEntries(parsed.ops.map(o => [o.name, o]));
        expect(Object.keys(byName).sort()).toEqual(['a', 'deeper', 'if', 'inner', 'inner2', 'other']);
        expect(byName.if.totalMs).toBeCloseTo((80 - 30 - 20) / 1000, 12);
        expect(byName.inner.totalMs).toBeCloseTo(20 / 1000, 12);
        expect(byName.deeper.totalMs).toBeCloseTo(10 / 1000, 12);
        expect(byName.a.calls).toBe(1);
        expect(byName.a.meanUs).toBe(10);
        expect(byName.a.share).toBeCloseTo(0.1, 12);
        expect(parsed.runs).toBe(1);
        expect(parsed.runMs).toBe(0.1);
        expect(parsed.kernelMs).toBeCloseTo((30 + 20 + 10 + 20 + 10 + 5) / 1000, 12);
    });

    it('rejects a document that is not an event array', () => {
        expect(() => parseOrtProfile({ traceEvents: [] })).toThrow(/not an ONNX Runtime profile/);
    });
});

describe('findProfileFile', () => {
    it('finds the newest file with the prefix, and nothing when there is none', () => {
        const sub = fs.mkdtempSync(path.join(dir, 'find-'));
        expect(findProfileFile(path.join(sub, 'p'))).toBeUndefined();
        fs.writeFileSync(path.join(sub, 'p_2026-01-01_00-00-00.json'), '[]');
        fs.utimesSync(path.join(sub, 'p_2026-01-01_00-00-00.json'), new Date(1000), new Date(1000));
        fs.writeFileSync(path.join(sub, 'p_2026-01-02_00-00-00.json'), '[]');
        fs.writeFileSync(path.join(sub, 'q_2026-01-03_00-00-00.json'), '[]');
        expect(path.basename(findProfileFile(path.join(sub, 'p'))!)).toBe('p_2026-01-02_00-00-00.json');
        expect(findProfileFile(path.join(dir, 'no-such-folder', 'p'))).toBeUndefined();
    });
});
