/**
 * `npm run bench:lsp`: the language server as a user meets it — the bundled
 * `dist/language-server.cjs` over stdio with a real LSP client.
 *
 * Generates (into bench/.work/) a 10,000-line twin file, a 100-line twin file and a
 * 1,000-file workspace of twins, agent systems and experiments that import each other;
 * then measures, in one run and side by side for the large and the small file:
 *  - completion latency (request → response) at references in processes,
 *  - hover latency (request → response) on parameter references,
 *  - edit-to-diagnostics latency: an incremental didChange (a typo, then its fix) →
 *    the publishDiagnostics that reflects it,
 *  - indexing: `initialized` → diagnostics published for every file of the workspace
 *    (parse + link + validate of all files by the server), 1,000 files vs 1 file.
 * Also, for reference, `aimatrix check` of the same workspace in one process.
 *
 * Options (environment): BENCH_SAMPLES (default 50), BENCH_SERVER_NODE_ARGS (e.g.
 * "--cpu-prof --cpu-prof-dir=bench/.work/prof" to profile the server).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { URI } from 'vscode-uri';
import {
    CompletionRequest, HoverRequest,
    type CompletionItem, type CompletionList, type Hover, type Position
} from 'vscode-languageserver-protocol';
import { LspTestClient } from '../test/protocol/lsp-client.js';
import { twinFile, writeWorkspace } from './generate.js';

const ROOT = path.resolve(__dirname, '..');
const WORK = path.join(ROOT, 'bench', '.work');
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 50);
const WARMUP = 10;
const SERVER_NODE_ARGS = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(a => a.length > 0);

const TARGETS = { completionP95: 50, editP95: 250, indexMs: 5000 };

interface Stats { p50: number; p95: number; mean: number; n: number }

function stats(samples: number[]): Stats {
    const sorted = [...samples].sort((a, b) => a - b);
    const rank = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
    return { p50: rank(50), p95: rank(95), mean: sorted.reduce((a, b) => a + b, 0) / sorted.length, n: sorted.length };
}

function linesOf(text: string): string[] {
    return text.split('\n');
}

/** Positions (0-based) of every match of `pattern` (the group `at` marks the spot), spread through the file. */
function positionsOf(text: string, pattern: RegExp, group: string): Position[] {
    const out: Position[] = [];
    linesOf(text).forEach((line, i) => {
        const m = pattern.exec(line);
        if (m?.groups?.[group] !== undefined) out.push({ line: i, character: line.indexOf(m.groups[group], m.index) });
    });
    return out;
}

/** `count` items picked evenly through `items` (cycling when there are fewer). */
function spread<T>(items: T[], count: number): T[] {
    if (items.length === 0) throw new Error('nothing to sample');
    return Array.from({ length: count }, (_, i) => items[Math.floor((i * items.length) / count) % items.length]);
}

function labels(result: CompletionItem[] | CompletionList | null): string[] {
    if (!result) return [];
    return (Array.isArray(result) ? result : result.items).map(i => i.label);
}

function hoverText(hover: Hover | null): string {
    if (!hover) return '';
    const c = hover.contents;
    if (typeof c === 'string') return c;
    if (Array.isArray(c)) return c.map(x => typeof x === 'string' ? x : x.value).join('\n');
    return c.value;
}

async function time<T>(action: () => Promise<T>): Promise<[number, T]> {
    const start = performance.now();
    const result = await action();
    return [performance.now() - start, result];
}

interface FileResult { lines: number; completion: Stats; hover: Stats; edit: Stats; completionHits: number; hoverHits: number }

