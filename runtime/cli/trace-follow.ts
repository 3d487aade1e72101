/**
 * `aimatrix trace follow [RUN]`: prints a run's trace on the terminal as it happens,
 * through the workspace's runtime server (found by `.aimatrix/runtime.json`). RUN is a run
 * id, a unique prefix of one, or `last`; by default the newest run the server is running.
 * Records the server had to drop because this terminal fell behind are reported as a gap.
 * Ends when the run ends (exit 0; 1 when it failed), or on Ctrl+C.
 */
import * as path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { createColors } from 'picocolors';
import WebSocket from 'ws';
import {
    RunsList, TraceBatch, TraceEnd, TraceGap, TraceSubscribe,
    type NotificationParams, type ParamsOf, type RequestType, type Schema, type TraceRecord
} from '../../protocol/index.js';
import { readConnectionFile } from '../server/connection-file.js';
import { processAlive } from '../store/run-store.js';

interface FollowOptions {
    workspace?: string;
    from?: number;
    json?: boolean;
}

export function registerTraceFollow(trace: Command, setExitCode: (code: number) => void): void {
    trace.command('follow')
        .description('print the trace of a live run as it happens (through the runtime server)')
        .argument('[run]', 'a run id, a unique prefix of one, or "last" (default: the newest live run)')
        .option('--workspace <dir>', 'the workspace whose server to ask (default: the current folder)')
        .option('--from <seq>', 'start at this record (default: 0, the first)', (v: string) => {
            const n = Number(v);
            if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a whole number ≥ 0.');
            return n;
        })
        .option('--json', 'one JSON object per line: the records, {"kind":"gap",…} for dropped ones, {"kind":"end",…} last')
        .action(async (ref: string | undefined, opts: FollowOptions) => {
            setExitCode(await followCommand(ref, opts, process.stdout, process.stderr));
        });
}

