/**
 * The runtime server as its clients meet it: `node bin/aimatrix.cjs serve` in a child
 * process over a temporary workspace, and a real `ws` client speaking JSON-RPC with the
 * method declarations of protocol/runtime-rpc.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import WebSocket from 'ws';
import type { NotificationType, ParamsOf, RequestType, RuntimeConnectionFile, Schema } from '../../protocol/index.js';
import { ROOT } from '../support/build.js';

export const BIN = path.join(ROOT, 'bin', 'aimatrix.cjs');

export const SHOP = `
twin Shop {
  param servers = 1
  param serviceMean = 1 min
  resource Server capacity servers
  entity Customer
  source Arrivals creates Customer every exponential(mean: 2 min) into Serve
  process Serve for Customer {
    seize Server
    delay exponential(mean: serviceMean)
    release Server
  }
  kpi wait = mean(waitTime(Serve)) in min
  kpi busy = utilization(Server)
}
experiment Short for Shop {
  horizon 8 h
  replications 4
  seed 3
}
experiment Long for Shop {
  horizon 4000 h
  replications 1
  seed 5
}
experiment Endless for Shop {
  horizon 100000000 h
  replications 2
  seed 5
}
`;

export function workspace(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-serve-'));
    fs.writeFileSync(path.join(dir, 'shop.twin'), SHOP);
    return dir;
}

export interface Served {
    readonly child: ChildProcess;
    readonly port: number;
    readonly file: RuntimeConnectionFile;
    /** Everything the server logged so far. */
    log(): string;
    /** Resolves with the exit code. */
    readonly exited: Promise<number | null>;
}

export async function serve(dir: string, extra: string[] = []): Promise<Served> {
    const child = spawn(process.execPath, [BIN, 'serve', '--workspace', dir, '--json', ...extra], { cwd: dir, env: { ...process.env, AIMATRIX_DEBUG: '', NO_COLOR: '1' } });
    let stderr = '';
    let stdout = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    const exited = new Promise<number | null>(resolve => child.on('close', code => resolve(code)));
    const port = await new Promise<number>((resolve, reject) => {
        child.stdout!.setEncoding('utf8').on('data', (s: string) => {
            stdout += s;
            const line = stdout.split('\n').find(l => l.startsWith('{'));
            if (line) resolve((JSON.parse(line) as { port: number }).port);
        });
        void exited.then(code => reject(new Error(`serve exited with ${code}: ${stderr}`)));
    });
    const file = JSON.parse(fs.readFileSync(path.join(dir, '.aimatrix', 'runtime.json'), 'utf8')) as RuntimeConnectionFile;
    return { child, port, file, log: () => stderr, exited };
}

export interface Notification {
    readonly method: string;
    readonly params: Record<string, unknown>;
    /** When this client received it (performance.now()). */
    readonly at: number;
}

export class RpcError extends Error {
    constructor(readonly code: number, message: string, readonly data?: unknown) {
        super(message);
    }
}

/** A JSON-RPC client over a real WebSocket. */
export class Client {
    private nextId = 1;
    private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
    readonly notifications: Notification[] = [];
    /** Replies to requests without an id we know (garbage tests). */
    readonly stray: unknown[] = [];
    private waiters: Array<() => void> = [];
    readonly closed: Promise<{ code: number; reason: string }>;

    constructor(readonly socket: WebSocket) {
        socket.on('message', (data: Buffer) => {
            const message = JSON.parse(data.toString('utf8')) as { id?: number; method?: string; params?: Record<string, unknown>; result?: unknown; error?: { code: number; message: string; data?: unknown } };
            if (message.method) {
                this.notifications.push({ method: message.method, params: message.params ?? {}, at: performance.now() });
                for (const w of this.waiters.splice(0)) w();
                return;
            }
            const p = typeof message.id === 'number' ? this.pending.get(message.id) : undefined;
            if (!p) {
                this.stray.push(message);
                for (const w of this.waiters.splice(0)) w();
                return;
            }
            this.pending.delete(message.id!);
            if (message.error) p.reject(new RpcError(message.error.code, message.error.message, message.error.data));
            else p.resolve(message.result);
        });
        this.closed = new Promise(resolve => socket.on('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
    }

    static connect(port: number, options: { token?: string; query?: string; origin?: string; maxPayload?: number } = {}): Promise<Client> {
        return new Promise((resolve, reject) => {
            const headers: Record<string, string> = {};
            if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
            const socket = new WebSocket(`ws://127.0.0.1:${port}/${options.query ? `?token=${encodeURIComponent(options.query)}` : ''}`, { headers, origin: options.origin });
            socket.once('open', () => resolve(new Client(socket)));
            socket.once('unexpected-response', (_req, res) => reject(new RpcError(res.statusCode ?? 0, `HTTP ${res.statusCode}`)));
            socket.once('error', reject);
        });
    }

    request<S extends Schema, R>(type: RequestType<S, R>, params: ParamsOf<S>): Promise<R> {
        return this.call(type.method, params) as Promise<R>;
    }

    call(method: string, params: unknown): Promise<unknown> {
        const id = this.nextId++;
        return new Promise((resolve, reject) => {
            this.pending.set(id, { resolve, reject });
            this.socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
        });
    }

    of<P>(type: NotificationType<P>): P[] {
        return this.notifications.filter(n => n.method === type.method).map(n => n.params as P);
    }

    /** Waits until a notification satisfies the test. */
    async until(test: (n: Notification) => boolean): Promise<Notification> {
        for (;;) {
            const found = this.notifications.find(test);
            if (found) return found;
            await new Promise<void>(resolve => this.waiters.push(resolve));
        }
    }

    close(): void {
        this.socket.close();
    }
}
