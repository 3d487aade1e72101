/**
 * `runCommand` in process, with the fake model on real worker threads and a terminal-like
 * stderr: the progress bar (replications, events/s, ETA) only on a terminal and never with
 * --json, the KPI table, and Ctrl+C stopping cleanly with what finished kept and stored.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_INTERRUPTED, runCommand, type RunIo, type RunOptions } from '../../runtime/cli/run.js';
import { RunStore } from '../../runtime/store/run-store.js';
import { buildFakeWorker } from './support.js';

let entry: string;
let dir: string;

// The DSL side of the fake model: the same parameters, so --set reaches it.
const FAKE = `
twin Fake {
  param mean = 2 min
  param steps = 2000
  param failReplication = -1
  stock level = 0
  kpi value = level
}
experiment Few for Fake {
  horizon 1000 d
  replications 4
  seed 5
  sweep mean in [1 min, 2 min]
}
`;

beforeAll(async () => {
    entry = await buildFakeWorker();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-runcmd-'));
    fs.writeFileSync(path.join(dir, 'fake.twin'), FAKE);
});
afterAll(() => {
    fs.rmSync(entry, { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
});

interface Captured { code: number; stdout: string; stderr: string }

function terminal(): PassThrough & { isTTY: boolean; columns: number } {
    return Object.assign(new PassThrough(), { isTTY: true, columns: 120 });
}

async function run(opts: RunOptions, tty: boolean, onStart?: (interrupt: () => void, stderr: () => string) => void): Promise<Captured> {
    const stdout = new PassThrough();
    const stderr = tty ? terminal() : new PassThrough();
    let out = '';
    let err = '';
    stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
    stderr.setEncoding('utf8').on('data', (s: string) => { err += s; });
    let handler: (() => void) | undefined;
    const io: RunIo = {
        cwd: dir, stdout, stderr, workerEntry: entry,
        onInterrupt: h => { handler = h; onStart?.(() => handler?.(), () => err); return () => { handler = undefined; }; }
    };
    const code = await runCommand('fake.twin', opts, io);
    return { code, stdout: out, stderr: err };
}

describe('runCommand on a terminal', () => {
    it('shows a progress bar on stderr and a KPI table per point on stdout', async () => {
        const r = await run({ workers: 2 }, true);
        expect(r.code).toBe(0);
        expect(r.stderr).toMatch(/\d+\/8 replications \| [\d.]+[kM]? events\/s \| ETA /);
        expect(r.stderr).toMatch(/run \d{8}-\d{6}-\d{3}-[0-9a-f]{6}: 8 of 8 replications, 16000 events in [\d.]+ s/);
        const lines = r.stdout.trimEnd().split('\n');
        expect(lines[0]).toBe('Fake / Few: 4 replications, seed 5, horizon 1000 d');
        expect(lines).toContain('mean = 1 min');
        expect(lines).toContain('mean = 2 min');
        const header = lines.find(l => l.trim().startsWith('KPI'))!;
        expect(header.trim().split(/\s+/)).toEqual(['KPI', 'unit', 'mean', '±95%', 'CI', 'stdev', 'min', 'max', 'n']);
        const rows = lines.filter(l => l.trim().startsWith('value'));
        expect(rows.length).toBe(2);
        // value is in minutes: about the sweep's mean.
        const means = rows.map(l => Number(l.trim().split(/\s+/)[2]));
        expect(means[0]).toBeGreaterThan(0.9);
        expect(means[0]).toBeLessThan(1.1);
        expect(means[1]).toBeCloseTo(2 * means[0], 3); // common random numbers: the same draws, scaled (5 digits shown)
        expect(rows.every(l => l.trim().endsWith(' 4'))).toBe(true);
    });

    it('writes no progress with --json: stdout is one document, stderr empty', async () => {
        const r = await run({ json: true, workers: 2 }, true);
        expect(r.code).toBe(0);
        expect(r.stderr).toBe('');
        expect(r.stdout.trimEnd().split('\n').length).toBe(1);
        expect((JSON.parse(r.stdout) as { points: unknown[] }).points.length).toBe(2);
    });

    it('stops on Ctrl+C: says what finished, keeps it, stores the run as stopped', async () => {
        let sent = false;
        let poll: NodeJS.Timeout | undefined;
        // Endless replications: a horizon and a step count no run reaches.
        const r = await run({ workers: 1, set: ['steps=1000000000000'], horizon: '1000000000 d' }, true, (interrupt, stderr) => {
            poll = setInterval(() => {
                // Once the first (endless) replication is under way.
                if (!sent && /[1-9][\d.]*[kM]? events\/s/.test(stderr())) {
                    sent = true;
                    clearInterval(poll);
                    interrupt();
                }
            }, 20);
        });
        clearInterval(poll);
        expect(sent).toBe(true);
        expect(r.code).toBe(EXIT_INTERRUPTED);
        expect(r.stderr).toContain('aimatrix: stopping: the running replications end at their next check');
        expect(r.stderr).toMatch(/aimatrix: stopped: 0 of 8 replications finished; their results are in run (\S+)\n/);
        const id = /results are in run (\S+)/.exec(r.stderr)![1];
        expect(r.stdout).toMatch(/^Fake \/ Few: 4 replications, seed 5, horizon 1000000000 d \(stopped\)/);
        const record = new RunStore(dir).resolve(id);
        expect(record).toMatchObject({ state: 'stopped', progress: { finished: 0, total: 8, failed: 0 } });
        const results = new RunStore(dir).readResults(id) as { perReplication: Array<{ replications: Array<{ status: string }> }> };
        expect(results.perReplication[0].replications.map(x => x.status)).toEqual(['stopped', 'not run', 'not run', 'not run']);
    });
});

describe('a run that cannot start', () => {
    it('is stored as failed with the reason, not left running', async () => {
        const stdout = new PassThrough();
        const stderr = new PassThrough();
        // A worker script path that is not absolute: the worker cannot be made at all.
        const io: RunIo = { cwd: dir, stdout, stderr, workerEntry: 'worker.cjs', onInterrupt: () => () => undefined };
        const before = new Set(new RunStore(dir).list().map(r => r.id));
        await expect(runCommand('fake.twin', { workers: 1 }, io)).rejects.toThrow(/^the run could not start: /);
        const made = new RunStore(dir).list().filter(r => !before.has(r.id));
        expect(made).toHaveLength(1);
        expect(made[0]).toMatchObject({ state: 'failed', reason: expect.stringMatching(/^the run could not start: /) as unknown });
    });
});
