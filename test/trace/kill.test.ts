/**
 * kill -9 safety: a process killed (SIGKILL) while its worker writes a trace leaves a run
 * that lists as incomplete, and a trace that reads back, up to its last complete line, as
 * exactly the records the model makes (a prefix of them, every one whole): the binary trace up
 * to its last complete block, a block cut by the kill left out; it still exports. Both ways a
 * trace is written: straight to the stored trace.aimtrace (the server) and to the hidden part
 * file of `aimatrix run`.
 */
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import * as esbuild from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TraceRecord } from '../../protocol/index.js';
import { exportCommand } from '../../runtime/cli/trace.js';
import { RunStore } from '../../runtime/store/run-store.js';
import { BLOCK_BYTES } from '../../runtime/trace/binary.js';
import { BINARY_TRACE_VERSION, readTrace } from '../../runtime/trace/read.js';
import { createFakeModel } from '../experiment/fake-model.js';
import { buildFakeWorker, ROOT } from '../experiment/support.js';
import { ensureBuilt } from '../support/build.js';
import { completeBlocksEnd } from '../support/trace-files.js';

let worker: string;
let child: string;
let dir: string;
beforeAll(async () => {
    worker = await buildFakeWorker();
    child = path.join(ROOT, 'test', '.work', `kill-child-${process.pid}-${crypto.randomBytes(4).toString('hex')}.cjs`);
    await esbuild.build({ entryPoints: [path.join(__dirname, 'kill-child.ts')], bundle: true, platform: 'node', target: 'node20', format: 'cjs', outfile: child, logLevel: 'warning' });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-kill-'));
});
afterAll(() => {
    fs.rmSync(worker, { force: true });
    fs.rmSync(child, { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
});

/** Without the wall clock, which differs between runs. */
function sim(r: TraceRecord): unknown {
    const { wall: _w, wallStart: _s, wallEnd: _e, ...rest } = r as TraceRecord & { wall?: number; wallStart?: number; wallEnd?: number };
    return rest;
}

describe('a run killed with SIGKILL while it writes its trace', () => {
    it('lists as incomplete, and its trace reads back whole up to the last complete block', async () => {
        const proc = spawn(process.execPath, [child, dir, worker], { stdio: ['ignore', 'pipe', 'inherit'] });
        const exited = new Promise<NodeJS.Signals | null>(resolve => proc.on('exit', (_code, signal) => resolve(signal)));
        const runId = await new Promise<string>((resolve, reject) => {
            let out = '';
            proc.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; if (out.includes('\n')) resolve(out.trim()); });
            proc.on('exit', () => reject(new Error('the child ended before it started the run')));
        });
        const store = new RunStore(dir);
        const file = store.file(runId, 'trace.aimtrace');
        // Kill it in the middle of writing: once a whole block of records is on disk (a file past two
        // blocks' size has its first one whole: a block's write grows the file as it goes).
        await new Promise<void>(resolve => {
            const poll = setInterval(() => { if (fs.statSync(file).size > 2 * BLOCK_BYTES) { clearInterval(poll); resolve(); } }, 10);
        });
        expect(store.list().find(r => r.id === runId)?.state).toBe('running');
        proc.kill('SIGKILL');
        expect(await exited).toBe('SIGKILL');

        expect(store.list().find(r => r.id === runId)).toMatchObject({ state: 'incomplete' });

        const reader = readTrace(file);
        const read: TraceRecord[] = [];
        for await (const { seq, record } of reader.from(0)) {
            expect(seq).toBe(read.length);
            read.push(record);
        }
        expect(reader.header).toMatchObject({ runId, version: BINARY_TRACE_VERSION, encoding: 'binary' });
        expect(reader.records).toBe(read.length);
        expect(read.length).toBeGreaterThan(1000);
        expect(reader.truncated).toBe(completeBlocksEnd(file) < fs.statSync(file).size);

        // Exactly the records the model makes, in order, each whole: a prefix of an in-process run.
        const jobs = read.filter(r => r.kind === 'span' && r.parent === undefined).length;
        const expected: TraceRecord[] = [];
        createFakeModel({}).runReplication({
            seed: 5, replication: 0, horizon: Infinity, warmup: 0, overrides: { steps: jobs + 1 }, wallClock: () => 0,
            trace: { enabled: true, record: r => { expected.push(r); } }
        });
        expect(read.map(sim)).toEqual(expected.slice(0, read.length).map(sim));

        // And the killed run still exports.
        let stderr = '';
        const err = new PassThrough().setEncoding('utf8').on('data', (s: string) => { stderr += s; });
        const code = await exportCommand(runId, { format: 'otlp', clock: 'sim', out: 'killed.json' }, dir, new PassThrough(), err);
        expect(code).toBe(0);
        expect(stderr).toContain('the run did not finish');
        expect(fs.statSync(path.join(dir, 'killed.json')).size).toBeGreaterThan(0);
    }, 30_000);

    it('aimatrix run killed mid-run: incomplete, and trace export gives its trace up to the last complete record', async () => {
        await ensureBuilt();
        const ws = path.join(dir, 'cli');
        fs.mkdirSync(ws);
        fs.copyFileSync(path.join(ROOT, 'examples', 'bank', 'bank.twin'), path.join(ws, 'bank.twin'));
        const proc = spawn(process.execPath, [path.join(ROOT, 'bin', 'aimatrix.cjs'), 'run', 'bank.twin', '--horizon', '100000h', '--replications', '1', '--workers', '1', '--trace', 'out.jsonl'], { cwd: ws, stdio: 'ignore' });
        const exited = new Promise<NodeJS.Signals | null>(resolve => proc.on('exit', (_code, signal) => resolve(signal)));
        const store = new RunStore(ws);
        // The trace goes to a hidden part file while the run goes on.
        const part = await new Promise<string>((resolve, reject) => {
            proc.on('exit', () => { clearInterval(poll); reject(new Error('aimatrix run ended before it was killed')); });
            const poll = setInterval(() => {
                const run = fs.existsSync(store.root) ? store.list()[0] : undefined;
                const file = run ? path.join(store.folder(run.id), '.trace.aimtrace.part') : undefined;
                if (file && fs.existsSync(file) && fs.statSync(file).size > 2 * BLOCK_BYTES) { clearInterval(poll); resolve(file); }
            }, 10);
        });
        proc.kill('SIGKILL');
        expect(await exited).toBe('SIGKILL');
        const [run] = store.list();
        expect(run.state).toBe('incomplete');
        expect(fs.existsSync(path.join(ws, 'out.jsonl'))).toBe(false);

        const reader = readTrace(part);
        let n = 0;
        for await (const item of reader.from(0)) { expect(item.seq).toBe(n++); }
        expect(n).toBeGreaterThan(1000);
        expect(reader.truncated).toBe(completeBlocksEnd(part) < fs.statSync(part).size);

        let stderr = '';
        const err = new PassThrough().setEncoding('utf8').on('data', (s: string) => { stderr += s; });
        const code = await exportCommand('last', { format: 'chrome', clock: 'sim', out: 'killed.chrome.json' }, ws, new PassThrough(), err);
        expect(code).toBe(0);
        expect(stderr).toBe(`run ${run.id}: ${n} records → ${stderr.match(/→ (\d+)/)![1]} trace events in killed.chrome.json (the run did not finish: its trace up to the last complete record)\n`);
        const chrome = JSON.parse(fs.readFileSync(path.join(ws, 'killed.chrome.json'), 'utf8')) as { traceEvents: unknown[] };
        expect(chrome.traceEvents.length).toBeGreaterThan(1000);
    }, 60_000);
});
