/**
 * A profile report on disk (`.aimatrix/profiles/<id>.json`, written atomically) and on a
 * terminal (aligned tables: runs side by side, then the operators).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { newRunId, writeFileAtomic } from '../store/run-store.js';
import type { ProfileReport, ProfileRun } from './profile.js';

export const PROFILES_FOLDER = path.join('.aimatrix', 'profiles');

/** Stores the report under `<workspace>/.aimatrix/profiles/<id>.json`; returns the id and the file. */
export function storeProfile(workspace: string, report: ProfileReport, now: Date = new Date()): { id: string; file: string } {
    const dir = path.join(workspace, PROFILES_FOLDER);
    fs.mkdirSync(dir, { recursive: true });
    const id = newRunId(now);
    const file = path.join(dir, `${id}.json`);
    writeFileAtomic(file, JSON.stringify(report, null, 2) + '\n');
    return { id, file };
}

/** Reads a stored report back. */
export function readProfile(workspace: string, id: string): ProfileReport {
    return JSON.parse(fs.readFileSync(path.join(workspace, PROFILES_FOLDER, `${id}.json`), 'utf8')) as ProfileReport;
}

function table(header: readonly string[], rows: readonly string[][], rightAligned: ReadonlySet<number>): string {
    const widths = header.map((h, c) => Math.max(h.length, ...rows.map(r => r[c].length)));
    const line = (cells: readonly string[]): string =>
        cells.map((s, c) => (rightAligned.has(c) ? s.padStart(widths[c]) : s.padEnd(widths[c]))).join('  ').trimEnd();
    return [line(header), line(widths.map(w => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Milliseconds shown in the unit that reads best: µs below 1 ms. */
export function formatMs(ms: number): string {
    if (ms < 1) return `${(ms * 1000).toFixed(ms < 0.1 ? 1 : 0)} µs`;
    if (ms < 100) return `${ms.toFixed(2)} ms`;
    return `${ms.toFixed(0)} ms`;
}

function formatRate(perSec: number): string {
    return perSec >= 100 ? Math.round(perSec).toLocaleString('en-US') : perSec.toFixed(1);
}

function providerCell(run: ProfileRun): string {
    return run.provider === run.requestedProvider ? run.provider : `${run.provider} (asked ${run.requestedProvider})`;
}

/** The report as a human reads it. */
export function formatProfile(report: ProfileReport, stored?: string): string {
    const out: string[] = [];
    out.push(`model ${report.model}`);
    out.push(`inputs ${report.inputs.map(i => `${i.name} ${i.type} [${i.shape.join(', ')}]`).join(', ')}`);
    out.push('');
    const micro = report.runs.some(r => r.batching === 'micro');
    const header = ['provider', 'batch', 'callers', ...(micro ? ['batching'] : []), 'calls', 'mean', 'p50', 'p95', 'p99', 'min', 'max', 'items/s'];
    const rows = report.runs.map(r => [
        providerCell(r), String(r.batch), String(r.concurrency),
        ...(micro ? [r.batching === 'micro' ? `micro (${(r.mergedCalls ?? 1).toFixed(1)}/run)` : 'none'] : []),
        String(r.iterations),
        formatMs(r.latencyMs.mean), formatMs(r.latencyMs.p50), formatMs(r.latencyMs.p95), formatMs(r.latencyMs.p99),
        formatMs(r.latencyMs.min), formatMs(r.latencyMs.max), formatRate(r.throughputPerSec)
    ]);
    const first = micro ? 4 : 3;
    out.push(table(header, rows, new Set([1, 2, ...Array.from({ length: 7 }, (_, i) => first + i)])));
    if (micro) {
        for (const m of report.runs.filter(r => r.batching === 'micro')) {
            const base = report.runs.find(r => r.batching === 'none' && r.provider === m.provider && r.requestedProvider === m.requestedProvider && r.batch === m.batch);
            if (base) out.push(`micro-batching, ${m.provider} batch ${m.batch}: ${(m.throughputPerSec / base.throughputPerSec).toFixed(2)}× the throughput of ${m.concurrency} unbatched callers`);
        }
    }
    if (report.ops.length > 0) {
        out.push('');
        const shown = report.ops.slice(0, 15);
        out.push(table(['operator', 'type', 'provider', 'calls', 'total', 'mean', 'share'], shown.map(o => [
            o.name.length > 48 ? `…${o.name.slice(-47)}` : o.name, o.opType, o.provider, String(o.calls),
            formatMs(o.totalMs), formatMs(o.meanUs / 1000), `${(o.share * 100).toFixed(1)}%`
        ]), new Set([3, 4, 5, 6])));
        if (report.ops.length > shown.length) out.push(`… ${report.ops.length - shown.length} more operators (--json for all)`);
    }
    out.push('');
    out.push(`memory (RSS) ${report.memory.rssBeforeMb.toFixed(1)} MB before, ${report.memory.rssAfterMb.toFixed(1)} MB after the timed runs`);
    if (report.gpu !== null) {
        const util = report.gpu.map(s => s.utilizationPct);
        const mem = report.gpu.map(s => s.memoryUsedMb);
        out.push(`gpu ${report.gpu.length} samples: utilisation mean ${(util.reduce((a, b) => a + b, 0) / util.length).toFixed(0)}% (max ${Math.max(...util)}%), memory used up to ${Math.max(...mem)} MB`);
    }
    if (stored) out.push(`stored ${stored}`);
    return out.join('\n') + '\n';
}
