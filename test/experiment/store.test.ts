/**
 * The run store: sortable ids, lookup by id, prefix and `last`, atomic files that a
 * SIGKILL cannot leave half-written, and killed runs reported (and recorded) as incomplete.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listRuns, newRunId, RunNotFoundError, RunStore, writeFileAtomic, type NewRun } from '../../runtime/store/run-store.js';
import { ROOT } from './support.js';

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-store-')); });
afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

const RUN: NewRun = { file: 'bank.twin', files: ['bank.twin'], twin: 'Bank', experiment: 'Baseline', params: [], plan: {}, options: {}, trace: false };

describe('RunStore', () => {
    it('makes ids that sort by time and differ', () => {
        const a = newRunId(new Date('2025-03-14T09:30:00.123Z'));
        expect(a).toMatch(/^20250314-093000-123-[0-9a-f]{6}$/);
        const b = newRunId(new Date('2025-03-14T09:30:00.124Z'));
        expect([b, a].sort()).toEqual([a, b]);
        expect(newRunId(new Date(0))).not.toBe(newRunId(new Date(0)));
    });

    it('creates a run as running, updates it, and finds it by id, prefix and last', () => {
        const store = new RunStore(dir);
        const first = store.create(RUN, new Date('2025-01-01T00:00:00Z'));
        const second = store.create(RUN, new Date('2025-02-01T00:00:00Z'));
        expect(first.state).toBe('running');
        expect(first.pid).toBe(process.pid);
        expect(fs.existsSync(path.join(dir, '.aimatrix', 'runs', first.id, 'run.json'))).toBe(true);
        store.update(second, { state: 'completed' });
        expect(store.list().map(r => [r.id, r.state])).toEqual([[first.id, 'running'], [second.id, 'completed']]);
        expect(store.resolve('last').id).toBe(second.id);
        expect(store.resolve('202501').id).toBe(first.id);
        expect(store.resolve(second.id).id).toBe(second.id);
        expect(() => store.resolve('2025')).toThrow(/matches 2 runs/);
        expect(() => store.resolve('1999')).toThrow(RunNotFoundError);
        expect(() => new RunStore(path.join(dir, 'nothing')).resolve('last')).toThrow(/no runs in/);
    });

    it('writes files atomically and leaves no temporary file', () => {
        const file = path.join(dir, 'a.json');
        writeFileAtomic(file, '{"a":1}');
        writeFileAtomic(file, '{"a":2}');
        expect(fs.readFileSync(file, 'utf8')).toBe('{"a":2}');
        expect(fs.readdirSync(dir)).toEqual(['a.json']);
        expect(() => writeFileAtomic(path.join(dir, 'no', 'such', 'folder.json'), 'x')).toThrow();
    });

    it('survives SIGKILL in the middle of writing: results complete or absent, the run reported incomplete', async () => {
        const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test', 'experiment', 'store-writer.ts'), dir], { cwd: ROOT });
        let out = '';
        child.stdout.setEncoding('utf8');
        // Kill it once it has rewritten its results a few times (it prints the id at the start).
        const store = new RunStore(dir);
        await new Promise<void>(resolve => {
            child.stdout.on('data', (s: string) => { out += s; });
            const poll = setInterval(() => {
                const id = out.trim();
                if (!id) return;
                try {
                    const progress = JSON.parse(fs.readFileSync(store.file(id, 'run.json'), 'utf8')) as { progress?: { finished: number } };
                    if ((progress.progress?.finished ?? 0) >= 5) {
                        clearInterval(poll);
                        child.kill('SIGKILL');
                        resolve();
                    }
                } catch {
                    // Not written yet.
                }
            }, 20);
        });
        await new Promise(resolve => child.on('close', resolve));
        const id = out.trim();
        const results = JSON.parse(fs.readFileSync(store.file(id, 'results.json'), 'utf8')) as { version: number; count: number; values: number[] };
        expect(results.values.length).toBe(results.count);
        expect(results.values[results.count - 1]).toBe(results.version * 1e6 + results.count - 1);
        const [record] = listRuns(dir);
        expect(record.id).toBe(id);
        expect(record.state).toBe('incomplete');
        expect(record.progress!.finished).toBeGreaterThanOrEqual(5);
        expect((JSON.parse(fs.readFileSync(store.file(id, 'run.json'), 'utf8')) as { state: string }).state).toBe('incomplete');
    }, 30_000);

    it('does not mark a live run incomplete', () => {
        const store = new RunStore(dir);
        const run = store.create(RUN);
        expect(store.read(run.id).state).toBe('running');
    });
});
