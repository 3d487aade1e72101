/**
 * The experiment runner on real worker threads, with the fake model: results keyed by
 * (point, replication) whatever the number of workers, common random numbers across
 * points, cancellation that keeps what was finished, and a failing replication that
 * loses nothing else; a trace that cannot be written fails its replication with the reason.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runExperiment, ModelLoadError, type Progress, type RunnerPlan } from '../../runtime/experiment/runner.js';
import { endIdleWorkers, idleWorkers } from '../../runtime/experiment/worker-pool.js';
import { createFakeModel } from './fake-model.js';
import { buildFakeWorker } from './support.js';
import { readTrace, writeBinaryTraceHeader } from '../../runtime/trace/read.js';

let entry: string;
beforeAll(async () => { entry = await buildFakeWorker(); });
afterAll(() => { fs.rmSync(entry, { force: true }); });

function plan(overrides: Array<Record<string, number>>, replications: number, seed = 7): RunnerPlan {
    return { points: overrides.map(o => ({ overrides: o })), replications, seed, horizon: Infinity, warmup: 0 };
}

describe('runExperiment', () => {
    it('gives identical outcomes with 1 and 3 workers, equal to running the model in-process', async () => {
        const p = plan([{ mean: 60 }, { mean: 120 }], 5);
        const one = await runExperiment({ workerEntry: entry, source: {}, plan: p, workers: 1 }).result;
        const three = await runExperiment({ workerEntry: entry, source: {}, plan: p, workers: 3 }).result;
        expect(one.state).toBe('completed');
        expect(one.twin).toBe('Fake');
        expect(one.kpis).toEqual([{ name: 'value', unit: 'min' }, { name: 'count', unit: undefined }]);
        expect(three.outcomes).toEqual(one.outcomes);
        expect(three.events).toBe(one.events);
        expect(one.events).toBe(2 * 5 * 2000);
        const model = createFakeModel({});
        for (let r = 0; r < 5; r++) {
            const direct = model.runReplication({ seed: 7, replication: r, horizon: Infinity, warmup: 0, overrides: { mean: 120 } });
            expect(one.outcomes[1][r]).toEqual({ status: 'completed', kpis: direct.kpis, events: direct.events, simTime: direct.simTime, entities: direct.entities });
        }
        // Common random numbers: replication r of both points uses the same stream, so the values scale exactly with the mean.
        for (let r = 0; r < 5; r++) {
            const a = one.outcomes[0][r]!;
            const b = one.outcomes[1][r]!;
            if (a.status !== 'completed' || b.status !== 'completed') throw new Error('not completed');
            expect(b.kpis.value / a.kpis.value).toBeCloseTo(2, 10);
        }
        // Different replications differ.
        const values = one.outcomes[0].map(o => o?.status === 'completed' ? o.kpis.value : NaN);
        expect(new Set(values).size).toBe(5);
    });

    it('reports progress up to the total', async () => {
        const seen: number[] = [];
        let last: Progress | undefined;
        const r = await runExperiment({ workerEntry: entry, source: {}, plan: plan([{}], 4), workers: 2, onProgress: p => { seen.push(p.done); last = p; } }).result;
        expect(r.state).toBe('completed');
        expect(seen.at(-1)).toBe(4);
        expect(last).toMatchObject({ done: 4, total: 4, failed: 0, events: 4 * 2000, etaSeconds: 0 });
        expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    });

    it('keeps the other replications when one fails, with where, when and who', async () => {
        const r = await runExperiment({ workerEntry: entry, source: {}, plan: plan([{ failReplication: 2 }], 4), workers: 2 }).result;
        expect(r.state).toBe('failed');
        const failed = r.outcomes[0][2]!;
        expect(failed.status).toBe('failed');
        if (failed.status !== 'failed') return;
        expect(failed.error.loc).toEqual({ file: 'fake.twin', line: 11, column: 5 });
        expect(failed.error.subject).toBe('Job#10');
        expect(failed.error.text).toMatch(/^fake\.twin:11:5: at t=[\d.]+ s \(Job#10\): negative delay/);
        for (const i of [0, 1, 3]) expect(r.outcomes[0][i]?.status).toBe('completed');
    });

    it('stops on request: running replications end, no new ones start, finished ones are kept', async () => {
        let handle: ReturnType<typeof runExperiment> | undefined = undefined;
        let asked = false;
        handle = runExperiment({
            workerEntry: entry, source: {}, plan: plan([{ steps: 1e12 }, { steps: 1000 }], 3), workers: 2,
            onProgress: p => {
                // Stop once the long replications are under way.
                if (!asked && p.events > 20_000) { asked = true; handle?.stop(); }
            }
        });
        const r = await handle.result;
        expect(asked).toBe(true);
        expect(r.state).toBe('stopped');
        const all = r.outcomes.flat();
        // The running replications stopped (two, or one when the second worker was still
        // loading when the stop came: it then gets no job); the ones never started are absent.
        const stopped = all.filter(o => o?.status === 'stopped').length;
        expect(stopped === 1 || stopped === 2).toBe(true);
        expect(all.filter(o => o === undefined).length).toBe(6 - stopped);
    });

    it('keeps its idle workers for the next run, which loads its own model into them; a killed job\'s worker is not kept', async () => {
        await endIdleWorkers();
        // The pool keeps as many idle workers as there are cores.
        const kept = Math.min(2, os.availableParallelism());
        const first = await runExperiment({ workerEntry: entry, source: { steps: 100 }, plan: plan([{}], 4), workers: 2 }).result;
        expect(first.events).toBe(4 * 100);
        expect(idleWorkers(entry)).toBe(kept);
        // The same two threads, with the next run's model (a worker that kept the last one would count 100 events a replication).
        const second = await runExperiment({ workerEntry: entry, source: { steps: 300 }, plan: plan([{}], 4), workers: 2 }).result;
        expect(second.state).toBe('completed');
        expect(second.events).toBe(4 * 300);
        expect(second.outcomes.flat().map(o => o?.events)).toEqual([300, 300, 300, 300]);
        expect(idleWorkers(entry)).toBe(kept);
        // Killed while running endless jobs (progress says events are being made): none is kept, and a run after it starts fresh ones.
        let running = false;
        const endless = runExperiment({ workerEntry: entry, source: { steps: 1e12 }, plan: plan([{}], 2), workers: 2, onProgress: p => { if (p.events > 0) running = true; } });
        await vi.waitFor(() => expect(running).toBe(true), { timeout: 5000, interval: 10 });
        endless.kill();
        expect((await endless.result).state).toBe('stopped');
        expect(idleWorkers(entry)).toBe(0);
        const third = await runExperiment({ workerEntry: entry, source: { steps: 50 }, plan: plan([{}], 2), workers: 2 }).result;
        expect(third.events).toBe(2 * 50);
        await endIdleWorkers();
    });

    it('rejects with the loader message when the model cannot be loaded', async () => {
        const failing = entry.replace(/\.cjs$/, '-fail.cjs');
        fs.writeFileSync(failing, [
            `const { parentPort } = require('node:worker_threads');`,
            // Answers its run's init, with the run's number, as a worker does.
            `parentPort.once('message', m => parentPort.postMessage({ type: 'load-failed', run: m.run, message: 'bank.twin has 2 errors' }));`
        ].join('\n'));
        try {
            await expect(runExperiment({ workerEntry: failing, source: {}, plan: plan([{}], 2), workers: 2 }).result)
                .rejects.toThrow(new ModelLoadError('bank.twin has 2 errors'));
        } finally {
            fs.rmSync(failing, { force: true });
        }
    });
});

describe('a worker that stops before it is ready', () => {
    it('fails the run as a model that could not be loaded, saying so', async () => {
        const dying = entry.replace(/\.cjs$/, '-dying.cjs');
        fs.writeFileSync(dying, `require('node:worker_threads').parentPort.once('message', () => process.exit(3));`);
        try {
            await expect(runExperiment({ workerEntry: dying, source: {}, plan: plan([{}], 2), workers: 2 }).result)
                .rejects.toThrow(new ModelLoadError('the experiment worker stopped (exit code 3) before it had loaded the model'));
        } finally {
            fs.rmSync(dying, { force: true });
        }
    });

    it('leaves the run to the workers that did load: one stopping at its start loses nothing', async () => {
        const marker = entry.replace(/\.cjs$/, '-marker');
        const flaky = entry.replace(/\.cjs$/, '-flaky.cjs');
        // The first worker to start stops at its init; the other is the usual fake worker.
        fs.writeFileSync(flaky, [
            `const fs = require('node:fs');`,
            `try { fs.writeFileSync(${JSON.stringify(marker)}, '', { flag: 'wx' }); require('node:worker_threads').parentPort.once('message', () => process.exit(3)); }`,
            `catch { require(${JSON.stringify(entry)}); }`
        ].join('\n'));
        try {
            const r = await runExperiment({ workerEntry: flaky, source: { steps: 100 }, plan: plan([{}], 4), workers: 2 }).result;
            expect(r.state).toBe('completed');
            expect(r.outcomes.flat().map(o => o?.events)).toEqual([100, 100, 100, 100]);
        } finally {
            for (const f of [flaky, marker]) fs.rmSync(f, { force: true });
            await endIdleWorkers();
        }
    });
});

describe('the traced replication', () => {
    it('writes its whole trace from its worker, in order, in many blocks, a record larger than a block included', async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-runner-trace-'));
        try {
            const file = path.join(dir, 'trace.aimtrace');
            writeBinaryTraceHeader(file, { kind: 'header', format: 'aimatrix-trace', runId: 'r', twin: 'Fake', experiment: null, files: [], point: 0, replication: 0, set: {}, seed: 7, clocks: { sim: 's', wall: 'us' }, wallOrigin: 0 });
            const steps = 60_000;
            const r = await runExperiment({
                workerEntry: entry, source: {}, plan: plan([{ steps, bigRecordAt: 30_000 }], 2), workers: 2,
                trace: { file, point: 0, replication: 1 }
            }).result;
            expect(r.state).toBe('completed');
            // About 14 MB: dozens of 256 KiB blocks.
            expect(fs.statSync(file).size).toBeGreaterThan(7 * 2 ** 21);
            let n = 0;
            let lastSpan = 0;
            let big = -1;
            for await (const rec of readTrace(file)) {
                if (rec.kind === 'header') continue;
                if (rec.kind === 'span' && rec.cat === 'entity') {
                    expect(rec.id).toBe(lastSpan + 2 - (lastSpan === 0 ? 1 : 0));
                    lastSpan = rec.id;
                }
                if (rec.kind === 'instant' && String(rec.attrs?.text).length === 600_000) big = n;
                n++;
            }
            expect(n).toBe(3 * steps + 4 * (steps / 10) + 1);
            // After the records of steps 0 to 30,000: three a step, and four more every tenth step.
            expect(big).toBe(3 * 30_001 + 4 * 3_001);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});

describe('a trace that cannot be written', () => {
    // /dev/full takes an open for appending and refuses every write with ENOSPC: a disk full, on demand.
    it.skipIf(!fs.existsSync('/dev/full'))('fails its replication with the write error; the untraced ones complete', async () => {
        const r = await runExperiment({
            workerEntry: entry, source: {}, plan: plan([{ steps: 200_000 }], 3), workers: 2,
            trace: { file: '/dev/full', point: 0, replication: 1 }
        }).result;
        expect(r.state).toBe('failed');
        const traced = r.outcomes[0][1]!;
        expect(traced.status).toBe('failed');
        if (traced.status !== 'failed') return;
        // Not an internal error: the disk's, with the file.
        expect(traced.error.message).toBe('cannot write the trace to /dev/full: ENOSPC: no space left on device, write');
        expect(traced.error.text).toBe(traced.error.message);
        // It stopped at the first block it could not write, not at its end.
        expect(traced.events).toBeLessThan(200_000);
        for (const i of [0, 2]) expect(r.outcomes[0][i]?.status).toBe('completed');
    });
});
