/**
 * `aimatrix run FILE`: runs a twin or an experiment — every replication of every sweep
 * point on worker threads — stores the run under `.aimatrix/runs/<runId>/`, and prints the
 * KPIs (a table on a terminal, one JSON document with --json).
 *
 * Exit status: 0 when every replication completed; 1 when the model has errors or a
 * replication failed; 2 on a usage error; 130 when stopped by Ctrl+C (what finished is kept).
 */
import { writeJsonl } from '../trace/convert.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { SingleBar } from 'cli-progress';
import type { InferenceUse, RunReport } from '../../protocol/index.js';
import type { ExperimentPlan } from '../experiment/plan.js';
import type { Progress } from '../experiment/runner.js';
import type { KpiUnit } from '../experiment/messages.js';
import { buildReport, launchRun, prepareRun } from '../experiment/session.js';
import { RunStore } from '../store/run-store.js';
import { formatDiagnostic } from './check.js';

export interface RunOptions {
    experiment?: string;
    replications?: number;
    seed?: number;
    set?: string[];
    horizon?: string;
    workers?: number;
    json?: boolean;
    trace?: string;
}

/** What the command reads and writes, injected so that it runs in tests. */
export interface RunIo {
    readonly cwd: string;
    readonly stdout: NodeJS.WritableStream;
    readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
    /** The worker script; beside the bundle by default. */
    readonly workerEntry: string;
    /** Subscribes to Ctrl+C; returns the unsubscribe. */
    readonly onInterrupt: (handler: () => void) => () => void;
}

export const EXIT_INTERRUPTED = 130;

export function registerRun(program: Command, setExitCode: (code: number) => void): void {
    program.command('run')
        .description('run a twin or an experiment: replications on worker threads, KPIs with 95% confidence intervals')
        .argument('<file>', 'a .twin file')
        .option('--experiment <name>', 'the experiment to run (default: the first in the file; none: the twin with defaults)')
        .option('--replications <n>', 'replications per point (default: the experiment\'s, else 1)', wholeNumber(1))
        .option('--seed <n>', 'experiment seed (default: the experiment\'s, else 1)', wholeNumber(0))
        .option('--set <name=value>', 'override a parameter, with its unit when it has one (--set serviceMean=3min); repeatable', collect, [])
        .option('--horizon <time>', 'simulated time to run, with a unit: 8h, "8 h", 30min')
        .option('--workers <n>', 'worker threads (default: the number of cores, at most one per replication)', wholeNumber(1))
        .option('--json', 'print one JSON document with the results')
        .option('--trace <file>', 'write the trace of the first replication of the first point to FILE: JSON Lines, or the stored binary trace when FILE ends in .aimtrace; also stored with the run')
        .addHelpText('after', [
            '',
            '--json prints {"runId","state","twin","experiment","seed","replications","horizon":{"value","unit"},',
            '"points":[{"set":{NAME:VALUE},"kpis":{NAME:{"unit","mean","stdev","ci95":[lo,hi],"min","max","n"}}}],',
            '"events","wallMs","errors":[…]}; horizon.value is null when the model runs until no event is left;',
            'set values are in each parameter\'s declared unit; stdev and ci95 are null when n < 2.',
            'When agents call ONNX models, "inference":[{"model","provider","calls","runs","cacheHits","cacheMisses"}]',
            'says how, summed over the completed replications (runs: session runs; a micro-batch counts once).',
            '',
            'The run is stored under .aimatrix/runs/<runId>/ in the current folder: run.json (what was run',
            'and its state), results.json, and trace.aimtrace (binary) with --trace; aimatrix trace export',
            'turns a stored trace into JSON Lines, Chrome or OTLP JSON. KPI values are in each KPI\'s unit.',
            'Ctrl+C stops the running replications and keeps those that finished.',
            'Exit status: 0 when every replication completed, 1 on a model error or a failed replication,',
            '2 on a usage error, 130 when stopped.'
        ].join('\n'))
        .action(async (file: string, opts: RunOptions) => {
            setExitCode(await runCommand(file, opts, {
                cwd: process.cwd(),
                stdout: process.stdout,
                stderr: process.stderr,
                workerEntry: path.join(__dirname, 'worker.cjs'),
                onInterrupt: handler => {
                    process.on('SIGINT', handler);
                    return () => { process.off('SIGINT', handler); };
                }
            }));
        });
}

