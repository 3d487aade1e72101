/**
 * `aimatrix trace export` on the traces runs store now (binary, trace.aimtrace), on runs stored
 * before (trace.jsonl only), on a killed run's part file and on a damaged file; `--format jsonl`
 * to standard output and to a file gives the same JSON Lines, and waits on a slow destination.
 * Last, the built CLI end to end: `aimatrix run --trace x.jsonl`, then every export format.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TraceRecord } from '../../protocol/index.js';
import { exportCommand, type ExportOptions } from '../../runtime/cli/trace.js';
import { RunStore } from '../../runtime/store/run-store.js';
import { BLOCK_HEAD, blockHead } from '../../runtime/trace/binary.js';
import { JsonlTraceWriter, TRACE_FORMAT, TRACE_VERSION, writeTraceHeader, type TraceHeader } from '../../runtime/trace/jsonl.js';
import { createFakeModel } from '../experiment/fake-model.js';
import { BIN, workspace } from '../server/support.js';
import { ensureBuilt } from '../support/build.js';
import { slowDestination, writeBinaryTrace } from './export-support.js';

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-export-')); });
afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

const header = (runId: string): TraceHeader => ({
    kind: 'header', format: TRACE_FORMAT, version: TRACE_VERSION, runId, twin: 'Fake', experiment: null,
    files: ['fake.twin'], point: 0, replication: 0, set: {}, seed: 1, clocks: { sim: 's', wall: 'us' }, wallOrigin: 1_764_590_000_000_000
});

function fakeRecords(steps: number): TraceRecord[] {
    const records: TraceRecord[] = [];
    let wall = 0;
    createFakeModel({ steps }).runReplication({
        seed: 1, replication: 0, horizon: Infinity, warmup: 0, wallClock: () => (wall += 10),
        trace: { enabled: true, record: r => { records.push(r); } }
    });
    return records;
}

/** A run in the store whose trace is `name` (binary for .aimtrace, else JSON Lines), in state `state`. */
function storedRun(steps: number, name: string, state: 'completed' | 'incomplete' = 'completed'): { runId: string; records: TraceRecord[]; file: string } {
    const store = new RunStore(dir);
    const run = store.create({ file: 'fake.twin', files: ['fake.twin'], twin: 'Fake', experiment: null, params: [], plan: {}, options: {}, trace: true });
    const records = fakeRecords(steps);
    const file = path.join(store.folder(run.id), name);
    if (name.includes('.aimtrace')) {
        writeBinaryTrace(file, header(run.id), records);
    } else {
        writeTraceHeader(file, header(run.id));
        const writer = new JsonlTraceWriter(fs.openSync(file, 'a'));
        for (const r of records) writer.record(r);
        writer.close();
    }
    store.update(run, { state, endedAt: new Date().toISOString() });
    return { runId: run.id, records, file };
}

async function command(ref: string, opts: Partial<ExportOptions>, stdout: Writable = new PassThrough()): Promise<{ code: number; stdout: string; stderr: string }> {
    let out = '';
    let err = '';
    if (stdout instanceof PassThrough) stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
    const errors = new PassThrough().setEncoding('utf8').on('data', (s: string) => { err += s; });
    const code = await exportCommand(ref, { format: 'jsonl', clock: 'sim', ...opts }, dir, stdout, errors);
    stdout.end();
    errors.end();
    return { code, stdout: out, stderr: err };
}

/** JSON Lines text → its header and records. */
function parseJsonl(text: string): { head: Record<string, unknown>; records: TraceRecord[] } {
    const lines = text.trimEnd().split('\n').map(l => JSON.parse(l) as Record<string, unknown>);
    return { head: lines[0], records: lines.slice(1) as unknown as TraceRecord[] };
}

/** The byte offsets of a binary trace's blocks. */
function blocks(file: string): number[] {
    const bytes = fs.readFileSync(file);
    const starts: number[] = [];
    for (let at = bytes.indexOf(0x0a) + 1; at < bytes.length; at += BLOCK_HEAD + blockHead(bytes, at).bodyBytes) starts.push(at);
    return starts;
}

