/**
 * Pause and resume of the experiment runner on real worker threads, with the fake model:
 * a paused run stops advancing (its event count stays put and its trace is flushed), a
 * resumed run completes with exactly the KPIs of a run never paused, and stop still works
 * while paused.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TraceRecord } from '../../protocol/index.js';
import { runExperiment, type Progress, type RunnerPlan } from '../../runtime/experiment/runner.js';
import { readTrace, writeBinaryTraceHeader } from '../../runtime/trace/read.js';
import { buildFakeWorker, ROOT } from './support.js';

let entry: string;
beforeAll(async () => { entry = await buildFakeWorker(); });
afterAll(() => { fs.rmSync(entry, { force: true }); });

function plan(overrides: Array<Record<string, number>>, replications: number, seed = 11): RunnerPlan {
    return { points: overrides.map(o => ({ overrides: o })), replications, seed, horizon: Infinity, warmup: 0 };
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms));

describe('pause and resume', () => {
    it('a paused run stops advancing, and resumed completes with the KPIs of an unpaused run', async () => {
        const p = plan([{ steps: 2_000_000 }, { steps: 1_500_000 }], 3);
        const reference = await runExperiment({ workerEntry: entry, source: {}, plan: p, workers: 2 }).result;
        expect(reference.state).toBe('completed');

        const seen: Progress[] = [];
        let onReport: (() => void) | undefined;
        const handle = runExperiment({ workerEntry: entry, source: {}, plan: p, workers: 2, onProgress: q => { seen.push(q); onReport?.(); } });
        const until = (test: (q: Progress) => boolean): Promise<Progress> => new Promise(resolve => {
            const from = seen.length;
            onReport = () => {
                for (let i = from; i < seen.length; i++) if (test(seen[i])) { onReport = undefined; resolve(seen[i]); return; }
            };
            onReport();
        });

        await until(q => q.events > 20_000);
        handle.pause();
        const parked = await until(q => q.state === 'paused');
        expect(parked.done).toBeLessThan(parked.total);
        const before = parked.events;
        const reportsBefore = seen.length;
        await sleep(300);
        // Nothing ran while paused: no progress at all, and the count did not move.
        expect(seen.length).toBe(reportsBefore);
        expect(seen[seen.length - 1].events).toBe(before);
        // Pausing again is harmless.
        handle.pause();

        handle.resume();
        const r = await handle.result;
        expect(r.state).toBe('completed');
        expect(seen.some(q => q.state === 'pausing')).toBe(true);
        expect(seen[seen.length - 1]).toMatchObject({ state: 'running', done: 6, total: 6 });
        expect(r.outcomes).toEqual(reference.outcomes);
        expect(r.events).toBe(reference.events);
    }, 30_000);

    it('paused before any worker is ready: no job runs until resume, then all complete', async () => {
        const seen: Progress[] = [];
        const handle = runExperiment({ workerEntry: entry, source: {}, plan: plan([{ steps: 1000 }], 4), workers: 2, onProgress: q => { seen.push(q); } });
        handle.pause();
        await sleep(500); // the workers load and ask for work meanwhile
        expect(seen.length).toBeGreaterThan(0);
        expect(seen.every(q => q.events === 0 && q.done === 0 && q.state === 'paused')).toBe(true);
        handle.resume();
        const r = await handle.result;
        expect(r.state).toBe('completed');
        expect(r.outcomes.flat().every(o => o?.status === 'completed')).toBe(true);
    }, 30_000);

    it('stop ends a paused run: the parked replication stops, the others never start', async () => {
        const seen: Progress[] = [];
        let onReport: (() => void) | undefined;
        const handle = runExperiment({ workerEntry: entry, source: {}, plan: plan([{ steps: 1e12 }, { steps: 1000 }], 3), workers: 1, onProgress: q => { seen.push(q); onReport?.(); } });
        await new Promise<void>(resolve => { onReport = () => { if (seen.some(q => q.events > 10_000)) { onReport = undefined; resolve(); } }; onReport(); });
        handle.pause();
        await new Promise<void>(resolve => { onReport = () => { if (seen.at(-1)?.state === 'paused') { onReport = undefined; resolve(); } }; onReport(); });
        handle.stop();
        const r = await handle.result;
        expect(r.state).toBe('stopped');
        const all = r.outcomes.flat();
        expect(all[0]?.status).toBe('stopped');
        expect(all.slice(1).every(o => o === undefined)).toBe(true);
    }, 30_000);

    it('flushes the trace before it waits: the file has the records of every event so far', async () => {
        const dir = path.join(ROOT, 'test', '.work', `pause-trace-${process.pid}`);
        fs.mkdirSync(dir, { recursive: true });
        const file = path.join(dir, 'trace.aimtrace');
        // What the run session writes before the workers append blocks.
        writeBinaryTraceHeader(file, {
            kind: 'header', format: 'aimatrix-trace', runId: 'pause', twin: 'Fake', experiment: null, files: [], point: 0, replication: 0, set: {}, seed: 11,
            clocks: { sim: 's', wall: 'us' }, wallOrigin: 0
        });
        try {
            const seen: Progress[] = [];
            let onReport: (() => void) | undefined;
            const handle = runExperiment({
                workerEntry: entry, source: {}, plan: plan([{ steps: 1e12 }], 1), workers: 1,
                trace: { file, point: 0, replication: 0 },
                onProgress: q => { seen.push(q); onReport?.(); }
            });
            await new Promise<void>(resolve => { onReport = () => { if (seen.some(q => q.events > 2000)) { onReport = undefined; resolve(); } }; onReport(); });
            handle.pause();
            const parked = await new Promise<Progress>(resolve => { onReport = () => { const q = seen.at(-1)!; if (q.state === 'paused') { onReport = undefined; resolve(q); } }; onReport(); });
            // The fake model records 3 records per event plus 4 every 10 events; all of them are on disk while it waits.
            const reader = readTrace(file);
            const records: TraceRecord[] = [];
            for await (const { record } of reader.from(0)) records.push(record);
            expect(reader.truncated).toBe(false);
            const jobs = records.filter(r => r.kind === 'span' && r.name === 'Job').length;
            expect(jobs).toBe(parked.events);
            expect(records.length).toBe(3 * parked.events + 4 * Math.ceil(parked.events / 10));
            handle.stop();
            expect((await handle.result).state).toBe('stopped');
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    }, 30_000);
});
