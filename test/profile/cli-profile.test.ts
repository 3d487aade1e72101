/**
 * `aimatrix profile` as a user runs it: the built CLI in a child process, in a temporary
 * workspace. The --json document's shape and the stored report, the terminal table, GPU
 * sampling through a fake nvidia-smi on PATH (and its absence), --out keeping ONNX
 * Runtime's profile, and every bad input as one line with the right exit status.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProfileReport } from '../../runtime/profile/profile';
import { ensureBuilt, ROOT } from '../support/build';
import { identityModel, mlpModel, sequenceModel } from '../support/onnx-models';

const BIN = path.join(ROOT, 'bin', 'aimatrix.cjs');
const SILERO_V5 = path.join(ROOT, 'node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');
const QUICK = ['--warmup', '2', '--iterations', '20'];

interface Run { code: number | null; stdout: string; stderr: string }

let work: string;
let bin: string;

function aimatrix(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [BIN, ...args], { cwd: work, env: { ...process.env, AIMATRIX_DEBUG: '', ...env } });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
        child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
        child.on('error', reject);
        child.on('close', code => resolve({ code, stdout, stderr }));
    });
}

/** PATH without any nvidia-smi that the machine may have, so the test says the same everywhere. */
function pathWithout(): string {
    return (process.env.PATH ?? '').split(path.delimiter).filter(d => !fs.existsSync(path.join(d, 'nvidia-smi'))).join(path.delimiter);
}

