/**
 * Defects found in review of the runtime server, each pinned by a test that failed before
 * its fix: trace tails of ended runs left open (file descriptors) after an unsubscribe or a
 * replaced subscription, a corrupt run.json breaking every run lookup, a malformed upgrade
 * URL, and a run.start that asks for more replications than the server can hold.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelProfile, RpcErrorCode, RunResults, RunsList, RunStart, ServerInfo, TraceEnd, TraceSubscribe, TraceUnsubscribe } from '../../protocol/index.js';
import { TraceEncoder } from '../../runtime/trace/binary.js';
import { BlockFileWriter } from '../../runtime/trace/block-file.js';
import { writeBinaryTraceHeader } from '../../runtime/trace/read.js';
import { ensureBuilt } from '../support/build.js';
import { BIN, Client, serve, workspace, type Served } from './support.js';

let dir: string;
let server: Served;
let good: Client;
const STORED = '20200101-000000-000-abcdef';
const CORRUPT = '20200101-000001-000-abcdef';
const BAD_RESULTS = '20200101-000002-000-abcdef';
const RECORDS = 60_000;

/** A stored, completed run with a trace of RECORDS records (several MB: more than a socket holds). */
function storedRun(root: string): void {
    const folder = path.join(root, '.aimatrix', 'runs', STORED);
    fs.mkdirSync(folder, { recursive: true });
    fs.writeFileSync(path.join(folder, 'run.json'), JSON.stringify({
        id: STORED, state: 'completed', pid: 1, host: 'elsewhere', startedAt: '2020-01-01T00:00:00.000Z', endedAt: '2020-01-01T00:00:01.000Z',
        file: 'shop.twin', files: ['shop.twin'], twin: 'Shop', experiment: null, params: [], plan: {}, options: {}, trace: true
    }));
    // Binary, as runs store their traces.
    const file = path.join(folder, 'trace.aimtrace');
    writeBinaryTraceHeader(file, {
        kind: 'header', format: 'aimatrix-trace', runId: STORED, twin: 'Shop', experiment: null, files: ['shop.twin'], point: 0, replication: 0, set: {}, seed: 1,
        clocks: { sim: 's', wall: 'us' }, wallOrigin: 0
    });
    const fd = fs.openSync(file, 'a');
    try {
        const encoder = new TraceEncoder(new BlockFileWriter(fd));
        for (let i = 0; i < RECORDS; i++) encoder.record({ kind: 'instant', t: i, wall: 0, name: 'tick', subject: `Customer#${i}`, attrs: { pad: 'x'.repeat(60) } });
        encoder.flush();
    } finally {
        fs.closeSync(fd);
    }
    // A run folder whose run.json is valid JSON but not a run (hand-edited, another version, a bad disk).
    fs.mkdirSync(path.join(root, '.aimatrix', 'runs', CORRUPT));
    fs.writeFileSync(path.join(root, '.aimatrix', 'runs', CORRUPT, 'run.json'), '{}');
    // A run whose results.json was cut short.
    const bad = path.join(root, '.aimatrix', 'runs', BAD_RESULTS);
    fs.mkdirSync(bad);
    fs.writeFileSync(path.join(bad, 'run.json'), fs.readFileSync(path.join(folder, 'run.json'), 'utf8').replace(STORED, BAD_RESULTS));
    fs.writeFileSync(path.join(bad, 'results.json'), '{"runId":"x","poi');
    // A twin file whose name starts with two dots is inside the workspace.
    fs.writeFileSync(path.join(root, '..shop.twin'), fs.readFileSync(path.join(root, 'shop.twin')));
}

/** The server's open file descriptors that point at a trace file (Linux: /proc). */
function openTraces(): string[] {
    const fdDir = `/proc/${server.child.pid}/fd`;
    return fs.readdirSync(fdDir).flatMap(fd => {
        try {
            const target = fs.readlinkSync(path.join(fdDir, fd));
            return /trace\.(aimtrace|jsonl)$/.test(target) ? [target] : [];
        } catch {
            return [];
        }
    });
}

