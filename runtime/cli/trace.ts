/**
 * `aimatrix trace export RUN --format chrome|otlp|jsonl [--out FILE] [--clock sim|wall] [--endpoint URL]`:
 * the trace of a stored run (binary, or JSON Lines for runs stored before version 2) as Chrome
 * trace-event JSON (opens in Perfetto), OTLP/JSON (OpenTelemetry) or JSON Lines, or pushed to
 * an OTLP/HTTP collector. RUN is a run id, a unique prefix of one, or `last`. Written to a
 * temporary file and renamed: never half a file. A run whose process was killed exports up to
 * its last complete record.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { RunNotFoundError, RunStore } from '../store/run-store.js';
import { exportChrome, type Clock } from '../trace/chrome.js';
import { writeJsonl } from '../trace/convert.js';
import { TRACE_VERSION } from '../trace/jsonl.js';
import { exportOtlp, OtlpPushError, pushOtlp } from '../trace/otlp.js';
import { isBinaryTrace, readTrace, TraceFormatError } from '../trace/read.js';
import { put } from '../trace/stream.js';
import { registerTraceFollow } from './trace-follow.js';

export interface ExportOptions {
    format: 'chrome' | 'otlp' | 'jsonl';
    out?: string;
    clock: Clock;
    json?: boolean;
    /** otlp only: push to this OTLP/HTTP URL instead of writing a file. */
    endpoint?: string;
    /** Spans per request with --endpoint. */
    batchSize?: number;
    /** Seconds to wait for each answer with --endpoint. */
    timeout?: number;
}

export function registerTrace(program: Command, setExitCode: (code: number) => void): void {
    const trace = program.command('trace').description('work with the traces of runs: export stored ones, follow live ones');
    registerTraceFollow(trace, setExitCode);
    trace.command('export')
        .description('export the trace of a stored run (run it with --trace) for another viewer')
        .argument('<run>', 'a run id, a unique prefix of one, or "last"')
        .addOption(new Option('--format <format>', 'the output format').choices(['chrome', 'otlp', 'jsonl']).makeOptionMandatory())
        .option('--out <file>', 'write to FILE (default: standard output)')
        .addOption(new Option('--clock <clock>', 'chrome: timestamps from simulated or wall time').choices(['sim', 'wall']).default('sim'))
        .option('--endpoint <url>', 'otlp: POST to this OTLP/HTTP collector URL as given (e.g. http://localhost:4318/v1/traces) instead of writing')
        .addOption(new Option('--batch-size <n>', 'otlp --endpoint: spans per request').default(512).argParser(positiveInt('--batch-size')))
        .addOption(new Option('--timeout <s>', 'otlp --endpoint: seconds to wait for each answer').default(10).argParser(positiveNumber('--timeout')))
        .option('--json', 'with --out or --endpoint: print a summary as JSON on standard output')
        .addHelpText('after', [
            '',
            'chrome: Chrome trace-event JSON, which Perfetto (ui.perfetto.dev) and chrome://tracing open.',
            'Spans become complete events, levels counters, messages flow arrows from send to receive,',
            'decisions and log lines instants. Timestamps are microseconds of simulated time (--clock sim)',
            'or of wall time since the run started (--clock wall).',
            'otlp: OpenTelemetry OTLP/JSON, one resource per run, spans with their parents, receives linked',
            'to their sends, decisions and instants as zero-length spans; wall-clock times, simulated times',
            'as attributes aimatrix.sim.start/end. Counters are left out (OTLP traces have no levels).',
            'jsonl: JSON Lines (trace format version 1, docs/trace-format.md): the header line, then one',
            'record per line, the records the run stored (in binary) as JSON.',
            'Runs are looked up in .aimatrix/runs/.'
        ].join('\n'))
        .action(async (ref: string, opts: ExportOptions) => {
            setExitCode(await exportCommand(ref, opts, process.cwd(), process.stdout, process.stderr));
        });
}