/** Completion, hover and edit-to-diagnostics on one open file. */
async function benchFile(client: LspTestClient, file: string): Promise<FileResult> {
    const uri = URI.file(file).toString();
    const text = fs.readFileSync(file, 'utf8');
    const opened = client.nextDiagnostics(uri);
    await client.open(uri, text);
    const first = await opened;
    if (first.diagnostics.length > 0) {
        throw new Error(`the generated file is not clean: ${first.diagnostics.slice(0, 3).map(d => `${d.range.start.line + 1}: ${d.message}`).join('; ')}`);
    }

    // Completion right at the resource name after `seize` (names in scope); hover on a parameter reference.
    const seizes = positionsOf(text, /^\s+seize (?<at>Machine\d+)$/, 'at');
    const hovers = positionsOf(text, /exponential\(mean: (?<at>arrivalMean\d+)\)/, 'at');
    const lines = linesOf(text);
    let completionHits = 0;
    let hoverHits = 0;
    const complete = async (position: Position): Promise<number> => {
        const [ms, result] = await time(() => client.connection.sendRequest(CompletionRequest.type, { textDocument: { uri }, position }));
        const expected = /Machine\d+/.exec(lines[position.line].slice(position.character))![0];
        if (labels(result).includes(expected)) completionHits++;
        return ms;
    };
    const hover = async (position: Position): Promise<number> => {
        const [ms, result] = await time(() => client.connection.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line: position.line, character: position.character + 2 } }));
        if (hoverText(result).includes('arrivalMean')) hoverHits++;
        return ms;
    };
    // A typo in a resource name (unique each time, so that its diagnostic is recognisable), then its fix.
    let typo = 0;
    const edit = async (position: Position): Promise<number[]> => {
        const name = /Machine\d+/.exec(lines[position.line].slice(position.character))![0];
        const range = { start: position, end: { line: position.line, character: position.character + name.length } };
        const wrong = `${name}x${++typo}`;
        const broken = client.nextDiagnostics(uri, p => p.diagnostics.some(d => d.message.includes(wrong)));
        const [msBreak] = await time(async () => { await client.changeRange(uri, range, wrong); await broken; });
        const fixed = client.nextDiagnostics(uri, p => p.diagnostics.length === 0);
        const wrongRange = { start: position, end: { line: position.line, character: position.character + wrong.length } };
        const [msFix] = await time(async () => { await client.changeRange(uri, wrongRange, name); await fixed; });
        return [msBreak, msFix];
    };

    for (const p of spread(seizes, WARMUP)) await complete(p);
    for (const p of spread(hovers, WARMUP)) await hover(p);
    for (const p of spread(seizes, 3)) await edit(p);
    completionHits = 0;
    hoverHits = 0;

    const completion: number[] = [];
    for (const p of spread(seizes, SAMPLES)) completion.push(await complete(p));
    const hoverMs: number[] = [];
    for (const p of spread(hovers, SAMPLES)) hoverMs.push(await hover(p));
    const editMs: number[] = [];
    for (const p of spread(seizes, Math.ceil(SAMPLES / 2))) editMs.push(...await edit(p));
    await client.close(uri);
    return { lines: lines.length, completion: stats(completion), hover: stats(hoverMs), edit: stats(editMs), completionHits, hoverHits };
}

interface IndexResult { files: number; ms: number; errors: number; startupMs: number }

/** A fresh server on a workspace: `initialized` → diagnostics published for every file. */
async function benchIndex(folder: string, files: string[]): Promise<IndexResult> {
    const spawned = performance.now();
    const client = LspTestClient.start(SERVER_NODE_ARGS);
    try {
        const uris = files.map(f => URI.file(f).toString());
        const all = client.allDiagnostics(uris);
        // initialize (answered once the server has loaded), then indexing starts on `initialized`.
        const init = performance.now();
        await client.initialize([{ uri: URI.file(folder).toString(), name: path.basename(folder) }]);
        const start = performance.now();
        await all;
        const ms = performance.now() - start;
        const errors = uris.reduce((n, u) => n + (client.diagnostics.get(u) ?? []).filter(d => d.severity === 1).length, 0);
        return { files: files.length, ms, errors, startupMs: init - spawned };
    } finally {
        await client.shutdown();
    }
}

function fmt(ms: number): string {
    return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
}

function verdict(ok: boolean): string {
    return ok ? 'PASS' : 'MISS';
}