function wholeNumber(min: number): (value: string) => number {
    return value => {
        const n = Number(value);
        if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number ≥ ${min}.`);
        return n;
    };
}

function collect(value: string, previous: string[]): string[] {
    return [...previous, value];
}

/** The `--json` document (and the summary in results.json): declared in the protocol. */
export type { RunReport };

/** Ctrl+C presses, counted from the start of the command and handed to whoever listens once there is a run to stop. */
class Interrupts {
    count = 0;
    private listener: ((count: number) => void) | undefined;

    fire(): void {
        this.count++;
        this.listener?.(this.count);
    }

    listen(listener: (count: number) => void): void {
        this.listener = listener;
        if (this.count > 0) listener(this.count);
    }
}

export async function runCommand(file: string, opts: RunOptions, io: RunIo): Promise<number> {
    // Subscribed first: a Ctrl+C at any moment is handled, never the default sudden exit.
    const interrupts = new Interrupts();
    const unsubscribe = io.onInterrupt(() => interrupts.fire());
    try {
        return await execute(file, opts, io, interrupts);
    } finally {
        unsubscribe();
    }
}

async function execute(file: string, opts: RunOptions, io: RunIo, interrupts: Interrupts): Promise<number> {
    const fail = (message: string, code: number): number => {
        if (opts.json) io.stdout.write(JSON.stringify({ error: message }) + '\n');
        io.stderr.write(`aimatrix: ${message}\n`);
        return code;
    };

    // 1. The model, checked like `aimatrix check` (errors mean no run), and the plan.
    const prepared = await prepareRun(file, opts, io.cwd);
    if (prepared.kind === 'errors') {
        const { check } = prepared;
        if (opts.json) {
            const diagnostics = check.diagnostics.filter(d => d.severity === 'error').map(({ file: f, line, column, severity, code, message }) => ({ file: f, line, column, severity, code, message }));
            io.stdout.write(JSON.stringify({ error: `${file}: ${check.errors} error${check.errors === 1 ? '' : 's'}, not run`, diagnostics }) + '\n');
        } else {
            for (const d of check.diagnostics.filter(x => x.severity === 'error')) io.stderr.write(formatDiagnostic(d) + '\n');
        }
        io.stderr.write(`aimatrix: ${file}: ${check.errors} error${check.errors === 1 ? '' : 's'}, not run\n`);
        return 1;
    }
    if (prepared.kind === 'usage') return fail(prepared.message, 2);
    const { plan } = prepared;

    if (interrupts.count > 0) return fail('stopped before the run started: nothing was run', EXIT_INTERRUPTED);

    // 2. The stored run and the replications, with a progress bar on a terminal and Ctrl+C to stop.
    const bar = !opts.json && io.stderr.isTTY ? new ProgressBar(io.stderr, plan.points.length * plan.replications) : undefined;
    const launched = launchRun(prepared, {
        cwd: io.cwd, workerEntry: io.workerEntry, workers: opts.workers, options: { ...opts },
        trace: opts.trace !== undefined ? 'part' : 'none',
        onProgress: progress => bar?.update(progress),
        // On a terminal the bar's line is cleared first; the bar draws itself again on its next update.
        onWarning: message => io.stderr.write(`${bar ? '\r\x1b[K' : ''}warning: ${message}\n`)
    });
    const { handle } = launched;
    interrupts.listen(count => {
        if (count === 1) {
            bar?.note();
            io.stderr.write('aimatrix: stopping: the running replications end at their next check (Ctrl+C again to end them now)\n');
            handle.stop();
        } else {
            handle.kill();
        }
    });
    const end = await launched.end;
    bar?.stop();
    if (end.kind === 'failed') return fail(end.loadError ? `${file}: ${end.message}` : end.message, 1);

    // 3. The trace, copied where asked (it is stored with the run).
    const { record, report, result, finished, total } = end;
    if (end.traceFile && opts.trace !== undefined) {
        try {
            // JSON Lines unless the name asks for the stored (binary) trace itself.
            const target = path.resolve(io.cwd, opts.trace);
            if (target.endsWith('.aimtrace')) copyAtomic(end.traceFile, target);
            else writeJsonl(end.traceFile, target);
        } catch (error) {
            const reason = (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error));
            io.stderr.write(`aimatrix: cannot write the trace to ${opts.trace}: ${reason} (it is stored in ${relative(io.cwd, end.traceFile)})\n`);
        }
    }

    // 4. Output.
    if (opts.json) {
        io.stdout.write(JSON.stringify(report) + '\n');
    } else {
        io.stdout.write(formatTable(report, result.kpis, plan) + '\n');
        for (const u of report.inference ?? []) io.stdout.write(formatInference(u) + '\n');
    }
    for (const e of report.errors.slice(0, 10)) {
        io.stderr.write(`aimatrix: replication ${e.replication}${plan.points.length > 1 ? ` of point ${e.point} (${formatSet(report.points[e.point].set)})` : ''} failed: ${e.text}\n`);
    }
    if (report.errors.length > 10) io.stderr.write(`aimatrix: … and ${report.errors.length - 10} more failed replications (see ${relative(io.cwd, new RunStore(io.cwd).file(record.id, 'results.json'))})\n`);
    if (result.state === 'stopped') {
        io.stderr.write(`aimatrix: stopped: ${finished} of ${total} replications finished; their results are in run ${record.id}\n`);
        return EXIT_INTERRUPTED;
    }
    if (!opts.json) io.stderr.write(`run ${record.id}: ${finished} of ${total} replications, ${result.events} events in ${(result.wallMs / 1000).toFixed(2)} s\n`);
    return result.state === 'completed' ? 0 : 1;
}

export { buildReport };

// ------------------------------------------------------------------ output

function formatSet(set: Readonly<Record<string, number | boolean | string>>): string {
    return Object.entries(set).map(([k, v]) => `${k}=${String(v)}`).join(' ');
}

function num(x: number | null | undefined): string {
    if (x === null || x === undefined || !Number.isFinite(x)) return '–';
    if (x === 0) return '0';
    const abs = Math.abs(x);
    if (abs >= 1e6 || abs < 1e-3) return x.toExponential(3);
    return Number(x.toPrecision(5)).toString();
}

/** The KPI table: per point, one row per KPI. */
export function formatTable(report: RunReport, kpis: readonly KpiUnit[], plan: ExperimentPlan): string {
    const units = new Map(plan.params.map(p => [p.name, p.unit]));
    const lines: string[] = [];
    const head = `${report.twin}${report.experiment ? ` / ${report.experiment}` : ''}: ${report.replications} replication${report.replications === 1 ? '' : 's'}` +
        `, seed ${report.seed}, horizon ${report.horizon.value === null ? 'until no event is left' : `${report.horizon.value} ${report.horizon.unit}`}` +
        (report.state === 'completed' ? '' : ` (${report.state})`);
    lines.push(head);
    const header = ['KPI', 'unit', 'mean', '±95% CI', 'stdev', 'min', 'max', 'n'];
    for (const point of report.points) {
        const set = Object.entries(point.set).map(([k, v]) => `${k} = ${String(v)}${units.get(k) ? ` ${units.get(k)}` : ''}`).join(', ');
        if (report.points.length > 1 || set) lines.push('', set || '(defaults)');
        else lines.push('');
        const rows = Object.entries(point.kpis).map(([name, s]) => [
            name, s.unit ?? '', num(s.mean), s.ci95 ? num((s.ci95[1] - s.ci95[0]) / 2) : '–', num(s.stdev), num(s.min), num(s.max), String(s.n)
        ]);
        if (rows.length === 0) lines.push(kpis.length === 0 ? '  (the twin declares no KPI)' : '  (no KPI reported)');
        else lines.push(...table([header, ...rows]));
    }
    return lines.join('\n');
}

function table(rows: string[][]): string[] {
    const widths = rows[0].map((_, c) => Math.max(...rows.map(r => r[c].length)));
    return rows.map(r => '  ' + r.map((cell, c) => c <= 1 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])).join('  ').trimEnd());
}

/** `model DemandForecast on cpu: 720 calls, 320 runs (1.5 calls per run), cache 240 hits, 480 misses` */
function formatInference(u: InferenceUse): string {
    const per = u.runs > 0 ? Number((u.cacheMisses / u.runs).toFixed(2)) : 0;
    const perRun = u.runs > 0 ? ` (${per} call${per === 1 ? '' : 's'} per run)` : '';
    return `model ${u.model} on ${u.provider}: ${u.calls} calls, ${u.runs} runs${perRun}, cache ${u.cacheHits} hits, ${u.cacheMisses} misses`;
}

/** A progress bar on stderr (terminals only): replications done, events/s, ETA. */
class ProgressBar {
    private readonly bar: SingleBar;
    private active = true;

    constructor(stream: NodeJS.WritableStream, total: number) {
        this.bar = new SingleBar({
            stream, format: '{bar} {value}/{total} replications | {rate} events/s | ETA {eta_text}',
            barsize: 30, hideCursor: true, clearOnComplete: true, etaBuffer: 1, fps: 10
        });
        this.bar.start(total, 0, { rate: '0', eta_text: '…' });
    }

    update(p: Progress): void {
        if (!this.active) return;
        this.bar.update(p.done, { rate: compact(p.eventsPerSecond), eta_text: p.etaSeconds === undefined ? '…' : duration(p.etaSeconds) });
    }

    /** Clears the bar's line before a message. */
    note(): void {
        this.stop();
    }

    stop(): void {
        if (!this.active) return;
        this.active = false;
        this.bar.stop();
    }
}

function compact(x: number): string {
    if (x >= 1e6) return `${(x / 1e6).toFixed(1)}M`;
    if (x >= 1e3) return `${(x / 1e3).toFixed(1)}k`;
    return x.toFixed(0);
}

function duration(seconds: number): string {
    if (seconds < 60) return `${Math.ceil(seconds)}s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
    return `${Math.floor(seconds / 3600)}h${String(Math.round(seconds % 3600 / 60)).padStart(2, '0')}m`;
}

function relative(cwd: string, file: string): string {
    const rel = path.relative(cwd, file);
    return rel === '' ? '.' : rel.startsWith('..') ? file : rel;
}

function copyAtomic(from: string, to: string): void {
    const temp = path.join(path.dirname(to), `.${path.basename(to)}.${process.pid}.tmp`);
    try {
        fs.copyFileSync(from, temp);
        fs.renameSync(temp, to);
    } catch (error) {
        fs.rmSync(temp, { force: true });
        throw error;
    }
}
