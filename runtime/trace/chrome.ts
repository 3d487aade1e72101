/**
 * Chrome trace-event JSON (the format Perfetto and chrome://tracing open) from an AIMatrix
 * trace file of either encoding (binary or JSON Lines), streamed: records are read block by
 * block (or line by line) and written out as they come, so a
 * trace of any length exports in bounded memory (what is kept is one small entry per track).
 *
 * Mapping (docs/trace-format.md has the table):
 * - spans → complete events `ph:"X"` on the track of their subject (entities and agents each
 *   get a named thread), ts/dur in µs of simulated time (or of wall time with clock 'wall');
 * - counters → `ph:"C"` on the "Resources and stocks" process;
 * - messages → a zero-length slice on the sender's (receiver's) track plus a flow event,
 *   `ph:"s"` at the send and `ph:"f"` at the receive, with the send's id, so Perfetto draws the arrow;
 * - decisions and instants → `ph:"i"` with their data in args;
 * - process and thread names → metadata `ph:"M"`, written when a track is first used.
 */
import type { Writable } from 'node:stream';
import type { SpanRecord, TraceRecord } from '../../protocol/index.js';
import { put } from './stream.js';
import { readTrace, type TraceHeader } from './read.js';

export type Clock = 'sim' | 'wall';

interface ChromeEvent {
    name: string;
    ph: 'X' | 'C' | 's' | 'f' | 'i' | 'M';
    pid: number;
    tid?: number;
    ts?: number;
    dur?: number;
    cat?: string;
    id?: number;
    bp?: 'e';
    s?: 'g' | 'p' | 't';
    args?: Record<string, unknown>;
}

const PROCESSES = {
    run: { pid: 1, name: 'Run' },
    entities: { pid: 2, name: 'Entities' },
    agents: { pid: 3, name: 'Agents' },
    levels: { pid: 4, name: 'Resources and stocks' },
    other: { pid: 5, name: 'Other' }
} as const;

export interface ExportStats {
    readonly records: number;
    readonly events: number;
    /** The trace ended in a cut block or line (a killed run), which was left out. */
    readonly truncated: boolean;
}

/**
 * Writes the Chrome JSON of a trace file to `out` (which is not ended). Waits on the
 * stream's back-pressure, so a slow destination never fills memory.
 */
