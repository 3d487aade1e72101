/**
 * `aimatrix profile MODEL.onnx`: latency, throughput and per-operator time of an ONNX model
 * at each provider, batch size and concurrency asked for (runtime/profile does the work).
 * The report is a table on a terminal, one JSON document with --json, and is stored under
 * `.aimatrix/profiles/<id>.json`.
 *
 * Exit status: 0 when profiled; 1 when the model cannot be read or run; 2 on a usage error
 * (a bad flag value, an unknown provider, a dynamic dimension that is not fixed).
 */
import { InvalidArgumentError, type Command } from 'commander';
import { parseDimOverride } from '../profile/inputs.js';
import { formatProfile, storeProfile } from '../profile/report.js';
import { profileModel, ProfileUsageError, type ProfileOptions, type ProfileProgress } from '../profile/profile.js';
import { PROVIDER_NAMES, isProviderName } from '../inference/providers.js';

export interface ProfileCliOptions {
    provider?: string[];
    batch?: number[];
    concurrency?: number;
    warmup?: number;
    iterations?: number;
    duration?: number;
    threads?: number;
    dim?: string[];
    json?: boolean;
    out?: string;
}

export interface ProfileIo {
    readonly cwd: string;
    readonly stdout: NodeJS.WritableStream;
    readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export const EXIT_USAGE = 2;

export function registerProfile(program: Command, setExitCode: (code: number) => void): void {
    program.command('profile')
        .description('profile an ONNX model: latency percentiles, throughput, memory and per-operator time, providers and batch sizes side by side')
        .argument('<model>', 'an .onnx file')
        .option('--provider <name>', `execution provider, repeatable to compare (${PROVIDER_NAMES.join(', ')}; default cpu)`, provider)
        .option('--batch <sizes>', 'batch sizes, comma-separated (default 1)', batchList)
        .option('--concurrency <n>', 'concurrent callers; above 1 also measures micro-batched calls (default 1)', whole(1))
        .option('--warmup <n>', 'untimed runs before each timed run, per caller (default 100)', whole(0))
        .option('--iterations <n>', 'timed calls per run, over all callers (default 1000)', whole(1))
        .option('--duration <seconds>', 'time each run for this long instead of a number of calls', seconds)
        .option('--threads <n>', 'ONNX Runtime intra-op threads (default: its own choice; inter-op is 1)', whole(1))
        .option('--dim <name=size>', "size of a dynamic dimension other than the batch: NAME=SIZE or 'INPUT[AXIS]=SIZE'; repeatable", collect)
        .option('--json', 'print one JSON document')
        .option('--out <file>', "keep ONNX Runtime's raw profile (Chrome trace JSON, opens in Perfetto) in FILE instead of deleting it")
        .addHelpText('after', [
            '',
            'Timed runs use a session without ONNX Runtime\'s profiling (it would triple latency); the',
            'per-operator breakdown comes from a separate short run with it on (20 runs at the first batch',
            'size, self time per node: a control-flow node\'s subgraph kernels count in their own rows).',
            'The batch size fills each input\'s batch dimension (the first dynamic one); inputs are',
            'seeded random tensors of the model\'s element types. Throughput counts items (calls × batch).',
            'Memory is the process RSS before the first session and after the last timed run. With',
            'several providers running, --out trace.json keeps the first one\'s profile there, the others\' in trace.<provider>.json.',
            '',
            '--json prints {"model","inputs":[{"name","type","shape"}],"runs":[{"provider","requestedProvider",',
            '"batch","concurrency","batching","iterations","latencyMs":{"mean","p50","p95","p99","min","max"},',
            '"throughputPerSec","mergedCalls"?}],"ops":[{"name","opType","provider","calls","totalMs","meanUs","share"}],',
            '"memory":{"rssBeforeMb","rssAfterMb"},"gpu":null|[{"run","tMs","index","utilizationPct","memoryUsedMb"}]}.',
            'batching is "none" (each caller runs alone) or "micro" (through the micro-batcher, --concurrency > 1).',
            '',
            'Reports are stored under .aimatrix/profiles/<id>.json in the current folder.',
            'Exit status: 0 when profiled, 1 when the model cannot be read or run, 2 on a usage error.'
        ].join('\n'))
        .action(async (model: string, opts: ProfileCliOptions) => {
            setExitCode(await profileCommand(model, opts, { cwd: process.cwd(), stdout: process.stdout, stderr: process.stderr }));
        });
}

function whole(min: number): (value: string) => number {
    return value => {
        const n = Number(value);
        if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number ≥ ${min}.`);
        return n;
    };
}

function seconds(value: string): number {
    const n = Number(value);
    if (!/^\s*\d+(\.\d+)?\s*$/.test(value) || !(n > 0)) throw new InvalidArgumentError('expected a positive number of seconds.');
    return n;
}

function batchList(value: string): number[] {
    const parts = value.split(',').map(s => s.trim());
    const sizes = parts.map(Number);
    if (parts.some(p => !/^\d+$/.test(p)) || sizes.some(n => !Number.isSafeInteger(n) || n < 1)) {
        throw new InvalidArgumentError('expected whole numbers ≥ 1 separated by commas, e.g. 1,8,32.');
    }
    return sizes;
}

function provider(value: string, previous: string[] | undefined): string[] {
    if (!isProviderName(value)) throw new InvalidArgumentError(`unknown execution provider '${value}' (known: ${PROVIDER_NAMES.join(', ')}).`);
    return [...(previous ?? []), value];
}

function collect(value: string, previous: string[] | undefined): string[] {
    return [...(previous ?? []), value];
}

/** Runs the command; returns the exit status. Every error is one line on stderr. */
export async function profileCommand(model: string, opts: ProfileCliOptions, io: ProfileIo): Promise<number> {
    try {
        return await profile(model, opts, io);
    } catch (error) {
        io.stderr.write(`aimatrix: ${oneLine(error)}\n`);
        return error instanceof ProfileUsageError ? EXIT_USAGE : 1;
    }
}

function oneLine(error: unknown): string {
    const text = error instanceof Error ? error.message : String(error);
    return text.split(/\r?\n/).map(s => s.trim()).filter(s => s.length > 0).join(' ').slice(0, 500);
}

async function profile(model: string, opts: ProfileCliOptions, io: ProfileIo): Promise<number> {
    const options: ProfileOptions = (() => {
        const dims: Record<string, number> = {};
        for (const text of opts.dim ?? []) {
            const { key, size } = parseDimOverride(text);
            dims[key] = size;
        }
        return {
            model,
            providers: opts.provider,
            batches: opts.batch,
            concurrency: opts.concurrency,
            warmup: opts.warmup,
            iterations: opts.iterations,
            durationSec: opts.duration,
            threads: opts.threads,
            dims,
            keepProfile: opts.out
        };
    })();
    const live = !opts.json && io.stderr.isTTY === true;
    const onProgress = (p: ProfileProgress): void => {
        // Like `aimatrix run`: `warning:` and `note:` lines; `aimatrix:` starts only errors.
        if (p.kind === 'warning') io.stderr.write(`warning: ${p.message}\n`);
        else if (p.kind === 'note') io.stderr.write(`note: ${p.message}\n`);
        else if (p.kind === 'stage' && live) io.stderr.write(`… ${p.message}\n`);
    };
    const report = await profileModel(options, onProgress);
    // A folder that cannot hold .aimatrix/profiles (read-only, or a file named .aimatrix) must not throw away the profile just measured.
    let stored: { file: string } | undefined;
    try {
        stored = storeProfile(io.cwd, report);
    } catch (error) {
        io.stderr.write(`warning: the report is not stored under ${io.cwd}: ${oneLine(error)}\n`);
    }
    if (opts.json) io.stdout.write(JSON.stringify(report) + '\n');
    else io.stdout.write(formatProfile(report, stored?.file));
    return 0;
}
