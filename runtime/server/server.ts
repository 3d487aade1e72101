/**
 * The runtime server: JSON-RPC 2.0 over WebSocket on 127.0.0.1, one workspace.
 *
 * Who may connect: a client with the token (`Authorization: Bearer …` or `?token=…`,
 * compared in constant time) and either no `Origin` header (not a browser) or an origin a
 * token holder allowed (`server.allowOrigin`, `--allow-origin`). Frames over `maxPayload`
 * close the connection (1009). Files are resolved inside the workspace only. Every refusal
 * is logged and answered (HTTP 401/403 on the upgrade, a JSON-RPC error after it); one
 * client's garbage never stops the others being served.
 *
 * Methods and notifications are declared in protocol/runtime-rpc.ts.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { JSONRPCErrorException, JSONRPCServer } from 'json-rpc-2.0';
import { WebSocketServer, type WebSocket } from 'ws';
import {
    checkParams, ModelProfile, ModelProfileProgress, ModelsList, RpcErrorCode, RunPause, RunProgress, RunResults, RunResume, RunsList, RunStart,
    RunStateChanged, RunStop, RunWarning, RUNTIME_PROTOCOL_VERSION, ServerAllowOrigin, ServerInfo, ServerShutdown, TraceSubscribe,
    TraceUnsubscribe, type NotificationType, type ParamsOf, type RequestType, type Schema
} from '../../protocol/index.js';
import { listRuns } from '../store/run-store.js';
import { removeConnectionFile, writeConnectionFile } from './connection-file.js';
import type { Logger } from './log.js';
import { listModels } from './models.js';
import { MissingFileError, OutsideWorkspaceError, resolveInWorkspace } from './paths.js';
import { RunError, RunManager } from './run-manager.js';
import { DEFAULT_LIMITS, TraceSubscription, type SubscriptionLimits } from './trace-tail.js';

export interface ServerOptions {
    readonly workspace: string;
    /** 0: a free port. */
    readonly port: number;
    readonly version: string;
    readonly workerEntry: string;
    readonly log: Logger;
    /** Largest accepted frame, bytes. */
    readonly maxPayload?: number;
    /** Browser origins allowed from the start. */
    readonly allowOrigins?: readonly string[];
    readonly limits?: Partial<SubscriptionLimits>;
    /** Profiles a model (runtime/profile); absent: model.profile answers that profiling is not available. */
    readonly profile?: (file: string, params: ParamsOf<typeof ModelProfile.params>, onProgress: (kind: 'stage' | 'note' | 'warning' | 'run', message: string) => void) => Promise<unknown>;
}

/** What the server knows about one connection. */
interface Client {
    readonly id: number;
    readonly socket: WebSocket;
    readonly peer: string;
    readonly subscriptions: Map<string, TraceSubscription>;
}

const HOST = '127.0.0.1';

export class RuntimeServer {
    private wss: WebSocketServer | undefined;
    private readonly token = crypto.randomBytes(32).toString('base64url');
    private readonly tokenDigest = digest(this.token);
    private readonly origins: Set<string>;
    private readonly clients = new Set<Client>();
    private readonly rpc = new JSONRPCServer<Client>();
    private readonly runs: RunManager;
    private readonly limits: SubscriptionLimits;
    private readonly workspaceReal: string;
    private nextClient = 1;
    private stopping: Promise<void> | undefined;
    private resolveStopped!: () => void;
    /** Settles when the server has stopped (shutdown method, signal, stop()). */
    readonly stopped = new Promise<void>(resolve => { this.resolveStopped = resolve; });
    port = 0;

    constructor(private readonly options: ServerOptions) {
        this.workspaceReal = fs.realpathSync(options.workspace);
        // Browsers send the scheme and host of an origin in lower case.
        this.origins = new Set((options.allowOrigins ?? []).map(o => o.toLowerCase()));
        this.limits = { ...DEFAULT_LIMITS, ...options.limits };
        this.runs = new RunManager(this.workspaceReal, options.workerEntry, {
            progress: (runId, p, points) => this.broadcast(RunProgress, {
                runId, done: p.done, total: p.total, failed: p.failed, events: p.events, eventsPerSecond: Math.round(p.eventsPerSecond),
                etaSeconds: p.etaSeconds ?? null, elapsedMs: Math.round(p.elapsedMs), ...(points ? { points } : {})
            }),
            warning: (runId, message) => {
                this.log.warn(`run ${runId}: ${message}`);
                this.broadcast(RunWarning, { runId, message });
            },
            state: (runId, state, reason) => {
                this.log.info(`run ${runId}: ${state}${reason ? ` (${reason})` : ''}`);
                this.broadcast(RunStateChanged, { runId, state, ...(reason ? { reason } : {}) });
            }
        });
        this.registerMethods();
    }