export async function exportChrome(traceFile: string, out: Writable, clock: Clock = 'sim'): Promise<ExportStats> {
    const writer = new EventWriter(out);
    const tracks = new Map<string, number>(); // "pid/subject" → tid
    let header: TraceHeader | undefined;
    let records = 0;
    const reader = readTrace(traceFile);

    const us = (sim: number, wall: number): number => clock === 'sim' ? sim * 1e6 : wall;

    const track = async (pid: number, subject: string | undefined): Promise<number> => {
        if (subject === undefined) return 0;
        const key = `${pid}/${subject}`;
        let tid = tracks.get(key);
        if (tid === undefined) {
            tid = tracks.size + 1;
            tracks.set(key, tid);
            await writer.write({ name: 'thread_name', ph: 'M', pid, tid, args: { name: subject } });
            // Sort tracks in the order they appeared.
            await writer.write({ name: 'thread_sort_index', ph: 'M', pid, tid, args: { sort_index: tid } });
        }
        return tid;
    };

    await writer.begin();
    for (const p of Object.values(PROCESSES)) {
        await writer.write({ name: 'process_name', ph: 'M', pid: p.pid, args: { name: p.name } });
        await writer.write({ name: 'process_sort_index', ph: 'M', pid: p.pid, args: { sort_index: p.pid } });
    }
    await writer.write({ name: 'thread_name', ph: 'M', pid: PROCESSES.run.pid, tid: 0, args: { name: 'run' } });

    for await (const item of reader) {
        if (item.kind === 'header') {
            header = item;
            continue;
        }
        records++;
        const r: TraceRecord = item;
        switch (r.kind) {
            case 'span': {
                const pid = spanProcess(r);
                const tid = await track(pid, r.subject);
                const start = us(r.start, r.wallStart);
                const end = us(r.end, r.wallEnd);
                const args: Record<string, unknown> = { id: r.id, ...(r.parent !== undefined ? { parent: r.parent } : {}), ...r.attrs };
                if (r.loc) args.loc = `${r.loc.file}:${r.loc.line}:${r.loc.column}`;
                if (clock === 'sim') args.wallDurUs = r.wallEnd - r.wallStart;
                await writer.write({ name: r.name, cat: r.cat, ph: 'X', pid, tid, ts: start, dur: Math.max(0, end - start), args });
                break;
            }
            case 'counter':
                await writer.write({ name: r.name, ph: 'C', pid: PROCESSES.levels.pid, ts: us(r.t, r.wall), args: { value: r.value } });
                break;
            case 'message': {
                const who = r.phase === 'send' ? r.from : r.to ?? r.from;
                const pid = PROCESSES.agents.pid;
                const tid = await track(pid, who);
                const ts = us(r.t, r.wall);
                const args: Record<string, unknown> = { channel: r.channel, from: r.from, ...(r.to ? { to: r.to } : {}), id: r.id, ...r.payload };
                await writer.write({ name: `${r.phase} ${r.channel}`, cat: 'message', ph: 'X', pid, tid, ts, dur: 0, args });
                if (r.phase === 'send') {
                    await writer.write({ name: r.channel, cat: 'message', ph: 's', id: r.id, pid, tid, ts });
                } else if (r.link !== undefined) {
                    await writer.write({ name: r.channel, cat: 'message', ph: 'f', bp: 'e', id: r.link, pid, tid, ts });
                }
                break;
            }
            case 'decision': {
                const pid = PROCESSES.agents.pid;
                const tid = await track(pid, r.agent);
                await writer.write({
                    name: `decide ${r.decision}`, cat: 'decision', ph: 'i', s: 't', pid, tid, ts: us(r.t, r.wall),
                    args: { id: r.id, chosen: r.chosen, weights: r.weights, scores: r.scores }
                });
                break;
            }
            case 'instant': {
                const pid = r.subject ? PROCESSES.other.pid : PROCESSES.run.pid;
                const tid = await track(pid, r.subject);
                const args: Record<string, unknown> = { ...r.attrs };
                if (r.loc) args.loc = `${r.loc.file}:${r.loc.line}:${r.loc.column}`;
                await writer.write({ name: r.name, cat: 'instant', ph: 'i', s: r.subject ? 't' : 'g', pid, tid, ts: us(r.t, r.wall), args });
                break;
            }
        }
    }
    await writer.end({
        displayTimeUnit: 'ms',
        otherData: {
            producer: 'aimatrix', clock: clock === 'sim' ? 'simulated time (1 µs = 1 µs simulated)' : 'wall time',
            runId: header?.runId, twin: header?.twin, experiment: header?.experiment, point: header?.point,
            replication: header?.replication, seed: header?.seed, set: header?.set
        }
    });
    return { records, events: writer.count, truncated: reader.truncated };
}

function spanProcess(r: SpanRecord): number {
    switch (r.cat) {
        case 'entity':
        case 'step':
        case 'queue':
            return PROCESSES.entities.pid;
        case 'agent':
        case 'inference':
            return PROCESSES.agents.pid;
    }
}

/** Writes `{"traceEvents":[…],…}` one event at a time, honouring back-pressure. */
class EventWriter {
    count = 0;

    constructor(private readonly out: Writable) {}

    begin(): Promise<void> {
        return this.put('{"traceEvents":[\n');
    }

    write(event: ChromeEvent): Promise<void> {
        const text = (this.count === 0 ? '' : ',\n') + JSON.stringify(event);
        this.count++;
        return this.put(text);
    }

    end(rest: Record<string, unknown>): Promise<void> {
        const tail = Object.entries(rest).map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v)}`).join('');
        return this.put(`\n]${tail}}\n`);
    }

    private put(text: string): Promise<void> {
        return put(this.out, text);
    }
}