describe('aimatrix trace export --format jsonl', () => {
    it('turns a binary stored run into JSON Lines version 1, the same to standard output and to a file', async () => {
        const { runId, records } = storedRun(200, 'trace.aimtrace');
        const r = await command(runId, {});
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).toBe('');
        const { head, records: read } = parseJsonl(r.stdout);
        // The header as JSON Lines has it: version 1, no encoding, the rest as stored.
        expect(head).toEqual(header(runId));
        expect(Object.keys(head).slice(0, 3)).toEqual(['kind', 'format', 'version']);
        expect(read).toEqual(records);

        const toFile = await command('last', { out: 'out.jsonl' });
        expect(toFile.code, toFile.stderr).toBe(0);
        expect(toFile.stderr).toBe(`run ${runId}: ${records.length} records in out.jsonl\n`);
        expect(fs.readFileSync(path.join(dir, 'out.jsonl'), 'utf8')).toBe(r.stdout);
        const json = await command('last', { out: 'again.jsonl', json: true });
        expect(JSON.parse(json.stdout)).toEqual({ run: runId, out: 'again.jsonl', records: records.length, events: records.length });
    });

    it('exports a run stored before binary traces (trace.jsonl only) to the same JSON Lines', async () => {
        const { runId, records, file } = storedRun(50, 'trace.jsonl');
        expect(new RunStore(dir).traceFile(runId)).toBe(file);
        const r = await command(runId, {});
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toBe(fs.readFileSync(file, 'utf8'));
        const toFile = await command(runId, { out: 'legacy.jsonl' });
        expect(toFile.stderr).toBe(`run ${runId}: ${records.length} records in legacy.jsonl\n`);
        expect(fs.readFileSync(path.join(dir, 'legacy.jsonl'), 'utf8')).toBe(r.stdout);
        const chrome = await command(runId, { format: 'chrome' });
        expect(chrome.code, chrome.stderr).toBe(0);
        expect((JSON.parse(chrome.stdout) as { traceEvents: Array<{ ph: string }> }).traceEvents.filter(e => e.ph === 'X').length)
            .toBeGreaterThanOrEqual(records.filter(x => x.kind === 'span').length);
    });

    it('a killed run exports its part file up to the last complete block, and says so', async () => {
        const { runId, records, file } = storedRun(200, '.trace.aimtrace.part', 'incomplete');
        const starts = blocks(file);
        fs.truncateSync(file, starts[starts.length - 1] + BLOCK_HEAD + 3);
        for (const opts of [{ out: 'killed.jsonl' }, { out: 'killed2.jsonl', format: 'chrome' as const }]) {
            const r = await command(runId, opts);
            expect(r.code, r.stderr).toBe(0);
            expect(r.stderr).toMatch(/ \(the run did not finish: its trace up to the last complete record\)\n$/);
        }
        const kept = parseJsonl(fs.readFileSync(path.join(dir, 'killed.jsonl'), 'utf8')).records;
        expect(kept.length).toBeGreaterThan(0);
        expect(kept.length).toBeLessThan(records.length);
        expect(kept).toEqual(records.slice(0, kept.length));
        expect((await command(runId, {})).stdout).toBe(fs.readFileSync(path.join(dir, 'killed.jsonl'), 'utf8'));
    });

    it('a damaged binary trace fails in one line naming the file, block and byte, and writes no file', async () => {
        const { runId, file } = storedRun(200, 'trace.aimtrace');
        const at = blocks(file)[3];
        const bytes = fs.readFileSync(file);
        bytes.write('JUNK', at, 'latin1');
        fs.writeFileSync(file, bytes);
        const expected = `aimatrix: ${file}: block 3 at byte ${at}: not a trace block (wrong magic) (the trace is damaged)\n`;
        for (const format of ['jsonl', 'chrome', 'otlp'] as const) {
            const r = await command(runId, { format, out: `damaged.${format}` });
            expect(r.code).toBe(1);
            expect(r.stderr).toBe(expected);
            expect(fs.readdirSync(dir).filter(f => f.startsWith('damaged.') || f.startsWith('.damaged.'))).toEqual([]);
        }
        const toStdout = await command(runId, {});
        expect(toStdout.code).toBe(1);
        expect(toStdout.stderr).toBe(expected);
    });

    it('waits for a slow standard output instead of buffering the whole trace', async () => {
        const { runId } = storedRun(3000, 'trace.aimtrace');
        const { stream: slow, seen } = slowDestination(done => setTimeout(done, 5));
        const r = await command(runId, {}, slow);
        expect(r.code, r.stderr).toBe(0);
        expect(seen.bytes).toBeGreaterThan(1_000_000);
        // At most one chunk (64 KiB of lines and the line that passed it) waited in the stream's buffer.
        expect(seen.maxPending).toBeLessThan(160 * 1024);
    });
});