export async function followCommand(
    ref: string | undefined, opts: FollowOptions,
    stdout: NodeJS.WritableStream & { isTTY?: boolean }, stderr: NodeJS.WritableStream
): Promise<number> {
    const fail = (message: string): number => {
        stderr.write(`aimatrix: ${message}\n`);
        return 1;
    };
    const workspace = path.resolve(opts.workspace ?? process.cwd());
    const connection = readConnectionFile(workspace);
    if (!connection || !processAlive(connection.pid)) return fail(`no runtime server for ${workspace} (start one with: aimatrix serve)`);

    let socket: WebSocket;
    try {
        socket = await new Promise<WebSocket>((resolve, reject) => {
            const ws = new WebSocket(`ws://127.0.0.1:${connection.port}/`, { headers: { authorization: `Bearer ${connection.token}` } });
            ws.once('open', () => resolve(ws));
            ws.once('unexpected-response', (_req, res) => reject(new Error(`the server refused the connection (HTTP ${res.statusCode})`)));
            ws.once('error', reject);
        });
    } catch (error) {
        return fail(`cannot connect to the runtime server on port ${connection.port}: ${error instanceof Error ? error.message : String(error)}`);
    }

    const colors = createColors(stdout.isTTY === true && !process.env.NO_COLOR);
    let nextId = 1;
    const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
    let resolveDone!: (code: number) => void;
    const done = new Promise<number>(resolve => { resolveDone = resolve; });
    /** Set once: the run ended (0, 1), Ctrl+C (130), or the server closed the connection (-1). */
    let finished: number | undefined;
    const finish = (code: number): void => {
        if (finished !== undefined) return;
        finished = code;
        resolveDone(code);
        // A request still waiting for its answer (a hung server) must not keep Ctrl+C from working.
        if (code === 130) for (const p of pending.values()) p.reject(new Error('interrupted'));
    };
    let expected = opts.from ?? 0;

    const request = <S extends Schema, R>(type: RequestType<S, R>, params: ParamsOf<S>): Promise<R> => {
        const id = nextId++;
        return new Promise((resolve, reject) => {
            pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
            socket.send(JSON.stringify({ jsonrpc: '2.0', id, method: type.method, params }));
        });
    };
    const write = (text: string): void => {
        // A terminal slower than the run: stop reading; the server drops for us and says so.
        if (!stdout.write(text)) {
            socket.pause();
            stdout.once('drain', () => socket.resume());
        }
    };

    socket.on('message', (data: Buffer) => {
        let message: { id?: number; method?: string; params?: unknown; result?: unknown; error?: { message: string } };
        try {
            message = JSON.parse(data.toString('utf8')) as typeof message;
        } catch {
            return;
        }
        if (message.method === TraceBatch.method) {
            const p = message.params as NotificationParams<typeof TraceBatch>;
            if (p.seq !== expected) write(opts.json ? JSON.stringify({ kind: 'gap', missed: p.seq - expected, fromSeq: expected, toSeq: p.seq - 1 }) + '\n' : colors.yellow(`… records ${expected}–${p.seq - 1} not received\n`));
            write(p.records.map(r => opts.json ? JSON.stringify(r) : formatRecord(r, colors)).join('\n') + '\n');
            expected = p.seq + p.records.length;
        } else if (message.method === TraceGap.method) {
            const p = message.params as NotificationParams<typeof TraceGap>;
            write(opts.json ? JSON.stringify({ kind: 'gap', missed: p.missed, fromSeq: p.fromSeq, toSeq: p.toSeq }) + '\n'
                : colors.yellow(`… ${p.missed} records dropped (${p.fromSeq}–${p.toSeq}): this terminal fell behind the run\n`));
            expected = p.toSeq + 1;
        } else if (message.method === TraceEnd.method) {
            const p = message.params as NotificationParams<typeof TraceEnd>;
            if (opts.json) write(JSON.stringify({ kind: 'end', runId: p.runId, records: p.seq, state: p.state }) + '\n');
            else stderr.write(`run ${p.runId} ${p.state}: ${p.seq} records\n`);
            finish(p.state === 'failed' ? 1 : 0);
        } else if (typeof message.id === 'number') {
            const p = pending.get(message.id);
            pending.delete(message.id);
            if (message.error) p?.reject(new Error(message.error.message));
            else p?.resolve(message.result);
        }
    });
    socket.on('close', () => {
        for (const p of pending.values()) p.reject(new Error('the server closed the connection'));
        finish(-1);
    });
    const onInterrupt = (): void => finish(130);
    process.on('SIGINT', onInterrupt);

    try {
        let runRef = ref;
        if (runRef === undefined) {
            const { runs } = await request(RunsList, {});
            const live = runs.filter(r => r.live && r.trace);
            if (live.length === 0) return fail('no live traced run in this server (give a run id or "last" to replay a stored trace)');
            runRef = live[live.length - 1].runId;
        }
        const subscribed = await request(TraceSubscribe, { runId: runRef, ...(opts.from !== undefined ? { fromSeq: opts.from } : {}) });
        if (!opts.json) stderr.write(`following run ${subscribed.runId}${subscribed.live ? '' : ' (stored: it has ended)'}\n`);
        const code = await done;
        if (code === -1) return fail('the runtime server closed the connection before the run ended');
        return code;
    } catch (error) {
        if (finished === 130) return 130;
        return fail(error instanceof Error ? error.message.replace(/^trace\.subscribe: /, '') : String(error));
    } finally {
        process.off('SIGINT', onInterrupt);
        // Ctrl+C does not wait for a closing handshake a hung server may never answer.
        if (finished === 130) socket.terminate();
        else socket.close();
    }
}

type Colors = ReturnType<typeof createColors>;

function time(t: number): string {
    return `${t.toFixed(3).padStart(12)} s`;
}

/** One line per record: simulated time, kind, what, who. */
export function formatRecord(r: TraceRecord, c: Colors): string {
    switch (r.kind) {
        case 'span':
            return `${c.dim(time(r.start))}  ${c.cyan('span    ')} ${r.cat}/${r.name}${r.subject ? ` ${r.subject}` : ''}  ${c.dim(`→ ${r.end.toFixed(3)} s (${(r.end - r.start).toFixed(3)} s)`)}`;
        case 'counter':
            return `${c.dim(time(r.t))}  ${c.magenta('counter ')} ${r.name} = ${r.value}`;
        case 'message':
            return `${c.dim(time(r.t))}  ${c.green('message ')} ${r.phase} ${r.channel} ${r.from}${r.to ? ` → ${r.to}` : ''}`;
        case 'decision':
            return `${c.dim(time(r.t))}  ${c.yellow('decision')} ${r.agent} ${r.decision}: ${r.chosen}`;
        case 'instant':
            return `${c.dim(time(r.t))}  ${c.blue('instant ')} ${r.name}${r.subject ? ` ${r.subject}` : ''}`;
    }
}