beforeAll(async () => {
    await ensureBuilt();
    dir = workspace();
    storedRun(dir);
    server = await serve(dir);
    good = await Client.connect(server.port, { token: server.file.token });
}, 120_000);

afterAll(async () => {
    good?.close();
    server?.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
});

const linux = process.platform === 'linux';

describe('review fixes', () => {
    it.runIf(linux)('holds no descriptor of an ended run\'s trace while its only subscriber stalls, nor once it unsubscribes before the end', async () => {
        const reader = await Client.connect(server.port, { token: server.file.token });
        // A reader that does not read: the server stops sending at its high-water mark, the subscription stays open.
        reader.socket.pause();
        const subscribed = reader.request(TraceSubscribe, { runId: STORED });
        // The server takes the subscription and sends what the socket holds; the file is open only while it reads.
        await new Promise(r => setTimeout(r, 300));
        expect(openTraces()).toEqual([]);
        const unsubscribed = reader.request(TraceUnsubscribe, { runId: STORED });
        reader.socket.resume();
        await subscribed;
        expect(await unsubscribed).toEqual({ unsubscribed: true });
        expect(reader.of(TraceEnd)).toHaveLength(0);
        expect(openTraces()).toEqual([]);
        reader.close();
    });

    it.runIf(linux)('closes the trace when a subscription replaced by another (same run, one batch) ends', async () => {
        const reader = await Client.connect(server.port, { token: server.file.token });
        reader.socket.send(JSON.stringify([
            { jsonrpc: '2.0', id: 901, method: TraceSubscribe.method, params: { runId: STORED } },
            { jsonrpc: '2.0', id: 902, method: TraceSubscribe.method, params: { runId: STORED } }
        ]));
        await reader.until(n => n.method === TraceEnd.method);
        expect(reader.of(TraceEnd)).toEqual([{ runId: STORED, seq: RECORDS, state: 'completed' }]);
        expect(openTraces()).toEqual([]);
        reader.close();
    });

    it('lists and resolves runs when one run.json is valid JSON but not a run', async () => {
        const { runs } = await good.request(RunsList, {});
        expect(runs.map(r => r.runId)).toEqual([STORED, BAD_RESULTS]);
        // A prefix lookup walked every record's id: `{}` made it an internal error.
        expect(await good.request(RunResults, { runId: STORED.slice(0, 20) })).toMatchObject({ runId: STORED, results: null });
        expect(await good.request(RunResults, { runId: STORED })).toMatchObject({ runId: STORED });
    });

    it('answers run.results of a run whose results.json is cut short with NotFound, not an internal error', async () => {
        await expect(good.request(RunResults, { runId: BAD_RESULTS })).rejects.toMatchObject({
            code: RpcErrorCode.NotFound, message: expect.stringMatching(/results\.json.*unreadable/) as unknown
        });
        expect(server.log()).not.toMatch(/ERROR/);
    });

    it('runs a file whose name starts with two dots (inside the workspace)', async () => {
        const { runId } = await good.request(RunStart, { file: '..shop.twin', experiment: 'Short', trace: false });
        await good.until(n => n.method === 'run.state' && n.params.runId === runId && n.params.state === 'completed');
    });

    it('starts runs asked for at the same moment (one batch), each to its own end', async () => {
        const ids = await Promise.all([0, 1, 2].map(() => good.request(RunStart, { file: 'shop.twin', experiment: 'Short', replications: 2 })));
        const runIds = ids.map(r => r.runId);
        expect(new Set(runIds).size).toBe(3);
        for (const runId of runIds) {
            await good.until(n => n.method === 'run.state' && n.params.runId === runId && n.params.state === 'completed');
            expect(await good.request(RunResults, { runId })).toMatchObject({ runId, state: 'completed' });
        }
    });

    it('answers an upgrade whose URL cannot be parsed with 400 and keeps serving', async () => {
        const reply = await new Promise<string>((resolve, reject) => {
            const socket = net.connect(server.port, '127.0.0.1', () => {
                socket.write('GET http://[ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                    + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
            });
            let text = '';
            socket.setEncoding('utf8').on('data', (s: string) => { text += s; });
            socket.on('close', () => resolve(text));
            socket.on('error', reject);
        });
        expect(reply).toMatch(/^HTTP\/1\.1 40[01]/);
        expect(server.log()).not.toMatch(/internal error/);
        expect(await good.request(ServerInfo, {})).toMatchObject({ pid: server.child.pid });
    });

    it('refuses more replications or workers than a run may have, in one line, and keeps serving', async () => {
        await expect(good.request(RunStart, { file: 'shop.twin', experiment: 'Short', replications: 1_000_000_000 }))
            .rejects.toMatchObject({ code: RpcErrorCode.InvalidParams, message: expect.stringMatching(/replications/) as unknown });
        await expect(good.request(RunStart, { file: 'shop.twin', experiment: 'Short', workers: 100_000 }))
            .rejects.toMatchObject({ code: RpcErrorCode.InvalidParams, message: expect.stringMatching(/workers: at most \d+/) as unknown });
        expect(await good.request(ServerInfo, {})).toMatchObject({ pid: server.child.pid });
    });

    it('refuses a model profile that would hold the server for hours or take its memory, and keeps serving', async () => {
        await expect(good.request(ModelProfile, { file: 'none.onnx', iterations: 1e12 }))
            .rejects.toMatchObject({ code: RpcErrorCode.InvalidParams, message: expect.stringMatching(/'iterations' must be ≤ 1000000/) as unknown });
        await expect(good.request(ModelProfile, { file: 'none.onnx', batches: [1, 1e9] }))
            .rejects.toMatchObject({ code: RpcErrorCode.InvalidParams, message: expect.stringMatching(/'batches' must be an array of whole numbers ≥ 1 and ≤ 65536/) as unknown });
        await expect(good.request(ModelProfile, { file: 'none.onnx', concurrency: 100_000 }))
            .rejects.toMatchObject({ code: RpcErrorCode.InvalidParams, message: expect.stringMatching(/'concurrency' must be ≤ 1024/) as unknown });
        expect(await good.request(ServerInfo, {})).toMatchObject({ pid: server.child.pid });
    });
});

describe('shutdown while a run is being started', () => {
    it('does not launch the run after the runs were stopped: the server exits, the run is not left running', async () => {
        const own = workspace();
        const served = await serve(own);
        try {
            const client = await Client.connect(served.port, { token: served.file.token });
            // run.start checks the model (asynchronous) while server.shutdown stops every run that is live by then.
            client.socket.send(JSON.stringify([
                { jsonrpc: '2.0', id: 1, method: RunStart.method, params: { file: 'shop.twin', experiment: 'Endless' } },
                { jsonrpc: '2.0', id: 2, method: 'server.shutdown', params: {} }
            ]));
            const exited = await Promise.race([served.exited, new Promise<'still running'>(r => setTimeout(() => r('still running'), 20_000))]);
            expect(exited).toBe(0);
            const runs = fs.existsSync(path.join(own, '.aimatrix', 'runs')) ? fs.readdirSync(path.join(own, '.aimatrix', 'runs')) : [];
            for (const id of runs) {
                expect((JSON.parse(fs.readFileSync(path.join(own, '.aimatrix', 'runs', id, 'run.json'), 'utf8')) as { state: string }).state).not.toBe('running');
            }
        } finally {
            served.child.kill('SIGKILL');
            fs.rmSync(own, { recursive: true, force: true });
        }
    }, 60_000);
});

describe('allowed origins', () => {
    it('matches an allowed origin whatever the case it was given in (browsers send scheme and host in lower case)', async () => {
        const own = workspace();
        const served = await serve(own, ['--allow-origin', 'HTTP://LocalHost:3000']);
        try {
            const webview = await Client.connect(served.port, { query: served.file.token, origin: 'http://localhost:3000' });
            expect(await webview.request(ServerInfo, {})).toMatchObject({ pid: served.child.pid });
            webview.close();
            await expect(Client.connect(served.port, { query: served.file.token, origin: 'http://localhost:3001' })).rejects.toMatchObject({ code: 403 });
        } finally {
            served.child.kill('SIGKILL');
            fs.rmSync(own, { recursive: true, force: true });
        }
    }, 60_000);

    it('refuses an --allow-origin that is not an origin, in one line', () => {
        const result = spawnSync(process.execPath, [BIN, 'serve', '--workspace', dir, '--allow-origin', 'http://localhost:3000/'], { encoding: 'utf8', timeout: 30_000 });
        expect(result.status).toBe(2);
        expect(result.stderr).toMatch(/--allow-origin.*not an origin/);
        expect(result.stderr).not.toMatch(/\n\s+at /);
    });
});

describe('aimatrix trace follow and a server that does not answer', () => {
    it('stops on Ctrl+C (exit 130) while waiting for an answer', async () => {
        const own = workspace();
        // A server that accepts the connection and never answers (hung, or busy).
        const hung = new WebSocketServer({ host: '127.0.0.1', port: 0 });
        await new Promise<void>(resolve => hung.once('listening', () => resolve()));
        const asked = new Promise<void>(resolve => hung.on('connection', socket => socket.on('message', () => resolve())));
        const port = (hung.address() as net.AddressInfo).port;
        fs.mkdirSync(path.join(own, '.aimatrix'));
        fs.writeFileSync(path.join(own, '.aimatrix', 'runtime.json'), JSON.stringify({ port, token: 't', pid: process.pid, version: '0', protocol: 1, workspace: own }));
        const child = spawn(process.execPath, [BIN, 'trace', 'follow', '--workspace', own], { env: { ...process.env, NO_COLOR: '1' } });
        let stderr = '';
        child.stderr.setEncoding('utf8').on('data', (t: string) => { stderr += t; });
        const exited = new Promise<number | null>(resolve => child.on('close', code => resolve(code)));
        try {
            await asked;
            child.kill('SIGINT');
            const code = await Promise.race([exited, new Promise<'still waiting'>(r => setTimeout(() => r('still waiting'), 10_000))]);
            expect(code).toBe(130);
            expect(stderr).not.toMatch(/\n\s+at /);
        } finally {
            child.kill('SIGKILL');
            hung.close();
            fs.rmSync(own, { recursive: true, force: true });
        }
    }, 60_000);
});

describe('a workspace reached through a symbolic link', () => {
    it('accepts an absolute path through the link (macOS /var → /private/var, a linked home)', async () => {
        const own = workspace();
        const link = `${own}-link`;
        fs.symlinkSync(own, link);
        const served = await serve(link);
        try {
            const client = await Client.connect(served.port, { token: served.file.token });
            const { runId } = await client.request(RunStart, { file: path.join(link, 'shop.twin'), experiment: 'Short', trace: false });
            await client.until(n => n.method === 'run.state' && n.params.runId === runId && n.params.state === 'completed');
            // Outside is still outside, whichever way it is written.
            await expect(client.request(RunStart, { file: path.join(link, '..', path.basename(own), '..', 'x.twin') })).rejects.toMatchObject({ code: RpcErrorCode.Refused });
            client.close();
        } finally {
            served.child.kill('SIGKILL');
            fs.rmSync(link, { force: true });
            fs.rmSync(own, { recursive: true, force: true });
        }
    }, 60_000);
});

describe('a connection file left by a server that died', () => {
    it('is stale when its port takes no connection, even if its pid now belongs to another process', async () => {
        const own = workspace();
        // A port nobody listens on, and a pid that is alive (this test's own process).
        const probe = net.createServer();
        await new Promise<void>(resolve => probe.listen(0, '127.0.0.1', () => resolve()));
        const deadPort = (probe.address() as net.AddressInfo).port;
        await new Promise<void>(resolve => probe.close(() => resolve()));
        fs.mkdirSync(path.join(own, '.aimatrix'));
        fs.writeFileSync(path.join(own, '.aimatrix', 'runtime.json'), JSON.stringify({ port: deadPort, token: 'old', pid: process.pid, version: '0', protocol: 1, workspace: own }));
        const served = await serve(own);
        try {
            expect(served.file.pid).toBe(served.child.pid);
            expect(served.file.token).not.toBe('old');
        } finally {
            served.child.kill('SIGKILL');
            fs.rmSync(own, { recursive: true, force: true });
        }
    }, 60_000);
});
