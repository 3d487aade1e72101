/**
 * The warehouse example through the built CLI, as a user runs it: KPIs in --json, inference
 * spans and the chosen provider in the trace, the provider fallback said once per worker on
 * stderr, and the same numbers with one worker or two.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferenceUse, InstantRecord, SpanRecord, TraceRecord } from '../../protocol/index.js';
import { ensureBuilt, ROOT } from '../support/build.js';

const BIN = path.join(ROOT, 'bin', 'aimatrix.cjs');
let dir: string;

interface Run { code: number | null; stdout: string; stderr: string }

function aimatrix(args: string[]): Promise<Run> {
    return new Promise(resolve => {
        execFile(process.execPath, [BIN, ...args], { cwd: dir, env: { ...process.env, AIMATRIX_DEBUG: '' }, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
            resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
        });
    });
}

beforeAll(async () => {
    await ensureBuilt();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-warehouse-'));
    fs.cpSync(path.join(ROOT, 'examples', 'warehouse'), dir, { recursive: true });
}, 300_000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Report { state: string; points: { kpis: Record<string, { mean: number; n: number }> }[]; errors: unknown[]; inference?: InferenceUse[] }

describe('examples/warehouse through `aimatrix run`', () => {
    it('runs end to end: KPIs, inference spans with provider and batch, and the same numbers with 1 and 2 workers', async () => {
        const args = ['run', 'warehouse.twin', '--experiment', 'Month', '--replications', '4', '--horizon', '3d', '--json'];
        const one = await aimatrix([...args, '--workers', '1', '--trace', 'one.jsonl']);
        expect(one.code, one.stderr).toBe(0);
        const report = JSON.parse(one.stdout) as Report;
        expect(report.state).toBe('completed');
        expect(report.errors).toEqual([]);
        const kpis = report.points[0].kpis;
        expect(kpis.purchases.n).toBe(4);
        expect(kpis.purchases.mean).toBeGreaterThan(0);
        expect(Number.isFinite(kpis.leadTime.mean)).toBe(true);
        // How the model was used, summed over the 4 replications: one Replenisher calling every hour for 3 days.
        const [use] = report.inference!;
        expect(report.inference).toHaveLength(1);
        expect(use).toMatchObject({ model: 'DemandForecast', calls: 4 * 72 });
        expect(use.cacheHits + use.cacheMisses).toBe(use.calls);
        expect(use.runs).toBe(use.cacheMisses); // one agent: nothing to batch with
        // CUDA/TensorRT are not on this machine: one line per worker says so, naming both providers.
        const warnings = one.stderr.split('\n').filter(l => l.startsWith('warning:'));
        expect(warnings.length).toBe(1);
        expect(warnings[0]).toMatch(/^warning: model 'DemandForecast': provider '\w+' is not available here; using '\w+'$/);

        const records = fs.readFileSync(path.join(dir, 'one.jsonl'), 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l) as TraceRecord);
        const spans = records.filter((r): r is SpanRecord => r.kind === 'span' && r.cat === 'inference');
        expect(spans.length).toBe(72); // every hour for 3 days
        expect(spans[0]).toMatchObject({ name: 'DemandForecast', subject: 'Replenisher#1', start: 3600, end: 3600 });
        expect(Object.keys(spans[0].attrs ?? {}).sort()).toEqual(['batch', 'cacheHit', 'model', 'provider', 'queueWaitUs', 'runUs']);
        const loaded = records.find((r): r is InstantRecord => r.kind === 'instant' && r.name === 'model loaded');
        expect(loaded?.attrs?.provider).toBe(spans[0].attrs?.provider);
        expect(loaded?.attrs?.fallback).toMatch(/is not available here; using/);

        const two = await aimatrix([...args, '--workers', '2']);
        expect(two.code, two.stderr).toBe(0);
        const twoReport = JSON.parse(two.stdout) as Report;
        expect(twoReport.points).toEqual(report.points);
        expect(twoReport.inference).toEqual(report.inference);
        // Each worker loads the model and falls back; the warning is said once.
        expect(two.stderr.split('\n').filter(l => l.startsWith('warning:'))).toEqual(warnings);
    }, 120_000);
});

describe('a model onnxruntime cannot load', () => {
    it('stops the run with one line naming the declaration, the agents that call it and the file', async () => {
        const { onnx } = await import('onnx-proto');
        const float = onnx.TensorProto.DataType.FLOAT;
        const info = (name: string) => onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: float, shape: { dim: [{ dimParam: 'N' }, { dimValue: 1 }] } } } });
        // Valid ONNX that the language server reads happily, with an operator no runtime has.
        const bytes = onnx.ModelProto.encode(onnx.ModelProto.create({
            irVersion: 8, opsetImport: [{ domain: '', version: 13 }],
            graph: onnx.GraphProto.create({ name: 'bad', node: [onnx.NodeProto.create({ opType: 'NoSuchOp', input: ['x'], output: ['y'] })], input: [info('x')], output: [info('y')] })
        })).finish();
        fs.mkdirSync(path.join(dir, 'bad', 'models'), { recursive: true });
        fs.writeFileSync(path.join(dir, 'bad', 'models', 'm.onnx'), bytes);
        fs.writeFileSync(path.join(dir, 'bad', 't.twin'), 'import "a.agent"\ntwin T {\n  population Crowd of Caller count 2\n  kpi total = sum(Crowd.total)\n}\n');
        fs.writeFileSync(path.join(dir, 'bad', 'a.agent'), `import "t.twin"
system S {
  model M {
    file "models/m.onnx"
    input x: float32 [N, 1]
    output y: float32 [N, 1]
  }
  agent Caller {
    state total = 0
    every 1 h {
      let r = infer M(x: [1])
      set total += r.y
    }
  }
}
`);
        const run = await aimatrix(['run', 'bad/t.twin', '--horizon', '3h']);
        expect(run.code).toBe(1);
        const lines = run.stderr.split('\n').filter(Boolean);
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/^aimatrix: bad\/t\.twin: bad\/a\.agent:3:3: model 'M' \(called by Caller\): .*m\.onnx: cannot load the model: .*NoSuchOp/);
        expect(run.stderr).not.toMatch(/\n\s+at /);
    }, 60_000);
});
