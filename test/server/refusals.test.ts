/**
 * What the runtime server refuses, and that it keeps serving everyone else: a missing or
 * wrong token, a browser origin it did not allow, frames over the size limit, files outside
 * the workspace (`..`, absolute, symbolic link), and garbage frames of every kind (a
 * fast-check fuzz): each gets an HTTP refusal, a JSON-RPC error or a closed connection.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelProfile, RpcErrorCode, RunResults, RunStart, ServerAllowOrigin, ServerInfo, TraceSubscribe } from '../../protocol/index.js';
import { ensureBuilt } from '../support/build.js';
import { Client, serve, workspace, type Served } from './support.js';

let dir: string;
let outside: string;
let server: Served;
let good: Client;

beforeAll(async () => {
    await ensureBuilt();
    dir = workspace();
    outside = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-outside-'));
    fs.writeFileSync(path.join(outside, 'secret.twin'), 'twin Secret {\n}\n');
    fs.symlinkSync(path.join(outside, 'secret.twin'), path.join(dir, 'link.twin'));
    server = await serve(dir, ['--max-frame', '65536']);
    good = await Client.connect(server.port, { token: server.file.token });
}, 120_000);

afterAll(async () => {
    good?.close();
    server?.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(outside, { recursive: true, force: true });
});

async function stillServes(): Promise<void> {
    expect(await good.request(ServerInfo, {})).toMatchObject({ pid: server.child.pid });
}

describe('refusals', () => {
    it('refuses a connection without the token or with a wrong one (401), accepts ?token=', async () => {
        await expect(Client.connect(server.port)).rejects.toMatchObject({ code: 401 });
        await expect(Client.connect(server.port, { token: 'x'.repeat(43) })).rejects.toMatchObject({ code: 401 });
        await expect(Client.connect(server.port, { query: server.file.token.slice(0, -1) })).rejects.toMatchObject({ code: 401 });
        const byQuery = await Client.connect(server.port, { query: server.file.token });
        expect(await byQuery.request(ServerInfo, {})).toMatchObject({ protocol: 1 });
        byQuery.close();
        expect(server.log()).toMatch(/WARN {2}refused a connection from 127\.0\.0\.1:\d+: no token/);
        expect(server.log()).toMatch(/WARN {2}refused a connection from 127\.0\.0\.1:\d+: wrong token/);
        await stillServes();
    });

    it('refuses a browser origin it did not issue (403) until a token holder allows it', async () => {
        const origin = 'vscode-webview://1a2b3c4d';
        await expect(Client.connect(server.port, { query: server.file.token, origin: 'https://evil.example' })).rejects.toMatchObject({ code: 403 });
        await expect(Client.connect(server.port, { query: server.file.token, origin })).rejects.toMatchObject({ code: 403 });
        expect(await good.request(ServerAllowOrigin, { origin })).toEqual({ origins: [origin] });
        const webview = await Client.connect(server.port, { query: server.file.token, origin });
        expect(await webview.request(ServerInfo, {})).toMatchObject({ protocol: 1 });
        webview.close();
        // The token is still needed with an allowed origin.
        await expect(Client.connect(server.port, { origin })).rejects.toMatchObject({ code: 401 });
        await expect(good.request(ServerAllowOrigin, { origin: 'not an origin' })).rejects.toMatchObject({ code: RpcErrorCode.InvalidParams });
        expect(server.log()).toMatch(/origin 'https:\/\/evil\.example' not allowed/);
    });

    it('closes a connection that sends a frame over the limit (1009); others go on', async () => {
        const big = await Client.connect(server.port, { token: server.file.token });
        big.socket.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'server.info', params: { pad: 'x'.repeat(70_000) } }));
        expect((await big.closed).code).toBe(1009);
        expect(server.log()).toMatch(/Max payload size exceeded; connection closed/);
        await stillServes();
    });

    it('refuses files outside the workspace: .., absolute paths, symbolic links out of it', async () => {
        for (const file of ['../x.twin', path.join(outside, 'secret.twin'), 'link.twin', '/etc/passwd', 'a/../../b.twin', 'bad\u0000name.twin']) {
            const error = await good.request(RunStart, { file }).catch((e: unknown) => e);
            expect(error, file).toMatchObject({ code: RpcErrorCode.Refused });
        }
        await expect(good.request(ModelProfile, { file: '../../model.onnx' })).rejects.toMatchObject({ code: RpcErrorCode.Refused });
        expect(server.log()).toMatch(/run\.start refused: 'link\.twin' leads outside the workspace/);
        await stillServes();
    });

    it('answers malformed requests with the JSON-RPC error codes', async () => {
        const raw = await Client.connect(server.port, { token: server.file.token });
        const reply = async (text: string): Promise<{ error?: { code: number } }> => {
            const before = raw.stray.length;
            raw.socket.send(text);
            while (raw.stray.length === before) await new Promise(r => setTimeout(r, 5));
            return raw.stray[before] as { error?: { code: number } };
        };
        expect((await reply('{"jsonrpc":"2.0","id":1,"method":"run.st')).error?.code).toBe(RpcErrorCode.ParseError);
        expect((await reply('[1,2]'))).toEqual(expect.arrayContaining([expect.objectContaining({ error: expect.objectContaining({ code: RpcErrorCode.InvalidRequest }) })]));
        expect((await reply('{"hello":"world"}')).error?.code).toBe(RpcErrorCode.InvalidRequest);
        expect((await reply('{"jsonrpc":"2.0","id":"a","method":"no.such"}')).error?.code).toBe(RpcErrorCode.MethodNotFound);
        expect((await reply('{"jsonrpc":"2.0","id":"b","method":"run.start","params":{"file":42}}')).error?.code).toBe(RpcErrorCode.InvalidParams);
        expect((await reply('{"jsonrpc":"2.0","id":"c","method":"run.start","params":["shop.twin"]}')).error?.code).toBe(RpcErrorCode.InvalidParams);
        expect((await reply('{"jsonrpc":"2.0","id":"d","method":"trace.subscribe","params":{"runId":"x","fromSeq":-1}}')).error?.code).toBe(RpcErrorCode.InvalidParams);
        expect((await reply('{"jsonrpc":"2.0","id":"e","method":"run.results","params":{"runId":"x","extra":1}}')).error?.code).toBe(RpcErrorCode.InvalidParams);
        raw.close();
        await expect(good.request(TraceSubscribe, { runId: 'nope' })).rejects.toMatchObject({ code: RpcErrorCode.NotFound });
        await expect(good.request(RunResults, { runId: 'nope' })).rejects.toMatchObject({ code: RpcErrorCode.NotFound });
    });

    it('survives a fuzz of garbage frames: every frame gets an error reply or the connection closes; the server keeps serving', async () => {
        const methods = ['run.start', 'run.stop', 'run.pause', 'trace.subscribe', 'runs.list', 'run.results', 'models.list', 'server.allowOrigin', 'nope'];
        const frame = fc.oneof(
            fc.uint8Array({ maxLength: 200 }).map(b => Buffer.from(b)),
            fc.string({ maxLength: 200 }),
            fc.json().map(j => j.slice(0, Math.max(0, j.length - 1))),
            fc.json(),
            fc.record({
                jsonrpc: fc.constantFrom('2.0', '1.0', 2),
                // Ids apart from the client's own (1, 2, …): the reply to its last request must stay its own.
                id: fc.oneof(fc.integer({ min: 1_000_000 }), fc.integer({ max: -1 }), fc.string(), fc.constant(null)),
                method: fc.constantFrom(...methods),
                params: fc.oneof(fc.anything(), fc.dictionary(fc.constantFrom('file', 'runId', 'fromSeq', 'origin', 'set', 'replications'), fc.anything()))
            }).map(r => JSON.stringify(r))
        );
        await fc.assert(fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 8 }), async frames => {
            const c = await Client.connect(server.port, { token: server.file.token });
            let answered = 0;
            const expectedAnswers = frames.length;
            c.socket.on('message', () => { answered++; });
            for (const f of frames) c.socket.send(f);
            // A notification (no id) gets no answer: send a request behind the garbage and wait for it.
            const info = await Promise.race([c.call('server.info', {}).then(() => 'answered'), c.closed.then(() => 'closed')]);
            expect(['answered', 'closed']).toContain(info);
            expect(answered).toBeLessThanOrEqual(expectedAnswers + 1);
            c.socket.terminate();
        }), { numRuns: 60 });
        await stillServes();
        expect(server.child.exitCode).toBe(null);
    });
});
