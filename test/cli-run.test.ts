/**
 * `aimatrix run` and `aimatrix trace export` as a user runs them: the built CLI in a child
 * process with the real engine, in a temporary workspace. The --json shape, determinism
 * across worker counts, --set with units, usage and model errors, a failing replication,
 * the run store (including after SIGINT and SIGKILL), and a trace exported for Perfetto.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunStore } from '../runtime/store/run-store.js';
import { BINARY_TRACE_VERSION, readTrace } from '../runtime/trace/read.js';
import type { TraceRecord } from '../protocol/index.js';
import { ensureBuilt, ROOT } from './support/build.js';

const BIN = path.join(ROOT, 'bin', 'aimatrix.cjs');

interface Run { code: number | null; stdout: string; stderr: string }

function start(args: string[], cwd: string): ChildProcess {
    return spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, AIMATRIX_DEBUG: '' } });
}

function collect(child: ChildProcess): Promise<Run> {
    return new Promise((resolve, reject) => {
        let stdout = '';
        let stderr = '';
        child.stdout!.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
        child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
        child.on('error', reject);
        child.on('close', code => resolve({ code, stdout, stderr }));
    });
}

function aimatrix(args: string[], cwd: string): Promise<Run> {
    return collect(start(args, cwd));
}

const SHOP = `
twin Shop {
  param servers = 1
  param serviceMean = 1 min
  resource Server capacity servers
  entity Customer
  source Arrivals creates Customer every exponential(mean: 2 min) limit 300 into Serve
  process Serve for Customer {
    seize Server
    delay exponential(mean: serviceMean)
    release Server
  }
  kpi wait = mean(waitTime(Serve)) in min
  kpi busy = utilization(Server)
  kpi served = throughput(Serve) in per h
}
experiment Sweep for Shop {
  replications 6
  seed 3
  sweep servers in [1, 2]
  report wait, busy
}
experiment Long for Shop {
  horizon 1000000 h
  replications 400
}
`;

// Half of the jobs take a branch whose delay can be negative: some replications fail, others complete.
const RISKY = `
twin Risky {
  entity Job
  source Jobs creates Job every 1 min limit 1 into Work
  process Work for Job {
    branch {
      prob 0.5 { delay normal(mean: 0 min, sd: 1 min) }
      otherwise { delay 1 min }
    }
  }
  kpi done = throughput(Work) in per h
}
`;

const BROKEN = `
twin Broken {
  resource R capacity 1
  process P for Nope { seize R }
}
`;

const FOREVER = `
twin Forever {
  entity E
  source S creates E every 1 min into P
  process P for E { delay 30 s }
}
`;

let dir: string;

interface JsonReport {
    runId: string; state: string; twin: string; experiment: string | null; seed: number; replications: number;
    horizon: { value: number | null; unit: string };
    points: Array<{ set: Record<string, number>; kpis: Record<string, { unit: string | null; mean: number; stdev: number; ci95: [number, number]; min: number; max: number; n: number }> }>;
    events: number; wallMs: number; errors: Array<{ point: number; replication: number; text: string; loc: { file: string; line: number; column: number }; simTime: number; subject: string }>;
}

function json(run: Run): JsonReport {
    const lines = run.stdout.split('\n').filter(l => l.length > 0);
    expect(lines.length, `stdout: ${run.stdout}\nstderr: ${run.stderr}`).toBe(1);
    return JSON.parse(lines[0]) as JsonReport;
}

function withoutRunSpecifics(report: JsonReport): Omit<JsonReport, 'runId' | 'wallMs'> {
    const { runId: _id, wallMs: _ms, ...rest } = report;
    return rest;
}

beforeAll(async () => {
    await ensureBuilt();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-run-'));
    fs.writeFileSync(path.join(dir, 'shop.twin'), SHOP);
    fs.writeFileSync(path.join(dir, 'risky.twin'), RISKY);
    fs.writeFileSync(path.join(dir, 'broken.twin'), BROKEN);
    fs.writeFileSync(path.join(dir, 'forever.twin'), FOREVER);
});

afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
});

let one: JsonReport;

describe('aimatrix run --json', () => {
    it('prints one JSON document of the documented shape, and stores the run', async () => {
        const run = await aimatrix(['run', 'shop.twin', '--json', '--workers', '1'], dir);
        expect(run.code, run.stderr).toBe(0);
        expect(run.stderr).toBe('');
        one = json(run);
        expect(Object.keys(one).sort()).toEqual(['errors', 'events', 'experiment', 'horizon', 'points', 'replications', 'runId', 'seed', 'state', 'twin', 'wallMs']);
        expect(one).toMatchObject({ state: 'completed', twin: 'Shop', experiment: 'Sweep', seed: 3, replications: 6, horizon: { value: null, unit: 's' }, errors: [] });
        expect(one.points.map(p => p.set)).toEqual([{ servers: 1 }, { servers: 2 }]);
        for (const point of one.points) {
            // `report wait, busy`: served is left out.
            expect(Object.keys(point.kpis)).toEqual(['wait', 'busy']);
            expect(point.kpis.wait.unit).toBe('min');
            expect(point.kpis.busy.unit).toBeNull();
            for (const k of Object.values(point.kpis)) {
                expect(Object.keys(k).sort()).toEqual(['ci95', 'max', 'mean', 'min', 'n', 'stdev', 'unit']);
                expect(k.n).toBe(6);
                expect(k.min).toBeLessThanOrEqual(k.mean);
                expect(k.mean).toBeLessThanOrEqual(k.max);
                expect(k.ci95[0]).toBeLessThan(k.mean);
                expect(k.ci95[1]).toBeGreaterThan(k.mean);
                expect(k.stdev).toBeGreaterThan(0);
            }
        }
        // A second server cuts the wait.
        expect(one.points[1].kpis.wait.mean).toBeLessThan(one.points[0].kpis.wait.mean);
        expect(one.events).toBeGreaterThan(2 * 6 * 300);

        const store = new RunStore(dir);
        const record = store.resolve(one.runId);
        expect(record).toMatchObject({ id: one.runId, state: 'completed', file: 'shop.twin', twin: 'Shop', experiment: 'Sweep', trace: false, progress: { finished: 12, total: 12, failed: 0 } });
        const results = store.readResults(one.runId) as JsonReport & { perReplication: Array<{ replications: Array<{ status: string }> }> };
        expect(results.points).toEqual(one.points);
        expect(results.perReplication.flatMap(p => p.replications.map(r => r.status))).toEqual(new Array(12).fill('completed'));
    });

    it('gives identical results with 2 workers', async () => {
        const two = json(await aimatrix(['run', 'shop.twin', '--json', '--workers', '2'], dir));
        expect(withoutRunSpecifics(two)).toEqual(withoutRunSpecifics(one));
        expect(two.runId).not.toBe(one.runId);
    });

    it('applies --set with units, --seed, --replications and --horizon', async () => {
        const run = await aimatrix(['run', 'shop.twin', '--json', '--set', 'serviceMean=90s', '--set', 'servers=2', '--seed', '11', '--replications', '3', '--horizon', '2 h'], dir);
        expect(run.code, run.stderr).toBe(0);
        const r = json(run);
        expect(r).toMatchObject({ seed: 11, replications: 3, horizon: { value: 2, unit: 'h' } });
        expect(r.points.map(p => p.set)).toEqual([{ serviceMean: 1.5, servers: 2 }]);
        expect(r.points[0].kpis.busy.n).toBe(3);
        // Slower service (90 s instead of 60 s) on two servers: utilisation near λ·S/c = 0.5·1.5/2.
        expect(r.points[0].kpis.busy.mean).toBeGreaterThan(0.25);
        expect(r.points[0].kpis.busy.mean).toBeLessThan(0.55);
    });
});

describe('aimatrix run errors', () => {
    it.each([
        [['run', 'shop.twin', '--set', 'nope=3'], /^aimatrix: --set nope: Shop has no parameter 'nope' \(known: servers, serviceMean\)$/],
        [['run', 'shop.twin', '--set', 'serviceMean=3'], /^aimatrix: --set serviceMean: 'serviceMean' is a time: give it with a time unit/],
        [['run', 'shop.twin', '--replications', '0'], /^aimatrix: option '--replications <n>' argument '0' is invalid/],
        [['run', 'shop.twin', '--experiment', 'Nope'], /^aimatrix: no experiment 'Nope' in shop\.twin \(known: Sweep, Long\)$/],
        [['run', 'forever.twin'], /^aimatrix: Forever does not end by itself.*give a horizon/],
        [['run'], /^aimatrix: missing required argument 'file'/]
    ])('%j is a usage error: one line, exit 2, nothing stored', async (args, message) => {
        const before = new RunStore(dir).list().length;
        const run = await aimatrix(args, dir);
        expect(run.code).toBe(2);
        expect(run.stdout).toBe('');
        expect(run.stderr.trimEnd().split('\n').length, run.stderr).toBe(1);
        expect(run.stderr.trimEnd()).toMatch(message);
        expect(new RunStore(dir).list().length).toBe(before);
    });

    it('prints the diagnostics of a file with errors like `aimatrix check`, and does not run it', async () => {
        const before = new RunStore(dir).list().length;
        const run = await aimatrix(['run', 'broken.twin'], dir);
        expect(run.code).toBe(1);
        const lines = run.stderr.trimEnd().split('\n');
        expect(lines[0]).toMatch(/^broken\.twin:4:\d+ error [a-z-]+ .*Nope/);
        expect(lines.at(-1)).toMatch(/^aimatrix: broken\.twin: \d+ errors?, not run$/);
        expect(run.stdout).toBe('');
        const missing = await aimatrix(['run', 'missing.twin', '--json'], dir);
        expect(missing.code).toBe(1);
        expect(JSON.parse(missing.stdout)).toMatchObject({ diagnostics: [{ file: 'missing.twin', message: expect.stringMatching(/no such file/) as unknown }] });
        expect(new RunStore(dir).list().length).toBe(before);
    });

    it('keeps the other replications when one fails, says where, when and who, and exits 1', async () => {
        const run = await aimatrix(['run', 'risky.twin', '--replications', '8', '--json'], dir);
        expect(run.code).toBe(1);
        const r = json(run);
        expect(r.state).toBe('failed');
        expect(r.errors.length).toBeGreaterThan(0);
        expect(r.errors.length).toBeLessThan(8);
        expect(r.points[0].kpis.done.n).toBe(8 - r.errors.length);
        for (const e of r.errors) {
            expect(e.loc).toMatchObject({ file: 'risky.twin', line: 7 });
            expect(e.simTime).toBe(60);
            expect(e.subject).toMatch(/^Job#\d+$/);
            expect(e.text).toMatch(/^risky\.twin:7:\d+: at t=60 s \(Job#\d+\): .*delay/);
        }
        const stderr = run.stderr.trimEnd().split('\n');
        expect(stderr).toEqual(r.errors.map(e => `aimatrix: replication ${e.replication} failed: ${e.text}`));
        expect(new RunStore(dir).resolve(r.runId)).toMatchObject({ state: 'failed', progress: { finished: 8 - r.errors.length, total: 8, failed: r.errors.length } });
    });
});

describe('aimatrix run, interrupted', () => {
    async function waitForRun(store: RunStore, known: Set<string>): Promise<string> {
        for (;;) {
            const fresh = store.list().find(r => !known.has(r.id));
            if (fresh) return fresh.id;
            await new Promise(resolve => setTimeout(resolve, 50));
        }
    }

    it('stops cleanly on SIGINT: exit 130, says what finished, stores the run as stopped with its results', async () => {
        const store = new RunStore(dir);
        const known = new Set(store.list().map(r => r.id));
        const child = start(['run', 'shop.twin', '--experiment', 'Long', '--json', '--workers', '1'], dir);
        const done = collect(child);
        const id = await waitForRun(store, known);
        child.kill('SIGINT');
        const run = await done;
        expect(run.code).toBe(130);
        const r = json(run);
        expect(r.state).toBe('stopped');
        expect(run.stderr).toMatch(new RegExp(`aimatrix: stopped: \\d+ of 400 replications finished; their results are in run ${id}`));
        const record = store.resolve(id);
        expect(record.state).toBe('stopped');
        expect(record.progress!.finished).toBe(r.points[0].kpis.wait.n);
        expect(record.progress!.finished).toBeLessThan(400);
        expect((store.readResults(id) as JsonReport).points).toEqual(r.points);
    });

    it('leaves a run marked incomplete, and no results file, when killed with SIGKILL', async () => {
        const store = new RunStore(dir);
        const known = new Set(store.list().map(r => r.id));
        const child = start(['run', 'shop.twin', '--experiment', 'Long', '--json', '--workers', '1', '--trace', 'killed.jsonl'], dir);
        const done = collect(child);
        const id = await waitForRun(store, known);
        child.kill('SIGKILL');
        await done;
        const record = store.list().find(r => r.id === id)!;
        expect(record.state).toBe('incomplete');
        // Recorded so, not only reported.
        expect(JSON.parse(fs.readFileSync(store.file(id, 'run.json'), 'utf8'))).toMatchObject({ state: 'incomplete' });
        expect(fs.existsSync(store.file(id, 'results.json'))).toBe(false);
        expect(fs.existsSync(store.file(id, 'trace.aimtrace'))).toBe(false);
        expect(fs.existsSync(path.join(dir, 'killed.jsonl'))).toBe(false);
    });
});

describe('aimatrix run --trace, then trace export --format chrome', () => {
    it('exports every span of the trace file, counters, and named tracks, in JSON that Perfetto opens', async () => {
        const run = await aimatrix(['run', 'shop.twin', '--json', '--replications', '2', '--trace', 'shop.jsonl'], dir);
        expect(run.code, run.stderr).toBe(0);
        const { runId } = json(run);
        const lines = fs.readFileSync(path.join(dir, 'shop.jsonl'), 'utf8').trimEnd().split('\n').map(l => JSON.parse(l) as { kind: string });
        expect(lines[0]).toMatchObject({ kind: 'header', format: 'aimatrix-trace', version: 1, runId, twin: 'Shop', point: 0, replication: 0, set: { servers: 1 }, clocks: { sim: 's', wall: 'us' } });
        const records = lines.slice(1) as TraceRecord[];
        const spans = records.filter((r): r is Extract<TraceRecord, { kind: 'span' }> => r.kind === 'span');
        expect(spans.length).toBeGreaterThan(300);
        expect(records.some(r => r.kind === 'counter')).toBe(true);
        // The same trace is stored with the run (binary: the JSON Lines file is made from it).
        const stored = readTrace(new RunStore(dir).file(runId, 'trace.aimtrace'));
        const storedRecords: TraceRecord[] = [];
        for await (const { record } of stored.from(0)) storedRecords.push(record);
        expect(stored.header).toEqual({ ...lines[0], version: BINARY_TRACE_VERSION, encoding: 'binary' });
        expect(storedRecords).toEqual(records);

        const exported = await aimatrix(['trace', 'export', runId.slice(0, 22), '--format', 'chrome', '--out', 'shop.chrome.json'], dir);
        expect(exported.code, exported.stderr).toBe(0);
        const chrome = JSON.parse(fs.readFileSync(path.join(dir, 'shop.chrome.json'), 'utf8')) as { traceEvents: Array<{ ph: string; name: string; ts?: number; dur?: number; pid: number; tid?: number; args?: Record<string, unknown> }>; otherData: { runId: string } };
        expect(chrome.otherData.runId).toBe(runId);
        const complete = chrome.traceEvents.filter(e => e.ph === 'X');
        const byId = new Map(complete.map(e => [e.args?.id, e]));
        for (const s of spans) {
            const e = byId.get(s.id);
            expect(e, `span ${s.id}`).toBeDefined();
            expect(e!.name).toBe(s.name);
            expect(e!.ts).toBeCloseTo(s.start * 1e6, 3);
            expect(e!.dur).toBeCloseTo((s.end - s.start) * 1e6, 3);
        }
        expect(chrome.traceEvents.filter(e => e.ph === 'C').length).toBe(records.filter(r => r.kind === 'counter').length);
        const threadNames = chrome.traceEvents.filter(e => e.ph === 'M' && e.name === 'thread_name').map(e => e.args?.name);
        expect(threadNames).toContain('Customer#1');
        const processNames = chrome.traceEvents.filter(e => e.ph === 'M' && e.name === 'process_name').map(e => e.args?.name);
        expect(processNames).toEqual(expect.arrayContaining(['Entities', 'Resources and stocks']));

        // `last`, stdout, and wall-clock timestamps.
        const wall = await aimatrix(['trace', 'export', 'last', '--format', 'chrome', '--clock', 'wall'], dir);
        expect(wall.code).toBe(0);
        const wallEvents = (JSON.parse(wall.stdout) as typeof chrome).traceEvents.filter(e => e.ph === 'X');
        expect(wallEvents.length).toBe(complete.length);
        const first = spans[0];
        expect(wallEvents.find(e => e.args?.id === first.id)!.ts).toBe(first.wallStart);
    });

    it('says so when a run has no trace, or no run matches', async () => {
        const none = await aimatrix(['trace', 'export', one.runId, '--format', 'chrome'], dir);
        expect(none.code).toBe(1);
        expect(none.stderr).toBe(`aimatrix: run ${one.runId} has no trace (run it with --trace FILE)\n`);
        const unknown = await aimatrix(['trace', 'export', 'zzz', '--format', 'chrome'], dir);
        expect(unknown.code).toBe(1);
        expect(unknown.stderr).toMatch(/^aimatrix: no run 'zzz' in /);
        const format = await aimatrix(['trace', 'export', 'last', '--format', 'jaeger'], dir);
        expect(format.code).toBe(2);
        expect(format.stderr).toMatch(/^aimatrix: option '--format <format>' argument 'jaeger' is invalid\. Allowed choices are chrome, otlp, jsonl\./);
    });
});