    private get log(): Logger {
        return this.options.log;
    }

    /** Listens, then writes the connection file. */
    async start(): Promise<number> {
        // Runs left `running` by a server that was killed are settled (recorded incomplete) now.
        const incomplete = listRuns(this.workspaceReal).filter(r => r.state === 'incomplete');
        const wss = new WebSocketServer({
            host: HOST, port: this.options.port, maxPayload: this.options.maxPayload ?? 1 << 20,
            perMessageDeflate: false, clientTracking: false,
            verifyClient: (info: { origin: string; req: IncomingMessage }, done: (ok: boolean, code?: number, message?: string) => void) => {
                const refusal = this.refusal(info.req);
                if (refusal) {
                    this.log.warn(`refused a connection from ${peerOf(info.req)}: ${refusal.message}`);
                    done(false, refusal.code, refusal.message);
                } else {
                    done(true);
                }
            }
        });
        this.wss = wss;
        await new Promise<void>((resolve, reject) => {
            wss.once('listening', resolve);
            wss.once('error', reject);
        });
        wss.on('error', error => this.log.error(`server: ${error.message}`));
        wss.on('connection', (socket, req) => this.accept(socket, req));
        const address = wss.address();
        this.port = typeof address === 'object' && address ? address.port : this.options.port;
        writeConnectionFile(this.workspaceReal, {
            port: this.port, token: this.token, pid: process.pid, version: this.options.version,
            protocol: RUNTIME_PROTOCOL_VERSION, workspace: this.workspaceReal
        });
        this.log.info(`listening on ws://${HOST}:${this.port} for ${this.workspaceReal} (pid ${process.pid}, connection file .aimatrix/runtime.json)`);
        if (incomplete.length > 0) {
            this.log.warn(`${incomplete.length} earlier run${incomplete.length === 1 ? ' is' : 's are'} incomplete (their process ended before they did): ${incomplete.slice(-5).map(r => r.id).join(', ')}`);
        }
        return this.port;
    }

    /** Stops the runs (keeping what finished), closes every connection, removes the connection file. */
    stop(reason: string): Promise<void> {
        this.stopping ??= (async () => {
            this.log.info(`stopping: ${reason}`);
            removeConnectionFile(this.workspaceReal);
            await this.runs.stopAll();
            for (const client of this.clients) {
                for (const s of client.subscriptions.values()) s.close();
                client.socket.close(1001, 'server stopping');
            }
            // A second for the closing handshakes, then whoever did not answer is cut off.
            for (let waited = 0; this.clients.size > 0 && waited < 1000; waited += 20) await new Promise(r => setTimeout(r, 20));
            for (const client of this.clients) client.socket.terminate();
            await new Promise<void>(resolve => {
                if (!this.wss) return resolve();
                this.wss.close(() => resolve());
            });
            this.log.info('stopped');
            this.resolveStopped();
        })();
        return this.stopping;
    }

    // ------------------------------------------------------------------ admission

    private refusal(req: IncomingMessage): { code: number; message: string } | undefined {
        let token: string | undefined;
        try {
            token = tokenOf(req);
        } catch {
            // `new URL` throws on a request target such as `http://[`: answered, not left hanging.
            return { code: 400, message: 'malformed request URL' };
        }
        if (token === undefined) return { code: 401, message: 'no token (Authorization: Bearer <token> or ?token=<token>)' };
        if (!crypto.timingSafeEqual(digest(token), this.tokenDigest)) return { code: 401, message: 'wrong token' };
        const origin = req.headers.origin;
        if (origin !== undefined && !this.origins.has(origin.toLowerCase())) return { code: 403, message: `origin '${origin.slice(0, 200)}' not allowed` };
        return undefined;
    }

