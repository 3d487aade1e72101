/**
 * One measurement of `npm run bench:engine`, in its own process (so peak memory is its own):
 *   des N [trace|file]  the bank twin (examples/bank) with `limit N` customers, run to the end;
 *                  with `trace`, every record is encoded (runtime/trace/binary.ts) and the blocks
 *                  dropped; with `file`, the blocks are written to a temporary file from this
 *                  thread, as an experiment worker writes a run's
 *   sir REPS  the epidemic twin at dt = 0.01 d over 10,000 days (1,000,000 RK4 steps), REPS passes
 * Prints one line `RESULT {json}`. Bundled by bench/engine.ts with esbuild (Langium is ESM).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EmptyFileSystem, URI } from 'langium';
import { createAiMatrixServices } from '../language-server/src/aimatrix-module.js';
import * as ast from '../language-server/generated/ast.js';
import { compileTwin } from '../runtime/engine/compile.js';
import { TraceEncoder } from '../runtime/trace/binary.js';
import { BlockFileWriter } from '../runtime/trace/block-file.js';
import * as os from 'node:os';

const root = process.env.AIMATRIX_ROOT ?? process.cwd();

async function twinOf(file: string, edit: (text: string) => string): Promise<ast.Twin> {
    const services = createAiMatrixServices(EmptyFileSystem);
    const text = edit(fs.readFileSync(path.join(root, file), 'utf8'));
    const doc = services.shared.workspace.LangiumDocumentFactory.fromString(text, URI.file(path.join(root, file)));
    services.shared.workspace.LangiumDocuments.addDocument(doc);
    await services.shared.workspace.DocumentBuilder.build([doc], { validation: true });
    const errors = (doc.diagnostics ?? []).filter(d => d.severity === 1);
    if (errors.length) throw new Error(`${file}: ${errors.map(e => e.message).join('; ')}`);
    const twin = (doc.parseResult.value as ast.TwinFile).elements.find(ast.isTwin);
    if (!twin) throw new Error(`${file}: no twin`);
    return twin;
}

async function des(n: number, mode: string | undefined): Promise<void> {
    const twin = await twinOf('examples/bank/bank.twin', t => t.replace(/(source Arrivals .*?)( into Serve)/, `$1 limit ${n}$2`));
    const model = compileTwin(twin);
    const file = process.env.TRACE_FILE ?? path.join(os.tmpdir(), `aimatrix-bench-${process.pid}.aimtrace`);
    const fd = mode === 'file' ? fs.openSync(file, 'w') : -1;
    const trace = mode === 'trace' ? new TraceEncoder({ enabled: true, blocks: true, block: () => undefined })
        : mode === 'file' ? new TraceEncoder(new BlockFileWriter(fd)) : undefined;
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    const r = model.runReplication({ seed: 12345, replication: 0, horizon: Infinity, warmup: 0, trace });
    trace?.flush();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const records = trace?.count ?? 0;
    const bytes = fd >= 0 ? fs.fstatSync(fd).size : 0;
    if (fd >= 0) { fs.closeSync(fd); if (!process.env.TRACE_FILE) fs.rmSync(file); }
    if (r.entities !== n) throw new Error(`expected ${n} customers, got ${r.entities}`);
    console.log('RESULT ' + JSON.stringify({
        bench: 'engine_des', N: n, seconds: s, customers_per_s: n / s, customers_per_cpu_s: n / ((cpu.user + cpu.system) / 1e6), events: r.events, events_per_s: r.events / s,
        mean_wait_min: r.kpis.wait, maxrss_kb: process.resourceUsage().maxRSS, trace_records: records, trace_bytes: bytes
    }));
}

async function sir(reps: number): Promise<void> {
    const twin = await twinOf('examples/epidemic/epidemic.twin', t => t);
    const model = compileTwin(twin);
    const secs: number[] = [];
    let r;
    for (let i = 0; i < reps; i++) {
        const t0 = process.hrtime.bigint();
        r = model.runReplication({ seed: 1, replication: 0, horizon: 10000 * 86400, warmup: 0 });
        secs.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    const med = [...secs].sort((a, b) => a - b)[Math.floor(reps / 2)];
    console.log('RESULT ' + JSON.stringify({
        bench: 'engine_sir', steps: r!.events, seconds: med, steps_per_s: r!.events / med, cold_seconds: secs[0],
        cold_steps_per_s: r!.events / secs[0], kpis: r!.kpis
    }));
}

const [mode, arg] = process.argv.slice(2);
const run = mode === 'des' ? des(Number(arg ?? 1000000), process.argv[4]) : sir(Number(arg ?? 5));
run.catch(e => { console.error(e); process.exit(1); });