export async function exportCommand(ref: string, opts: ExportOptions, cwd: string, stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream): Promise<number> {
    const fail = (message: string, code = 1): number => {
        stderr.write(`aimatrix: ${message}\n`);
        return code;
    };
    if (opts.endpoint !== undefined && opts.format !== 'otlp') return fail('--endpoint pushes OTLP: use it with --format otlp', 2);
    if (opts.endpoint !== undefined && opts.out !== undefined) return fail('--endpoint and --out: choose one (push to a collector, or write a file)', 2);
    if (opts.json && !opts.out && opts.endpoint === undefined) return fail('--json needs --out or --endpoint (the trace itself would be on standard output)', 2);
    const store = new RunStore(cwd);
    let runId: string;
    let state: string;
    try {
        const run = store.resolve(ref);
        runId = run.id;
        state = run.state;
    } catch (error) {
        if (error instanceof RunNotFoundError) return fail(error.message);
        throw error;
    }
    let traceFile = store.traceFile(runId);
    if (traceFile === undefined) {
        // A run killed before it ended (aimatrix run) left its trace in the hidden part file.
        const part = store.tracePartFile(runId);
        if (state === 'incomplete' && part !== undefined) traceFile = part;
        else return fail(state === 'running' ? `run ${runId} is still running: its trace is stored when it ends` : `run ${runId} has no trace (run it with --trace FILE)`);
    }
    const note = (truncated: boolean): string => state === 'incomplete' || truncated ? ` (the run did not finish: its trace up to the last complete record)` : '';

    try {
        if (opts.endpoint !== undefined) {
            const stats = await pushOtlp(traceFile, opts.endpoint, { batchSize: opts.batchSize, timeoutMs: (opts.timeout ?? 10) * 1000 });
            if (opts.json) stdout.write(JSON.stringify({ run: runId, endpoint: opts.endpoint, records: stats.records, spans: stats.spans, requests: stats.requests, rejectedSpans: stats.rejectedSpans, truncated: stats.truncated }) + '\n');
            else stderr.write(`run ${runId}: ${stats.spans} spans in ${stats.requests} requests to ${opts.endpoint}${note(stats.truncated)}\n`);
            if (stats.rejectedSpans > 0) return fail(`the collector rejected ${stats.rejectedSpans} of ${stats.spans} spans${stats.rejectMessage ? `: ${stats.rejectMessage}` : ''}`);
            return 0;
        }
        const write = async (out: Writable): Promise<{ records: number; events: number; truncated: boolean }> => {
            if (opts.format === 'otlp') {
                const stats = await exportOtlp(traceFile, out);
                return { records: stats.records, events: stats.spans, truncated: stats.truncated };
            }
            if (opts.format === 'jsonl') {
                const stats = await streamJsonl(traceFile, out);
                return { ...stats, events: stats.records };
            }
            return exportChrome(traceFile, out, opts.clock);
        };
        if (!opts.out) {
            await write(stdout as Writable);
            return 0;
        }
        const target = path.resolve(cwd, opts.out);
        if (opts.format === 'jsonl' && isBinaryTrace(traceFile)) {
            // The block-by-block converter: JSON made straight from the blocks, no record objects.
            const stats = writeJsonl(traceFile, target);
            if (opts.json) stdout.write(JSON.stringify({ run: runId, out: opts.out, records: stats.records, events: stats.records }) + '\n');
            else stderr.write(`run ${runId}: ${stats.records} records in ${opts.out}${note(stats.truncated)}\n`);
            return 0;
        }
        const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
        const out = fs.createWriteStream(temp);
        try {
            const stats = await write(out);
            out.end();
            await finished(out);
            fs.renameSync(temp, target);
            const what = opts.format === 'otlp' ? 'spans' : 'trace events';
            if (opts.json) stdout.write(JSON.stringify({ run: runId, out: opts.out, records: stats.records, events: stats.events }) + '\n');
            else if (opts.format === 'jsonl') stderr.write(`run ${runId}: ${stats.records} records in ${opts.out}${note(stats.truncated)}\n`);
            else stderr.write(`run ${runId}: ${stats.records} records → ${stats.events} ${what} in ${opts.out}${note(stats.truncated)}\n`);
        } catch (error) {
            // Writes still in flight fail on the destroyed stream: the export's own error is the one to report.
            out.on('error', () => undefined);
            out.destroy();
            if (!out.closed) await new Promise<void>(resolve => out.once('close', () => resolve()));
            fs.rmSync(temp, { force: true });
            throw error;
        }
        return 0;
    } catch (error) {
        if (error instanceof TraceFormatError || error instanceof OtlpPushError) return fail(error.message);
        const code = (error as NodeJS.ErrnoException).code;
        return fail(`cannot export the trace of ${runId}: ${code ?? (error instanceof Error ? error.message : String(error))}`);
    }
}

/**
 * A trace of either encoding as JSON Lines (version 1) on a stream, as `writeJsonl` writes a
 * file: the header line with version 1, then each record's JSON. Records come a block at a
 * time and are written in chunks that wait on the stream's back-pressure, so memory stays flat
 * however long the trace.
 */
async function streamJsonl(traceFile: string, out: Writable): Promise<{ records: number; truncated: boolean }> {
    const reader = readTrace(traceFile);
    let chunk = '';
    let records = 0;
    for await (const item of reader) {
        if (item.kind === 'header') {
            const { encoding: _encoding, kind, format, version: _version, ...rest } = item;
            chunk += JSON.stringify({ kind, format, version: TRACE_VERSION, ...rest }) + '\n';
        } else {
            chunk += JSON.stringify(item) + '\n';
            records++;
        }
        if (chunk.length >= 64 * 1024) {
            await put(out, chunk);
            chunk = '';
        }
    }
    if (chunk.length > 0) await put(out, chunk);
    return { records, truncated: reader.truncated };
}

function positiveInt(option: string): (value: string) => number {
    return value => {
        const n = Number(value);
        if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${option} must be a whole number of at least 1, not '${value}'`);
        return n;
    };
}

function positiveNumber(option: string): (value: string) => number {
    return value => {
        const n = Number(value);
        if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${option} must be a number above 0, not '${value}'`);
        return n;
    };
}
