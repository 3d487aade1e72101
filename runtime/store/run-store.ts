/**
 * The run store: every run under `<workspace>/.aimatrix/runs/<runId>/`, with
 * - `run.json`: what was run (model files, twin, experiment, resolved parameters, options) and its state;
 * - `results.json`: the results, written once at the end (or when stopped);
 * - `trace.aimtrace`: the trace, when asked for (binary, runtime/trace/binary.ts; runs stored
 *   before that format have `trace.jsonl`, which every reader still reads).
 *
 * Every file is written atomically: to a temporary file in the same folder, fsync'd, then
 * renamed over the target, so a reader sees the old content or the new, never half of it.
 * A run starts `running` with its pid; a process killed before it ends leaves `running`,
 * which `listRuns` reports (and records) as `incomplete` once that pid is gone.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export type RunState = 'running' | 'completed' | 'stopped' | 'failed' | 'incomplete';

export interface RunRecord {
    readonly id: string;
    readonly state: RunState;
    /** The process that ran it, and where: to tell a live run from a killed one. */
    readonly pid: number;
    readonly host: string;
    /** ISO times. */
    readonly startedAt: string;
    readonly endedAt?: string;
    /** The file that was run, and every model file it loaded, relative to the workspace. */
    readonly file: string;
    readonly files: readonly string[];
    readonly twin: string;
    readonly experiment: string | null;
    /** Every parameter of the twin: its default and shown unit. */
    readonly params: readonly unknown[];
    /** The resolved experiment: points with their parameters, replications, seed, horizon, warm-up. */
    readonly plan: unknown;
    /** The options as given on the command line. */
    readonly options: Readonly<Record<string, unknown>>;
    readonly trace: boolean;
    /** How far it got: finished replications out of all. */
    readonly progress?: { readonly finished: number; readonly total: number; readonly failed: number };
    /** Why it failed or stopped, in one line. */
    readonly reason?: string;
}

export const RUNS_FOLDER = path.join('.aimatrix', 'runs');
const RUN_ID = /^\d{8}-\d{6}-\d{3}-[0-9a-f]{6}$/;

