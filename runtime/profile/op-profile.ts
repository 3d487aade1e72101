/**
 * Per-operator breakdown from ONNX Runtime's own profiler output: a Chrome-trace JSON array
 * of events. Kernel executions are `cat: "Node"` events named `<node name>_kernel_time`,
 * with `args.op_name` (the operator type) and `args.provider` (the execution provider that
 * ran it); each `model_run` Session event spans one `session.run`.
 *
 * Control-flow operators (If, Loop, Scan) run their subgraph's kernels inside their own
 * kernel event, so ONNX Runtime's durations nest. Each row counts an operator's self time:
 * its duration less that of the kernel events nested in it (on the same thread), so the
 * rows add up to the time spent in kernels, never more.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface OpRow {
    /** The node's name in the graph (subgraph nodes carry ONNX Runtime's prefix, e.g. `If_0_then_branch__Inline_0__/…`). */
    readonly name: string;
    readonly opType: string;
    /** ONNX Runtime's provider name, e.g. `CPUExecutionProvider`. */
    readonly provider: string;
    readonly calls: number;
    /** Self time over all calls, milliseconds. */
    readonly totalMs: number;
    /** Self time per call, microseconds. */
    readonly meanUs: number;
    /** Fraction (0–1) of the profiled runs' wall time (`model_run`) spent in this node. */
    readonly share: number;
}

export interface ParsedProfile {
    /** Sorted by total time, largest first. */
    readonly ops: OpRow[];
    /** Runs counted (`model_run` events after the skipped ones). */
    readonly runs: number;
    /** Wall time of those runs, milliseconds. */
    readonly runMs: number;
    /** Self time of all kernels in those runs, milliseconds. */
    readonly kernelMs: number;
}

interface Span {
    readonly ts: number;
    readonly dur: number;
    readonly tid: number;
}

interface Kernel extends Span {
    readonly name: string;
    readonly opType: string;
    readonly provider: string;
    self: number;
}

function isRecord(v: unknown): v is Record<string, unknown> {
    return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(v: unknown): number | undefined {
    return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

const KERNEL_SUFFIX = '_kernel_time';

/**
 * Parses a profile document (the array ONNX Runtime writes). `skipRuns` leading
 * `model_run`s are left out with every kernel inside them (the first run of a session
 * allocates and is not typical). Throws on a document that is not such an array.
 */
export function parseOrtProfile(doc: unknown, skipRuns = 0): ParsedProfile {
    if (!Array.isArray(doc)) throw new Error('not an ONNX Runtime profile: expected a JSON array of trace events');
    const runs: Span[] = [];
    const kernels: Kernel[] = [];
    for (const e of doc) {
        if (!isRecord(e)) continue;
        const ts = num(e.ts);
        const dur = num(e.dur);
        const name = typeof e.name === 'string' ? e.name : undefined;
        if (ts === undefined || dur === undefined || name === undefined) continue;
        const tid = num(e.tid) ?? 0;
        if (e.cat === 'Session' && name === 'model_run') {
            runs.push({ ts, dur, tid });
        } else if (e.cat === 'Node' && name.endsWith(KERNEL_SUFFIX)) {
            const args = isRecord(e.args) ? e.args : {};
            kernels.push({
                ts, dur, tid, self: dur,
                name: name.slice(0, -KERNEL_SUFFIX.length),
                opType: typeof args.op_name === 'string' ? args.op_name : '?',
                provider: typeof args.provider === 'string' ? args.provider : '?'
            });
        }
    }
    runs.sort((a, b) => a.ts - b.ts);
    const counted = runs.slice(Math.min(skipRuns, runs.length));
    // Kernels before the first counted run belong to skipped runs (or to none).
    const from = skipRuns > 0 && counted.length > 0 ? counted[0].ts : -Infinity;
    const kept = kernels.filter(k => k.ts >= from);
    subtractNested(kept);

    const rows = new Map<string, { name: string; opType: string; provider: string; calls: number; selfUs: number }>();
    let kernelUs = 0;
    for (const k of kept) {
        const key = `${k.provider}\u0000${k.name}\u0000${k.opType}`;
        let row = rows.get(key);
        if (!row) {
            row = { name: k.name, opType: k.opType, provider: k.provider, calls: 0, selfUs: 0 };
            rows.set(key, row);
        }
        row.calls++;
        row.selfUs += k.self;
        kernelUs += k.self;
    }
    const runUs = counted.reduce((s, r) => s + r.dur, 0);
    // Without model_run events (an unusual profile) the share is of kernel time instead.
    const denominator = runUs > 0 ? Math.max(runUs, kernelUs) : kernelUs;
    const ops = [...rows.values()]
        .map(r => ({
            name: r.name,
            opType: r.opType,
            provider: r.provider,
            calls: r.calls,
            totalMs: r.selfUs / 1000,
            meanUs: r.selfUs / r.calls,
            share: denominator > 0 ? r.selfUs / denominator : 0
        }))
        .sort((a, b) => b.totalMs - a.totalMs || a.name.localeCompare(b.name));
    return { ops, runs: counted.length, runMs: runUs / 1000, kernelMs: kernelUs / 1000 };
}

/** Sets each kernel's self time: its duration less the durations of the kernels directly nested in it (same thread). */
function subtractNested(kernels: Kernel[]): void {
    const byThread = new Map<number, Kernel[]>();
    for (const k of kernels) {
        const list = byThread.get(k.tid);
        if (list) list.push(k);
        else byThread.set(k.tid, [k]);
    }
    for (const list of byThread.values()) {
        // Outer before inner: by start, then longer first.
        list.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
        const open: Kernel[] = [];
        for (const k of list) {
            while (open.length > 0 && open[open.length - 1].ts + open[open.length - 1].dur <= k.ts) open.pop();
            const parent = open[open.length - 1];
            if (parent && k.ts + k.dur <= parent.ts + parent.dur) parent.self = Math.max(0, parent.self - k.dur);
            open.push(k);
        }
    }
}

/**
 * The profile file ONNX Runtime wrote for `prefix` (`<prefix>_<date>_<time>.json`): the
 * newest match. onnxruntime-node 1.30's `endProfiling()` returns nothing, so it is found
 * by name. Undefined when there is none.
 */
export function findProfileFile(prefix: string): string | undefined {
    const dir = path.dirname(prefix);
    const base = path.basename(prefix);
    let names: string[];
    try {
        names = fs.readdirSync(dir);
    } catch {
        return undefined;
    }
    const matches = names
        .filter(n => n.startsWith(base) && n.endsWith('.json'))
        .map(n => path.join(dir, n))
        .map(file => ({ file, mtime: fs.statSync(file).mtimeMs }))
        .sort((a, b) => b.mtime - a.mtime);
    return matches[0]?.file;
}
