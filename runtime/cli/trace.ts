/**
 * `aimatrix trace export RUN --format chrome [--out FILE] [--clock sim|wall]`: the trace of a
 * stored run as Chrome trace-event JSON (opens in Perfetto). RUN is a run id, a unique
 * prefix of one, or `last`. Written to a temporary file and renamed: never half a file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { Option, type Command } from 'commander';
import { RunNotFoundError, RunStore } from '../store/run-store.js';
import { exportChrome, type Clock } from '../trace/chrome.js';
import { TraceFormatError } from '../trace/jsonl.js';
import { registerTraceFollow } from './trace-follow.js';

interface ExportOptions {
    format: 'chrome';
    out?: string;
    clock: Clock;
    json?: boolean;
}

export function registerTrace(program: Command, setExitCode: (code: number) => void): void {
    const trace = program.command('trace').description('work with the traces of runs: export stored ones, follow live ones');
    registerTraceFollow(trace, setExitCode);
    trace.command('export')
        .description('export the trace of a stored run (run it with --trace) for another viewer')
        .argument('<run>', 'a run id, a unique prefix of one, or "last"')
        .addOption(new Option('--format <format>', 'the output format').choices(['chrome']).makeOptionMandatory())
        .option('--out <file>', 'write to FILE (default: standard output)')
        .addOption(new Option('--clock <clock>', 'timestamps from simulated or wall time').choices(['sim', 'wall']).default('sim'))
        .option('--json', 'with --out: print {"run","out","records","events"} on standard output')
        .addHelpText('after', [
            '',
            'chrome: Chrome trace-event JSON, which Perfetto (ui.perfetto.dev) and chrome://tracing open.',
            'Spans become complete events, levels counters, messages flow arrows from send to receive,',
            'decisions and log lines instants. Timestamps are microseconds of simulated time (--clock sim)',
            'or of wall time since the run started (--clock wall). Runs are looked up in .aimatrix/runs/.'
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
    if (opts.json && !opts.out) return fail('--json needs --out (the trace itself would be on standard output)', 2);
    const store = new RunStore(cwd);
    let runId: string;
    let running = false;
    try {
        const run = store.resolve(ref);
        runId = run.id;
        running = run.state === 'running';
    } catch (error) {
        if (error instanceof RunNotFoundError) return fail(error.message);
        throw error;
    }
    const traceFile = store.file(runId, 'trace.jsonl');
    if (!fs.existsSync(traceFile)) {
        return fail(running ? `run ${runId} is still running: its trace is stored when it ends` : `run ${runId} has no trace (run it with --trace FILE)`);
    }

    try {
        if (!opts.out) {
            await exportChrome(traceFile, stdout as Writable, opts.clock);
            return 0;
        }
        const target = path.resolve(cwd, opts.out);
        const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
        const out = fs.createWriteStream(temp);
        try {
            const stats = await exportChrome(traceFile, out, opts.clock);
            out.end();
            await finished(out);
            fs.renameSync(temp, target);
            if (opts.json) stdout.write(JSON.stringify({ run: runId, out: opts.out, records: stats.records, events: stats.events }) + '\n');
            else stderr.write(`run ${runId}: ${stats.records} records → ${stats.events} trace events in ${opts.out}\n`);
        } catch (error) {
            out.destroy();
            fs.rmSync(temp, { force: true });
            throw error;
        }
        return 0;
    } catch (error) {
        if (error instanceof TraceFormatError) return fail(error.message);
        const code = (error as NodeJS.ErrnoException).code;
        return fail(`cannot export the trace of ${runId}: ${code ?? (error instanceof Error ? error.message : String(error))}`);
    }
}