async function main(): Promise<void> {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'language-server.cjs'))) {
        throw new Error('dist/language-server.cjs is missing: run `node esbuild.mjs` first (npm run bench:lsp does)');
    }
    const filesDir = path.join(WORK, 'files');
    fs.rmSync(filesDir, { recursive: true, force: true });
    fs.mkdirSync(filesDir, { recursive: true });
    const large = path.join(filesDir, 'large.twin');
    const small = path.join(filesDir, 'small.twin');
    fs.writeFileSync(large, twinFile(10_000));
    fs.writeFileSync(small, twinFile(100));
    const workspaceDir = path.join(WORK, 'workspace');
    const workspace = writeWorkspace(workspaceDir, 1000);
    const oneFileDir = path.join(WORK, 'one-file');
    fs.rmSync(oneFileDir, { recursive: true, force: true });
    fs.mkdirSync(oneFileDir);
    fs.copyFileSync(small, path.join(oneFileDir, 'small.twin'));

    const load = os.loadavg()[0];
    console.log(`AIMatrix LSP benchmark: node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim() ?? '?'}), load average ${load.toFixed(1)} at start`);
    console.log(`server: node dist/language-server.cjs --stdio ${SERVER_NODE_ARGS.join(' ')}; client: vscode-languageserver-protocol over the child's stdio`);
    console.log(`${SAMPLES} samples per operation after ${WARMUP} warm-up requests; edit = incremental didChange (typo, then fix) → its publishDiagnostics\n`);

    // One server for the two files, side by side (the workspace folder holds just them).
    const client = LspTestClient.start(SERVER_NODE_ARGS);
    const indexed = client.allDiagnostics([large, small].map(f => URI.file(f).toString()));
    await client.initialize([{ uri: URI.file(filesDir).toString(), name: 'files' }]);
    await indexed;
    const big = await benchFile(client, large);
    const little = await benchFile(client, small);
    await client.shutdown();

    const wsIndex = await benchIndex(workspaceDir, workspace.files);
    const oneIndex = await benchIndex(oneFileDir, [path.join(oneFileDir, 'small.twin')]);

    const cliStart = performance.now();
    let cliOutput = '';
    try {
        cliOutput = execFileSync(process.execPath, [path.join(ROOT, 'bin', 'aimatrix.cjs'), 'check', '--json', workspaceDir], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    } catch (error) {
        cliOutput = String((error as { stdout?: string }).stdout ?? '');
    }
    const cliMs = performance.now() - cliStart;
    const cliErrors = (JSON.parse(cliOutput || '{"errors":-1}') as { errors: number }).errors;

    const ratio = (a: number, b: number): string => `${(a / b).toFixed(1)}×`;
    const rows: string[][] = [
        ['operation', `large file (${big.lines} lines)`, `small file (${little.lines} lines)`, 'ratio p95', 'target', 'result'],
        ['completion p50 / p95', `${fmt(big.completion.p50)} / ${fmt(big.completion.p95)}`, `${fmt(little.completion.p50)} / ${fmt(little.completion.p95)}`,
            ratio(big.completion.p95, little.completion.p95), `p95 < ${TARGETS.completionP95} ms`, verdict(big.completion.p95 < TARGETS.completionP95)],
        ['hover p50 / p95', `${fmt(big.hover.p50)} / ${fmt(big.hover.p95)}`, `${fmt(little.hover.p50)} / ${fmt(little.hover.p95)}`,
            ratio(big.hover.p95, little.hover.p95), '-', '-'],
        ['edit→diagnostics p50 / p95', `${fmt(big.edit.p50)} / ${fmt(big.edit.p95)}`, `${fmt(little.edit.p50)} / ${fmt(little.edit.p95)}`,
            ratio(big.edit.p95, little.edit.p95), `p95 < ${TARGETS.editP95} ms`, verdict(big.edit.p95 < TARGETS.editP95)],
        ['', '1,000-file workspace', '1-file workspace', 'ratio', '', ''],
        [`index (initialized → all diagnostics)`, `${fmt(wsIndex.ms)} (${wsIndex.files} files, ${workspace.lines} lines, ${wsIndex.errors} errors)`,
            `${fmt(oneIndex.ms)} (1 file)`, ratio(wsIndex.ms, oneIndex.ms), `< ${TARGETS.indexMs / 1000} s`, verdict(wsIndex.ms < TARGETS.indexMs)],
        ['aimatrix check (one process, start included)', `${fmt(cliMs)} (${cliErrors} errors)`, '', '', '', '']
    ];
    const widths = rows[0].map((_, c) => Math.max(...rows.map(r => r[c].length)));
    for (const [i, r] of rows.entries()) {
        console.log(r.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd());
        if (i === 0) console.log(widths.map(w => '-'.repeat(w)).join('  '));
    }
    console.log(`\nchecks: completion offered the expected name in ${big.completionHits}/${SAMPLES} (large) and ${little.completionHits}/${SAMPLES} (small) requests; ` +
        `hover named the parameter in ${big.hoverHits}/${SAMPLES} and ${little.hoverHits}/${SAMPLES}`);
    console.log(`load average at end: ${os.loadavg()[0].toFixed(1)} (figures are wall-clock latencies; other work on the machine inflates them)`);

    const results = { node: process.version, cpus: os.cpus().length, loadAverage: [load, os.loadavg()[0]], samples: SAMPLES, large: big, small: little, workspaceIndex: wsIndex, oneFileIndex: oneIndex, cli: { ms: cliMs, errors: cliErrors }, targets: TARGETS };
    fs.writeFileSync(path.join(WORK, 'lsp-results.json'), JSON.stringify(results, null, 2) + '\n');
    const missed = big.completion.p95 >= TARGETS.completionP95 || big.edit.p95 >= TARGETS.editP95 || wsIndex.ms >= TARGETS.indexMs;
    console.log(`results: ${path.relative(ROOT, path.join(WORK, 'lsp-results.json'))}${missed ? '; at least one target missed' : '; every target met'}`);
}

main().catch((error: unknown) => {
    process.stderr.write(`bench:lsp: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
});