beforeAll(async () => {
    await ensureBuilt();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-cli-profile-'));
    bin = path.join(work, 'fake-bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(work, 'identity.onnx'), identityModel());
    fs.writeFileSync(path.join(work, 'mlp.onnx'), mlpModel().bytes);
    fs.writeFileSync(path.join(work, 'seq.onnx'), sequenceModel());
    const mlp = mlpModel().bytes;
    fs.writeFileSync(path.join(work, 'truncated.onnx'), mlp.subarray(0, Math.floor(mlp.length / 2)));
    fs.writeFileSync(path.join(work, 'notes.onnx'), 'these are my notes, not a model\n');
    fs.writeFileSync(path.join(work, 'empty.onnx'), '');
}, 120_000);

afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('aimatrix profile --json', () => {
    it('prints one document of the documented shape and stores the same report', async () => {
        const run = await aimatrix(['profile', 'mlp.onnx', '--batch', '1,4', ...QUICK, '--json'], { PATH: pathWithout() });
        expect(run.stderr).toBe('note: nvidia-smi not found: no GPU utilisation or memory samples\n');
        expect(run.code).toBe(0);
        const doc = JSON.parse(run.stdout) as ProfileReport;
        expect(Object.keys(doc)).toEqual(['model', 'inputs', 'runs', 'ops', 'memory', 'gpu']);
        expect(doc.model).toBe('mlp.onnx');
        expect(doc.inputs).toEqual([{ name: 'x', type: 'float32', shape: ['N', 64] }]);
        expect(doc.runs).toHaveLength(2);
        for (const r of doc.runs) {
            expect(Object.keys(r)).toEqual(['provider', 'requestedProvider', 'batch', 'concurrency', 'batching', 'iterations', 'latencyMs', 'throughputPerSec']);
            expect(Object.keys(r.latencyMs)).toEqual(['mean', 'p50', 'p95', 'p99', 'min', 'max']);
            expect(r.provider).toBe('cpu');
        }
        expect(doc.runs.map(r => r.batch)).toEqual([1, 4]);
        expect(doc.ops.length).toBe(3);
        for (const o of doc.ops) expect(Object.keys(o)).toEqual(['name', 'opType', 'provider', 'calls', 'totalMs', 'meanUs', 'share']);
        expect(Object.keys(doc.memory)).toEqual(['rssBeforeMb', 'rssAfterMb']);
        expect(doc.gpu).toBeNull();

        const stored = fs.readdirSync(path.join(work, '.aimatrix', 'profiles'));
        const match = stored.map(f => JSON.parse(fs.readFileSync(path.join(work, '.aimatrix', 'profiles', f), 'utf8')) as ProfileReport)
            .find(r => JSON.stringify(r) === JSON.stringify(doc));
        expect(match, 'the stored report equals the printed one').toBeDefined();
        // Written atomically: no temporary file left behind.
        expect(stored.every(f => /^\d{8}-\d{6}-\d{3}-[0-9a-f]{6}\.json$/.test(f))).toBe(true);
    });

    it('samples a GPU through nvidia-smi on PATH', async () => {
        const smi = path.join(bin, 'nvidia-smi');
        fs.writeFileSync(smi, '#!/bin/sh\n# a fake nvidia-smi: two GPUs, in loop mode\nwhile true; do echo "0, 42, 1234"; echo "1, 7, 99"; sleep 0.05; done\n', { mode: 0o755 });
        try {
            const run = await aimatrix(['profile', 'identity.onnx', ...QUICK, '--json'], { PATH: `${bin}${path.delimiter}${pathWithout()}` });
            expect(run.code).toBe(0);
            expect(run.stderr).toBe('');
            const doc = JSON.parse(run.stdout) as ProfileReport;
            expect(doc.gpu).not.toBeNull();
            expect(doc.gpu!.length).toBeGreaterThanOrEqual(2);
            expect(doc.gpu![0]).toEqual({ run: 0, tMs: expect.any(Number), index: 0, utilizationPct: 42, memoryUsedMb: 1234 });
            expect(doc.gpu!.find(s => s.index === 1)).toMatchObject({ utilizationPct: 7, memoryUsedMb: 99 });
        } finally {
            fs.rmSync(smi);
        }
    });

    it('says so once when nvidia-smi fails', async () => {
        const smi = path.join(bin, 'nvidia-smi');
        fs.writeFileSync(smi, '#!/bin/sh\necho "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver." >&2\nexit 9\n', { mode: 0o755 });
        try {
            const run = await aimatrix(['profile', 'identity.onnx', '--batch', '1,2', ...QUICK, '--json'], { PATH: `${bin}${path.delimiter}${pathWithout()}` });
            expect(run.code).toBe(0);
            expect(run.stderr).toBe("note: nvidia-smi failed (exit status 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.): no GPU samples\n");
            expect((JSON.parse(run.stdout) as ProfileReport).gpu).toBeNull();
        } finally {
            fs.rmSync(smi);
        }
    });
});

describe('aimatrix profile on a terminal', () => {
    it('prints a table of runs and operators, and keeps ONNX Runtime\'s profile with --out', async () => {
        const run = await aimatrix(['profile', SILERO_V5, ...QUICK, '--threads', '1', '--provider', 'cpu', '--out', 'silero-trace.json'], { PATH: pathWithout() });
        expect(run.code).toBe(0);
        const lines = run.stdout.split('\n');
        expect(lines[1]).toBe('inputs input float32 [batch, 512], state float32 [2, batch, 128], sr int64 []');
        expect(lines.find(l => l.startsWith('provider'))).toMatch(/^provider\s+batch\s+callers\s+calls\s+mean\s+p50\s+p95\s+p99\s+min\s+max\s+items\/s$/);
        expect(lines.find(l => /^cpu\s+1\s+1\s+20\s/.test(l))).toBeDefined();
        expect(lines.find(l => l.startsWith('operator'))).toMatch(/type\s+provider\s+calls\s+total\s+mean\s+share$/);
        expect(run.stdout).toMatch(/CPUExecutionProvider/);
        expect(run.stdout).toMatch(/^memory \(RSS\) [\d.]+ MB before, [\d.]+ MB after/m);
        expect(run.stdout).toMatch(/^stored .*\.aimatrix[/\\]profiles[/\\].*\.json$/m);
        // The assumptions for Silero are said on stderr, each once.
        expect(run.stderr).toContain("note: input[1] = 512 (assumed");
        expect(run.stderr).toContain('note: sr = 16000 (assumed: a sample rate in Hz)');
        expect(run.stderr).toContain('silero-trace.json');
        const trace = JSON.parse(fs.readFileSync(path.join(work, 'silero-trace.json'), 'utf8')) as { name: string }[];
        expect(trace.some(e => e.name.endsWith('_kernel_time'))).toBe(true);
    });

    it('shows micro-batching beside unbatched calls and the gain', async () => {
        const run = await aimatrix(['profile', 'mlp.onnx', '--concurrency', '4', '--warmup', '2', '--iterations', '40'], { PATH: pathWithout() });
        expect(run.code).toBe(0);
        expect(run.stdout).toMatch(/^cpu\s+1\s+4\s+none\s+40\s/m);
        expect(run.stdout).toMatch(/^cpu\s+1\s+4\s+micro \([\d.]+\/run\)\s+40\s/m);
        expect(run.stdout).toMatch(/^micro-batching, cpu batch 1: [\d.]+× the throughput of 4 unbatched callers$/m);
    });
});

describe('aimatrix profile: bad input is one line and a non-zero exit', () => {
    const cases: [string, string[], number, RegExp][] = [
        ['a missing file', ['profile', 'missing.onnx'], 1, /^aimatrix: missing\.onnx: model file not found$/],
        ['a truncated model', ['profile', 'truncated.onnx'], 1, /^aimatrix: truncated\.onnx: (not an ONNX model|cannot load the model)/],
        ['a text file', ['profile', 'notes.onnx'], 1, /^aimatrix: notes\.onnx: not an ONNX model/],
        ['an empty file', ['profile', 'empty.onnx'], 1, /^aimatrix: empty\.onnx: not an ONNX model: the file is empty$/],
        ['a folder', ['profile', '.'], 1, /^aimatrix: \.: is a folder/],
        ['an unknown provider', ['profile', 'mlp.onnx', '--provider', 'gpu'], 2, /^aimatrix: option '--provider <name>' argument 'gpu' is invalid\. unknown execution provider 'gpu' \(known: tensorrt, cuda, dml, coreml, webgpu, cpu\)/],
        ['a dimension nothing fixes', ['profile', 'seq.onnx'], 2, /^aimatrix: dimension 'T' \(x\[1\]\) of the model is dynamic and is not the batch dimension: fix it with --dim T=SIZE$/],
        ['--dim on a dimension the model lacks', ['profile', 'seq.onnx', '--dim', 'T=3', '--dim', 'L=2'], 2, /^aimatrix: --dim L: the model has no such dynamic dimension/],
        ['--dim without a size', ['profile', 'seq.onnx', '--dim', 'T'], 2, /^aimatrix: --dim 'T': expected NAME=SIZE/],
        ['--dim on the batch dimension', ['profile', 'seq.onnx', '--dim', 'T=3', '--dim', 'N=2'], 2, /^aimatrix: --dim N: that is the batch dimension/],
        ['--batch 0', ['profile', 'mlp.onnx', '--batch', '0'], 2, /^aimatrix: option '--batch <sizes>' argument '0' is invalid/],
        ['--batch 1,x', ['profile', 'mlp.onnx', '--batch', '1,x'], 2, /^aimatrix: option '--batch <sizes>' argument '1,x' is invalid/],
        ['--iterations 0', ['profile', 'mlp.onnx', '--iterations', '0'], 2, /is invalid\. expected a whole number ≥ 1/],
        ['--concurrency two', ['profile', 'mlp.onnx', '--concurrency', 'two'], 2, /is invalid/],
        ['--duration 0', ['profile', 'mlp.onnx', '--duration', '0'], 2, /expected a positive number of seconds/],
        ['--threads 0', ['profile', 'mlp.onnx', '--threads', '0'], 2, /is invalid/],
        ['--iterations with --duration', ['profile', 'mlp.onnx', '--iterations', '5', '--duration', '1'], 2, /^aimatrix: give either --iterations or --duration, not both$/],
        ['--batch 4 on a model without a batch dimension', ['profile', 'fixed.onnx', '--batch', '4'], 2, /only --batch 1 applies$/],
        ['an unknown option', ['profile', 'mlp.onnx', '--fast'], 2, /^aimatrix: unknown option '--fast'/],
        ['no model', ['profile'], 2, /^aimatrix: missing required argument 'model'/]
    ];

    beforeAll(() => {
        fs.writeFileSync(path.join(work, 'fixed.onnx'), identityModel({ batch: 1 }));
    });

    it.concurrent.each(cases)('%s', async (_what, args, code, message) => {
        const run = await aimatrix(args, { PATH: pathWithout() });
        expect(run.code).toBe(code);
        const lines = run.stderr.split('\n').filter(l => l.length > 0 && !l.startsWith('note: nvidia-smi not found'));
        expect(lines, run.stderr).toHaveLength(1);
        expect(lines[0]).toMatch(message);
        expect(run.stderr).not.toMatch(/\n\s+at /);
        expect(run.stdout).toBe('');
    });
});