describe('aimatrix run --trace, then trace export (the built CLI)', () => {
    it('exports the stored binary trace as JSON Lines equal to what run --trace wrote, and as Chrome and OTLP JSON', async () => {
        await ensureBuilt();
        const ws = workspace();
        try {
            const aimatrix = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> => {
                const child = spawn(process.execPath, [BIN, ...args], { cwd: ws, env: { ...process.env, AIMATRIX_DEBUG: '' } });
                let stdout = '';
                let stderr = '';
                child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
                child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
                return new Promise(resolve => child.on('close', code => resolve({ code, stdout, stderr })));
            };
            const run = await aimatrix(['run', 'shop.twin', '--experiment', 'Short', '--replications', '1', '--json', '--trace', 'shop.jsonl']);
            expect(run.code, run.stderr).toBe(0);
            const { runId } = JSON.parse(run.stdout) as { runId: string };
            const written = fs.readFileSync(path.join(ws, 'shop.jsonl'), 'utf8');
            const { head, records } = parseJsonl(written);
            expect(head).toMatchObject({ kind: 'header', version: 1, runId });
            expect(head.encoding).toBeUndefined();
            expect(new RunStore(ws).traceFile(runId)).toBe(new RunStore(ws).file(runId, 'trace.aimtrace'));

            const jsonl = await aimatrix(['trace', 'export', 'last', '--format', 'jsonl']);
            expect(jsonl.code, jsonl.stderr).toBe(0);
            expect(jsonl.stdout).toBe(written);

            const chrome = await aimatrix(['trace', 'export', runId, '--format', 'chrome', '--out', 'shop.chrome.json']);
            expect(chrome.code, chrome.stderr).toBe(0);
            const events = (JSON.parse(fs.readFileSync(path.join(ws, 'shop.chrome.json'), 'utf8')) as { traceEvents: Array<{ ph: string; args?: { id?: number } }> }).traceEvents;
            const ids = new Set(events.filter(e => e.ph === 'X').map(e => e.args?.id));
            const spans = records.filter((r): r is Extract<TraceRecord, { kind: 'span' }> => r.kind === 'span');
            expect(spans.length).toBeGreaterThan(100);
            for (const s of spans) expect(ids.has(s.id)).toBe(true);

            const otlp = await aimatrix(['trace', 'export', runId, '--format', 'otlp']);
            expect(otlp.code, otlp.stderr).toBe(0);
            const doc = JSON.parse(otlp.stdout) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: unknown[] }> }> };
            expect(doc.resourceSpans[0].scopeSpans[0].spans.length).toBe(records.filter(r => r.kind !== 'counter').length);

            const help = await aimatrix(['trace', 'export', '--help']);
            expect(help.stdout).toMatch(/--format <format> +the output format \(choices: "chrome", "otlp", "jsonl"\)/);
            expect(help.stdout).toMatch(/^jsonl: JSON Lines/m);
        } finally {
            fs.rmSync(ws, { recursive: true, force: true });
        }
    }, 120_000);
});