    private accept(socket: WebSocket, req: IncomingMessage): void {
        const client: Client = { id: this.nextClient++, socket, peer: peerOf(req), subscriptions: new Map() };
        this.clients.add(client);
        this.log.info(`client ${client.id} connected (${client.peer}${req.headers.origin ? `, origin ${req.headers.origin}` : ''})`);
        socket.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
            const text = (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer)).toString('utf8');
            void this.receive(client, text);
        });
        socket.on('error', error => {
            // ws closes the connection itself (1009 for a frame over the limit, 1002 for a protocol error).
            this.log.warn(`client ${client.id}: ${error.message}; connection closed`);
        });
        socket.on('close', (code: number) => {
            this.clients.delete(client);
            for (const s of client.subscriptions.values()) {
                s.close();
                this.runs.release(s.tail);
            }
            this.log.info(`client ${client.id} disconnected (${code})`);
        });
    }

    private async receive(client: Client, text: string): Promise<void> {
        let response: unknown;
        try {
            response = await this.rpc.receiveJSON(text, client);
        } catch (error) {
            this.log.error(`client ${client.id}: internal error: ${error instanceof Error ? error.message : String(error)}`);
            response = { jsonrpc: '2.0', id: null, error: { code: RpcErrorCode.InternalError, message: 'internal error' } };
        }
        if (response === null || response === undefined) return;
        for (const r of Array.isArray(response) ? response : [response]) {
            const error = (r as { error?: { code: number; message: string } }).error;
            if (error && (error.code === RpcErrorCode.ParseError || error.code === RpcErrorCode.InvalidRequest)) {
                this.log.warn(`client ${client.id}: ${error.message} (${error.code})`);
            }
        }
        if (client.socket.readyState === client.socket.OPEN) client.socket.send(JSON.stringify(response));
    }

    // ------------------------------------------------------------------ methods

    private method<S extends Schema, R>(type: RequestType<S, R>, handler: (params: ParamsOf<S>, client: Client) => R | Promise<R>): void {
        this.rpc.addMethod(type.method, async (params: unknown, client: Client) => {
            const problem = checkParams(type.params, params);
            if (problem) {
                this.log.warn(`client ${client.id}: ${type.method}: ${problem}`);
                throw new JSONRPCErrorException(`${type.method}: ${problem}`, RpcErrorCode.InvalidParams);
            }
            try {
                return await handler((params ?? {}) as ParamsOf<S>, client);
            } catch (error) {
                throw this.toRpcError(client, type.method, error);
            }
        });
    }

    private toRpcError(client: Client, method: string, error: unknown): JSONRPCErrorException {
        if (error instanceof JSONRPCErrorException) return error;
        let code: number = RpcErrorCode.InternalError;
        let data: unknown;
        if (error instanceof OutsideWorkspaceError) code = RpcErrorCode.Refused;
        else if (error instanceof MissingFileError) code = RpcErrorCode.NotFound;
        else if (error instanceof RunError) {
            code = error.reason === 'not-found' ? RpcErrorCode.NotFound : error.reason === 'wrong-state' ? RpcErrorCode.WrongState
                : error.reason === 'model' ? RpcErrorCode.ModelError : RpcErrorCode.InvalidParams;
            data = error.data;
        }
        const message = error instanceof Error ? error.message : String(error);
        if (code === RpcErrorCode.InternalError) this.log.error(`client ${client.id}: ${method}: ${message}`);
        else this.log.warn(`client ${client.id}: ${method} refused: ${message}`);
        return new JSONRPCErrorException(`${method}: ${message}`, code, data);
    }

    private registerMethods(): void {
        this.method(ServerInfo, () => ({ version: this.options.version, protocol: RUNTIME_PROTOCOL_VERSION, workspace: this.workspaceReal, pid: process.pid }));
        this.method(ServerAllowOrigin, ({ origin }, client) => {
            if (!isOrigin(origin)) throw new JSONRPCErrorException(`server.allowOrigin: '${origin.slice(0, 100)}' is not an origin (scheme://host)`, RpcErrorCode.InvalidParams);
            this.origins.add(origin.toLowerCase());
            this.log.info(`client ${client.id} allowed origin ${origin}`);
            return { origins: [...this.origins] };
        });
        this.method(ServerShutdown, (_params, client) => {
            this.log.info(`client ${client.id} asked to shut down`);
            // Answer first, then stop.
            setImmediate(() => { void this.stop('shutdown requested'); });
            return {};
        });
        this.method(RunStart, async (params, client) => {
            const file = resolveInWorkspace(this.workspaceReal, params.file);
            const trace = params.trace ?? true;
            const runId = await this.runs.start(
                { file, experiment: params.experiment, set: params.set, replications: params.replications, horizon: params.horizon, seed: params.seed, workers: params.workers, trace },
                { ...params, trace }
            );
            this.log.info(`client ${client.id} started run ${runId} (${params.file}${params.experiment ? ` / ${params.experiment}` : ''})`);
            return { runId };
        });
        this.method(RunStop, ({ runId }) => ({ state: this.runs.stop(runId) }));
        this.method(RunPause, ({ runId }) => ({ state: this.runs.pause(runId) }));
        this.method(RunResume, ({ runId }) => ({ state: this.runs.resume(runId) }));
        this.method(RunsList, () => ({ runs: this.runs.list() }));
        this.method(RunResults, ({ runId }) => this.runs.results(runId));
        this.method(TraceSubscribe, ({ runId, fromSeq, buffer, maxRate }, client) => {
            const { tail, live } = this.runs.tail(runId);
            const id = tail.runId;
            client.subscriptions.get(id)?.close();
            const start = fromSeq ?? 0;
            const limits = { ...this.limits, maxLag: buffer ?? this.limits.maxLag, maxRate: maxRate ?? this.limits.maxRate };
            const subscription = new TraceSubscription(tail, client.socket, start, limits, () => {
                client.subscriptions.delete(id);
                this.log.info(`client ${client.id}: trace of ${id} sent (${subscription.sent} records${subscription.missed ? `, ${subscription.missed} dropped for it` : ''})`);
                this.runs.release(tail);
            });
            client.subscriptions.set(id, subscription);
            this.log.info(`client ${client.id} subscribed to the trace of ${id} from record ${start}${live ? '' : ' (stored)'}`);
            // Counted by the tail now (so that another subscriber leaving cannot close it), pumped
            // once the answer has gone out: the answer goes out before the first batch.
            tail.add(subscription, false);
            setImmediate(() => subscription.pump());
            return { runId: id, fromSeq: start, live, buffer: limits.maxLag, maxRate: limits.maxRate };
        });
        this.method(TraceUnsubscribe, ({ runId }, client) => {
            const id = this.runs.resolve(runId).id;
            const s = client.subscriptions.get(id);
            if (!s) return { unsubscribed: false };
            s.close();
            client.subscriptions.delete(id);
            // An ended run's tail nobody reads any more is closed (its file descriptor with it).
            this.runs.release(s.tail);
            return { unsubscribed: true };
        });
        this.method(ModelsList, () => ({ models: listModels(this.workspaceReal) }));
        this.method(ModelProfile, async (params, client) => {
            const file = resolveInWorkspace(this.workspaceReal, params.file);
            if (!this.options.profile) throw new JSONRPCErrorException('model.profile: the profiler is not available in this build', RpcErrorCode.InternalError);
            this.log.info(`client ${client.id} profiles ${params.file}`);
            return await this.options.profile(file, params, (kind, message) => {
                if (client.socket.readyState === client.socket.OPEN) {
                    client.socket.send(JSON.stringify({ jsonrpc: '2.0', method: ModelProfileProgress.method, params: { file: params.file, kind, message } }));
                }
            });
        });
    }

    private broadcast<P>(type: NotificationType<P>, params: P): void {
        if (this.clients.size === 0) return;
        const text = JSON.stringify({ jsonrpc: '2.0', method: type.method, params });
        for (const client of this.clients) {
            // A client that does not read gets no more progress than its socket holds.
            if (client.socket.readyState === client.socket.OPEN && client.socket.bufferedAmount < 4 * this.limits.highWater) client.socket.send(text);
        }
    }
}

/** `scheme://host[:port]`, nothing after: what a browser sends as `Origin`. */
export function isOrigin(text: string): boolean {
    return /^[a-z][a-z0-9+.-]*:\/\/[^\s/]+$/i.test(text);
}

function digest(text: string): Buffer {
    return crypto.createHash('sha256').update(text).digest();
}

function tokenOf(req: IncomingMessage): string | undefined {
    const header = req.headers.authorization;
    if (header) {
        const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
        return match ? match[1] : undefined;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    return url.searchParams.get('token') ?? undefined;
}

function peerOf(req: IncomingMessage): string {
    return `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
}
