/**
 * A run through the runtime server, as a client drives it: start → progress and state
 * notifications → results → listed; pause, resume and stop; model and usage errors as
 * JSON-RPC errors; shutdown removes the connection file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
    ModelProfile, ModelProfileProgress, ModelsList, RpcErrorCode, RunPause, RunProgress, RunResults, RunResume, RunsList, RunStart, RunStateChanged, RunStop,
    ServerInfo, ServerShutdown
} from '../../protocol/index.js';
import { ensureBuilt } from '../support/build.js';
import { identityModel } from '../support/onnx-models.js';
import { Client, serve, workspace, type Served } from './support.js';

let dir: string;
let server: Served;
let client: Client;

beforeAll(async () => {
    await ensureBuilt();
    dir = workspace();
    fs.writeFileSync(path.join(dir, 'broken.twin'), 'twin Broken {\n  resource R capacity nope\n}\n');
    server = await serve(dir);
    client = await Client.connect(server.port, { token: server.file.token });
}, 120_000);

afterAll(async () => {
    client?.close();
    server?.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
});

describe('aimatrix serve: the run lifecycle', () => {
    it('writes a 0600 connection file with port, token, pid and version', async () => {
        const file = path.join(dir, '.aimatrix', 'runtime.json');
        expect(fs.statSync(file).mode & 0o777).toBe(0o600);
        expect(server.file).toMatchObject({ port: server.port, pid: server.child.pid, protocol: 1 });
        expect(server.file.token.length).toBeGreaterThanOrEqual(32);
        expect(await client.request(ServerInfo, {})).toMatchObject({ pid: server.child.pid, workspace: fs.realpathSync(dir) });
    });

    it('starts a run, reports progress and states, stores results and lists it', async () => {
        const { runId } = await client.request(RunStart, { file: 'shop.twin', experiment: 'Short', trace: false });
        const end = await client.until(n => n.method === RunStateChanged.method && n.params.runId === runId && n.params.state === 'completed');
        expect(end.params).toMatchObject({ runId, state: 'completed' });
        const states = client.of(RunStateChanged).filter(s => s.runId === runId).map(s => s.state);
        expect(states[0]).toBe('running');
        const progress = client.of(RunProgress).filter(p => p.runId === runId);
        expect(progress.length).toBeGreaterThan(0);
        expect(progress[progress.length - 1]).toMatchObject({ done: 4, total: 4, failed: 0 });
        for (let i = 1; i < progress.length; i++) expect(progress[i].events).toBeGreaterThanOrEqual(progress[i - 1].events);
        // KPIs so far come with the progress that follows a finished replication: n grows to 4.
        const withPoints = progress.filter(p => p.points !== undefined);
        expect(withPoints.length).toBeGreaterThan(0);
        const ns = withPoints.map(p => p.points![0].kpis.wait.n);
        for (let i = 1; i < ns.length; i++) expect(ns[i]).toBeGreaterThan(ns[i - 1]);
        expect(ns[ns.length - 1]).toBe(4);

        const { results, state } = await client.request(RunResults, { runId });
        expect(state).toBe('completed');
        expect(results).toMatchObject({ runId, state: 'completed', twin: 'Shop', experiment: 'Short', replications: 4, seed: 3 });
        expect(results!.points[0].kpis.wait.n).toBe(4);
        // The same numbers `aimatrix run` stores.
        expect((JSON.parse(fs.readFileSync(path.join(dir, '.aimatrix', 'runs', runId, 'results.json'), 'utf8')) as { points: unknown }).points).toEqual(results!.points);
        expect(withPoints[withPoints.length - 1].points).toEqual(results!.points);
        const { runs } = await client.request(RunsList, {});
        expect(runs.find(r => r.runId === runId)).toMatchObject({ state: 'completed', live: false, file: 'shop.twin', trace: false, progress: { finished: 4, total: 4 } });
    });

    it('pauses, resumes and stops a run; its finished replications are kept', async () => {
        const { runId } = await client.request(RunStart, { file: 'shop.twin', experiment: 'Endless', workers: 1, trace: false });
        await client.until(n => n.method === RunProgress.method && n.params.runId === runId && (n.params.events as number) > 0);
        await client.request(RunPause, { runId });
        await client.until(n => n.method === RunStateChanged.method && n.params.runId === runId && n.params.state === 'paused');
        expect((await client.request(RunsList, {})).runs.find(r => r.runId === runId)!.state).toBe('paused');
        await client.request(RunResume, { runId });
        await client.until(n => n.method === RunStateChanged.method && n.params.runId === runId && n.params.state === 'running' && client.of(RunStateChanged).some(s => s.runId === runId && s.state === 'paused'));
        await client.request(RunStop, { runId });
        await client.until(n => n.method === RunStateChanged.method && n.params.runId === runId && n.params.state === 'stopped');
        const { results } = await client.request(RunResults, { runId });
        expect(results!.state).toBe('stopped');
        // Controlling a run that ended is refused.
        await expect(client.request(RunPause, { runId })).rejects.toMatchObject({ code: RpcErrorCode.WrongState });
    });

    it('answers model errors, unknown experiments and unknown runs with JSON-RPC errors', async () => {
        const broken = await client.request(RunStart, { file: 'broken.twin' }).catch((e: unknown) => e);
        expect(broken).toMatchObject({ code: RpcErrorCode.ModelError });
        expect((broken as { data: { diagnostics: Array<{ file: string; line: number }> } }).data.diagnostics[0]).toMatchObject({ line: 2 });
        await expect(client.request(RunStart, { file: 'shop.twin', experiment: 'Nope' })).rejects.toMatchObject({ code: RpcErrorCode.InvalidParams });
        await expect(client.request(RunStart, { file: 'missing.twin' })).rejects.toMatchObject({ code: RpcErrorCode.NotFound });
        await expect(client.request(RunResults, { runId: 'zzz' })).rejects.toMatchObject({ code: RpcErrorCode.NotFound });
    });

    it('lists the ONNX models of the workspace and profiles one', async () => {
        fs.mkdirSync(path.join(dir, 'models'));
        fs.writeFileSync(path.join(dir, 'models', 'id.onnx'), identityModel());
        fs.writeFileSync(path.join(dir, 'models', 'junk.onnx'), 'not a model');
        const { models } = await client.request(ModelsList, {});
        expect(models.map(m => m.file)).toEqual(['models/id.onnx', 'models/junk.onnx']);
        expect(models[0].inputs!.length).toBe(1);
        expect(models[0].outputs!.length).toBe(1);
        expect(models[1].error).toBeDefined();
        const report = await client.request(ModelProfile, { file: 'models/id.onnx', warmup: 2, iterations: 20, opRuns: 0 }) as { runs: Array<{ provider: string; batch: number }> };
        expect(report.runs[0]).toMatchObject({ provider: 'cpu', batch: 1 });
        expect(client.of(ModelProfileProgress).some(p => p.file === 'models/id.onnx')).toBe(true);
        await expect(client.request(ModelProfile, { file: 'models/junk.onnx' })).rejects.toBeDefined();
        await expect(client.request(ModelProfile, { file: 'models/id.onnx', batches: [0] })).rejects.toMatchObject({ code: RpcErrorCode.InvalidParams });
    });

    it('shuts down on request: removes the connection file and exits 0', async () => {
        await client.request(ServerShutdown, {});
        expect(await client.closed).toEqual({ code: 1001, reason: 'server stopping' });
        expect(await server.exited).toBe(0);
        expect(fs.existsSync(path.join(dir, '.aimatrix', 'runtime.json'))).toBe(false);
        expect(server.log()).toMatch(/INFO {2}stopping: shutdown requested/);
    });
});
