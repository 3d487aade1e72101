/**
 * profileModel end to end, in process: the generated identity and MLP models and Silero VAD
 * v5 (a production model from an npm package) profiled on the CPU; providers compared with
 * a fallback said; micro-batched runs beside unbatched ones, and micro-batched outputs
 * equal to what each call answers alone.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { readOnnxMetadata } from '../../language-server/src/onnx-metadata';
import { availableProviders } from '../../runtime/inference/providers';
import { makeFeeds, planInputs } from '../../runtime/profile/inputs';
import { compareBatched, profileModel, ProfileError, ProfileUsageError, type ProfileProgress, type ProfileReport } from '../../runtime/profile/profile';
import { identityModel, mlpForward, mlpModel, removeTempModels, sequenceModel, writeTempModel } from '../support/onnx-models';

const SILERO_V5 = path.resolve(__dirname, '../../node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');
afterAll(removeTempModels);

const QUICK = { warmup: 3, iterations: 30, opRuns: 3, nvidiaSmi: null } as const;

function checkRunShape(report: ProfileReport): void {
    for (const run of report.runs) {
        const l = run.latencyMs;
        expect(l.min).toBeGreaterThan(0);
        expect(l.min).toBeLessThanOrEqual(l.p50);
        expect(l.p50).toBeLessThanOrEqual(l.p95);
        expect(l.p95).toBeLessThanOrEqual(l.p99);
        expect(l.p99).toBeLessThanOrEqual(l.max);
        expect(l.mean).toBeGreaterThanOrEqual(l.min);
        expect(l.mean).toBeLessThanOrEqual(l.max);
        expect(run.throughputPerSec).toBeGreaterThan(0);
    }
}

describe('profileModel', () => {
    it('profiles the identity model at several batch sizes', async () => {
        const progress: ProfileProgress[] = [];
        const report = await profileModel({ model: writeTempModel(identityModel({ width: 4 })), batches: [1, 8], ...QUICK }, p => progress.push(p));
        expect(report.inputs).toEqual([{ name: 'x', type: 'float32', shape: ['N', 4] }]);
        expect(report.runs.map(r => [r.provider, r.requestedProvider, r.batch, r.concurrency, r.batching, r.iterations]))
            .toEqual([['cpu', 'cpu', 1, 1, 'none', 30], ['cpu', 'cpu', 8, 1, 'none', 30]]);
        checkRunShape(report);
        expect(report.ops.map(o => o.opType)).toEqual(['Identity']);
        expect(report.ops[0].calls).toBe(3);
        expect(report.memory.rssBeforeMb).toBeGreaterThan(10);
        expect(report.memory.rssAfterMb).toBeGreaterThan(10);
        expect(report.gpu).toBeNull();
        expect(progress.filter(p => p.kind === 'run')).toHaveLength(2);
    });

    it('profiles the MLP by duration, with its Gemm layers in the breakdown, and the model computes what the JS reference says', async () => {
        const mlp = mlpModel();
        const file = writeTempModel(mlp.bytes, 'mlp.onnx');
        const report = await profileModel({ model: file, durationSec: 0.05, warmup: 2, opRuns: 2, threads: 1, nvidiaSmi: null });
        expect(report.runs).toHaveLength(1);
        expect(report.runs[0].iterations).toBeGreaterThan(1);
        checkRunShape(report);
        expect(report.ops.map(o => o.name).sort()).toEqual(['fused gemm0', 'fused gemm1', 'gemm2']);
        // The inputs the profiler generates are the model's: run them and compare with plain JavaScript.
        const plan = planInputs(readOnnxMetadata(mlp.bytes).inputs, new Map());
        const feeds = makeFeeds(plan, 3);
        const session = await ort.InferenceSession.create(file);
        const y = (await session.run(feeds)).y.data as Float32Array;
        const ref = mlpForward(mlp, feeds.x.data as Float32Array);
        expect(Math.max(...Array.from(y, (v, i) => Math.abs(v - ref[i])))).toBeLessThan(1e-5);
        await session.release();
    });

    it('profiles Silero VAD v5 out of the box, with a non-empty operator breakdown naming its provider', async () => {
        const notes: string[] = [];
        const report = await profileModel({ model: SILERO_V5, ...QUICK, threads: 1 }, p => { if (p.kind === 'note') notes.push(p.message); });
        expect(report.inputs).toEqual([
            { name: 'input', type: 'float32', shape: ['batch', 512] },
            { name: 'state', type: 'float32', shape: [2, 'batch', 128] },
            { name: 'sr', type: 'int64', shape: [] }
        ]);
        expect(report.runs.map(r => r.provider)).toEqual(['cpu']);
        checkRunShape(report);
        expect(report.ops.length).toBeGreaterThan(20);
        expect(new Set(report.ops.map(o => o.provider))).toEqual(new Set(['CPUExecutionProvider']));
        expect(report.ops.map(o => o.opType)).toContain('LSTM');
        expect(report.ops.reduce((s, o) => s + o.share, 0)).toBeLessThanOrEqual(1 + 1e-9);
        expect(notes.some(n => n.startsWith('sr = 16000'))).toBe(true);
    });

    it('compares providers side by side and says which one ran', async () => {
        const missing = (['cuda', 'tensorrt', 'dml', 'coreml'] as const).find(p => !availableProviders().includes(p));
        expect(missing, 'some provider is missing on this machine').toBeDefined();
        const warnings: string[] = [];
        const report = await profileModel({ model: writeTempModel(identityModel()), providers: [missing!, 'cpu'], ...QUICK },
            p => { if (p.kind === 'warning') warnings.push(p.message); });
        expect(report.runs.map(r => [r.requestedProvider, r.provider])).toEqual([[missing, 'cpu'], ['cpu', 'cpu']]);
        expect(warnings).toEqual([`provider '${missing}' is not available here; using 'cpu'`]);
        // Both fell back to the CPU: its breakdown is there once.
        expect(report.ops).toHaveLength(1);
    });

    it('measures unbatched and micro-batched calls with concurrency', async () => {
        const report = await profileModel({ model: writeTempModel(mlpModel().bytes), concurrency: 8, ...QUICK, iterations: 64 });
        expect(report.runs.map(r => [r.batching, r.concurrency, r.iterations])).toEqual([['none', 8, 64], ['micro', 8, 64]]);
        checkRunShape(report);
        const micro = report.runs[1];
        // 8 callers in step through a batcher of 8: every timed run merges all 8 (the warm-up's runs are not counted).
        expect(micro.mergedCalls).toBe(8);
        expect(report.runs[0].mergedCalls).toBeUndefined();
    });

    it('leaves micro-batching out for a model that cannot be batched, and says why', async () => {
        const notes: string[] = [];
        const report = await profileModel({ model: SILERO_V5, concurrency: 4, ...QUICK, opRuns: 0 }, p => { if (p.kind === 'note') notes.push(p.message); });
        expect(report.runs.map(r => r.batching)).toEqual(['none']);
        expect(report.ops).toEqual([]);
        expect(notes.some(n => n.startsWith('micro-batching not measured'))).toBe(true);
    });

    it('fails with one clear line on bad input', async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-profile-bad-'));
        try {
            await expect(profileModel({ model: path.join(dir, 'nope.onnx') })).rejects.toThrow(new ProfileError(`${path.join(dir, 'nope.onnx')}: model file not found`));
            fs.writeFileSync(path.join(dir, 'text.onnx'), 'hello, not a model');
            await expect(profileModel({ model: path.join(dir, 'text.onnx') })).rejects.toThrow(/text\.onnx: not an ONNX model/);
            const seq = writeTempModel(sequenceModel());
            await expect(profileModel({ model: seq })).rejects.toThrow(ProfileUsageError);
            await expect(profileModel({ model: seq, dims: { T: 0 } })).rejects.toThrow(/--dim T=0/);
            await expect(profileModel({ model: seq, providers: ['gpu'] })).rejects.toThrow("unknown execution provider 'gpu'");
            await expect(profileModel({ model: seq, iterations: 5, durationSec: 1 })).rejects.toThrow(/either --iterations or --duration/);
            await expect(profileModel({ model: seq, batches: [0] })).rejects.toThrow(ProfileUsageError);
            const fixed = writeTempModel(identityModel({ batch: 2 }));
            await expect(profileModel({ model: fixed, batches: [4], nvidiaSmi: null })).rejects.toThrow(/only --batch 1 applies/);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});

describe('compareBatched', () => {
    it('finds micro-batched outputs equal to unbatched ones (MLP, identity, two dynamic dimensions)', async () => {
        for (const [bytes, dims] of [[mlpModel().bytes, {}], [identityModel({ width: 5 }), {}], [sequenceModel(), { T: 3 }]] as const) {
            const session = await ort.InferenceSession.create(bytes);
            const plan = planInputs(readOnnxMetadata(bytes).inputs, new Map(Object.entries(dims)));
            const callers = Array.from({ length: 6 }, (_, c) => makeFeeds(plan, 1 + (c % 2), 10 + c));
            // Callers with 1 and 2 rows: the batcher merges them into one run and splits it back.
            expect(await compareBatched(session, callers)).toEqual({ maxDiff: 0, largestBatch: 6 });
            await session.release();
        }
    });
});

describe('profileModel with a duration shorter than one call', () => {
    it('still times at least one call per caller, alone and with concurrent callers, instead of failing on no samples', async () => {
        const model = writeTempModel(identityModel({ width: 4 }));
        const report = await profileModel({ model, concurrency: 3, durationSec: 1e-9, warmup: 0, opRuns: 0, nvidiaSmi: null });
        expect(report.runs.map(r => r.batching)).toEqual(['none', 'micro']);
        for (const run of report.runs) expect(run.iterations).toBeGreaterThanOrEqual(3);
        checkRunShape(report);
        const alone = await profileModel({ model, durationSec: 1e-9, warmup: 0, opRuns: 0, nvidiaSmi: null });
        expect(alone.runs[0].iterations).toBeGreaterThanOrEqual(1);
    });
});

describe('profileModel when a timed run fails', () => {
    it('stops the GPU sampler: no nvidia-smi is left running (it kept the CLI from exiting)', async () => {
        const T = onnx.TensorProto.DataType;
        const vi = (name: string, dims: (number | string)[]): onnx.ValueInfoProto => onnx.ValueInfoProto.create({
            name, type: { tensorType: { elemType: T.FLOAT, shape: { dim: dims.map(d => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } }
        });
        // x: [N, 4] reshaped to [3]: loads, and fails at every run.
        const shape = onnx.TensorProto.create({ name: 's', dims: [1], dataType: T.INT64, rawData: new Uint8Array(new BigInt64Array([3n]).buffer) });
        const graph = onnx.GraphProto.create({
            name: 'bad', node: [onnx.NodeProto.create({ opType: 'Reshape', name: 'r', input: ['x', 's'], output: ['y'] })],
            initializer: [shape], input: [vi('x', ['N', 4])], output: [vi('y', [3])]
        });
        const model = writeTempModel(onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, producerName: 'aimatrix test', opsetImport: [{ domain: '', version: 13 }], graph })).finish(), 'bad-reshape.onnx');
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-smi-'));
        const pidFile = path.join(dir, 'pid');
        const smi = path.join(dir, 'nvidia-smi');
        fs.writeFileSync(smi, `#!${process.execPath}\nrequire('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid));\nsetInterval(() => console.log('0, 5, 100'), 20);\n`, { mode: 0o755 });
        let pid: number | undefined;
        try {
            await expect(profileModel({ model, warmup: 0, iterations: 5, opRuns: 0, nvidiaSmi: smi })).rejects.toThrow(ProfileError);
            // A sampler still running writes its pid (a node process starts in well under a second); one stopped at once never does.
            for (let i = 0; i < 100 && !fs.existsSync(pidFile); i++) await new Promise(resolve => setTimeout(resolve, 10));
            let alive = false;
            if (fs.existsSync(pidFile)) {
                pid = Number(fs.readFileSync(pidFile, 'utf8'));
                try { process.kill(pid, 0); alive = true; } catch { alive = false; }
            }
            expect(alive).toBe(false);
        } finally {
            if (pid !== undefined) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});

describe('profileModel --out', () => {
    it('a folder or a path through a file is a usage error before any run, not an EISDIR after all of them', async () => {
        const model = writeTempModel(identityModel({ width: 4 }));
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-out-'));
        try {
            fs.writeFileSync(path.join(dir, 'file'), 'x');
            for (const [out, message] of [[dir, /is a folder; give a file name/], [path.join(dir, 'file', 'p.json'), /is a file, not a folder/]] as const) {
                const progress: ProfileProgress[] = [];
                await expect(profileModel({ model, keepProfile: out, ...QUICK }, p => progress.push(p))).rejects.toThrow(message);
                await expect(profileModel({ model, keepProfile: out, ...QUICK })).rejects.toBeInstanceOf(ProfileUsageError);
                expect(progress.filter(p => p.kind === 'run')).toEqual([]);
            }
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