/** A sortable id: UTC time to the millisecond, then 6 random hex digits. `20250314-093000-123-a1b2c3` */
export function newRunId(now: Date = new Date()): string {
    const iso = now.toISOString(); // 2025-03-14T09:30:00.123Z
    const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}-${iso.slice(20, 23)}`;
    return `${stamp}-${crypto.randomBytes(3).toString('hex')}`;
}

/**
 * Writes a file atomically: temporary file in the same folder, fsync, rename, fsync of the
 * folder. `mode` is set whatever the umask (0o600 for a secret), before any byte is written.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o644): void {
    const dir = path.dirname(file);
    const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);
    const fd = fs.openSync(temp, 'wx', mode);
    try {
        fs.fchmodSync(fd, mode);
        fs.writeFileSync(fd, data);
        fs.fsyncSync(fd);
    } catch (error) {
        fs.closeSync(fd);
        fs.rmSync(temp, { force: true });
        throw error;
    }
    fs.closeSync(fd);
    try {
        fs.renameSync(temp, file);
    } catch (error) {
        fs.rmSync(temp, { force: true });
        throw error;
    }
    syncFolder(dir);
}

function syncFolder(dir: string): void {
    let fd: number | undefined;
    try {
        fd = fs.openSync(dir, 'r');
        fs.fsyncSync(fd);
    } catch {
        // Some file systems cannot fsync a folder; the rename is still atomic.
    } finally {
        if (fd !== undefined) fs.closeSync(fd);
    }
}

export class RunNotFoundError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'RunNotFoundError';
    }
}

export type NewRun = Omit<RunRecord, 'id' | 'state' | 'pid' | 'host' | 'startedAt'>;

export class RunStore {
    readonly root: string;

    constructor(readonly workspace: string) {
        this.root = path.join(workspace, RUNS_FOLDER);
    }

    folder(id: string): string {
        return path.join(this.root, id);
    }

    file(id: string, name: 'run.json' | 'results.json' | 'trace.aimtrace' | 'trace.jsonl'): string {
        return path.join(this.folder(id), name);
    }

    /** The run's stored trace: `trace.aimtrace`, or `trace.jsonl` of a run stored before it; undefined when it has none. */
    traceFile(id: string): string | undefined {
        for (const name of ['trace.aimtrace', 'trace.jsonl'] as const) {
            const file = this.file(id, name);
            if (fs.existsSync(file)) return file;
        }
        return undefined;
    }

    /** The hidden file a run's trace is written to until `aimatrix run` ends (left behind by a killed run), of either format. */
    tracePartFile(id: string): string | undefined {
        for (const name of ['.trace.aimtrace.part', '.trace.jsonl.part']) {
            const file = path.join(this.folder(id), name);
            if (fs.existsSync(file)) return file;
        }
        return undefined;
    }

    /** Creates the run's folder with `run.json` in state `running`. */
    create(run: NewRun, now: Date = new Date()): RunRecord {
        fs.mkdirSync(this.root, { recursive: true });
        const id = newRunId(now);
        fs.mkdirSync(this.folder(id));
        const record: RunRecord = { id, state: 'running', pid: process.pid, host: os.hostname(), startedAt: now.toISOString(), ...run };
        this.write(record);
        return record;
    }

    /** Rewrites `run.json` with some fields changed. */
    update(record: RunRecord, change: Partial<Omit<RunRecord, 'id'>>): RunRecord {
        const next = { ...record, ...change };
        this.write(next);
        return next;
    }

    /** Writes `results.json` atomically. */
    writeResults(id: string, results: unknown): void {
        writeFileAtomic(this.file(id, 'results.json'), JSON.stringify(results, null, 2) + '\n');
    }

    read(id: string): RunRecord {
        const record = JSON.parse(fs.readFileSync(this.file(id, 'run.json'), 'utf8')) as RunRecord | null;
        // Valid JSON that is not this run's record (hand-edited, `{}`) is unreadable, like broken JSON.
        if (typeof record !== 'object' || record === null || record.id !== id || typeof record.state !== 'string') throw new Error(`${this.file(id, 'run.json')}: not a run record`);
        return this.settle(record);
    }

    readResults(id: string): unknown {
        return JSON.parse(fs.readFileSync(this.file(id, 'results.json'), 'utf8')) as unknown;
    }

    /**
     * Every run, oldest first. A run still `running` whose process is gone (killed, crashed)
     * is reported as `incomplete`, and recorded so.
     */
    list(): RunRecord[] {
        let names: string[];
        try {
            names = fs.readdirSync(this.root);
        } catch {
            return [];
        }
        const runs: RunRecord[] = [];
        for (const name of names.filter(n => RUN_ID.test(n)).sort()) {
            try {
                runs.push(this.read(name));
            } catch {
                // A folder whose run.json is not there yet (a run being created) or unreadable: not a run.
            }
        }
        return runs;
    }

    /** A run by id, unique prefix of an id, or `last`. */
    resolve(ref: string): RunRecord {
        const runs = this.list();
        if (runs.length === 0) throw new RunNotFoundError(`no runs in ${this.root}`);
        if (ref === 'last') return runs[runs.length - 1];
        const exact = runs.find(r => r.id === ref);
        if (exact) return exact;
        const matches = runs.filter(r => r.id.startsWith(ref));
        if (matches.length === 1) return matches[0];
        if (matches.length === 0) throw new RunNotFoundError(`no run '${ref}' in ${this.root} (last: ${runs[runs.length - 1].id})`);
        throw new RunNotFoundError(`'${ref}' matches ${matches.length} runs (${matches.slice(0, 3).map(r => r.id).join(', ')}${matches.length > 3 ? ', …' : ''}): give more of the id`);
    }

    private write(record: RunRecord): void {
        writeFileAtomic(this.file(record.id, 'run.json'), JSON.stringify(record, null, 2) + '\n');
    }

    /** A `running` record whose process is gone becomes `incomplete`. */
    private settle(record: RunRecord): RunRecord {
        if (record.state !== 'running' || record.host !== os.hostname() || processAlive(record.pid)) return record;
        const settled: RunRecord = { ...record, state: 'incomplete', reason: 'the process running it ended before it finished' };
        try {
            this.write(settled);
        } catch {
            // A read-only store: report it, even if it cannot be recorded.
        }
        return settled;
    }
}

export function processAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (error) {
        return (error as NodeJS.ErrnoException).code === 'EPERM';
    }
}

/** The runs of a workspace, oldest first; runs whose process died are reported (and recorded) as incomplete. */
export function listRuns(workspace: string): RunRecord[] {
    return new RunStore(workspace).list();
}
