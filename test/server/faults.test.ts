/**
 * `kill -9` of the server during a traced run: the next server start lists the run as
 * incomplete, its (binary) trace is kept up to its last complete block and can be replayed, and
 * the runs stored before are untouched. A second server for the same workspace is refused
 * while the first lives; a connection file left by a dead one is replaced.
 */
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunProgress, RunsList, RunStart, RunStateChanged, TraceEnd, TraceSubscribe } from '../../protocol/index.js';
import { readTrace } from '../../runtime/trace/read.js';
import { ensureBuilt } from '../support/build.js';
import { completeBlocksEnd } from '../support/trace-files.js';
import { BIN, Client, serve, workspace, type Served } from './support.js';

let dir: string;
const servers: Served[] = [];

beforeAll(async () => {
    await ensureBuilt();
    dir = workspace();
}, 120_000);

afterAll(() => {
    for (const s of servers) s.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
});

function hashes(folder: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of fs.readdirSync(folder)) out[name] = crypto.createHash('sha256').update(fs.readFileSync(path.join(folder, name))).digest('hex');
    return out;
}

describe('kill -9 of the server during a run', () => {
    it('leaves the run incomplete with its trace up to the last complete block; earlier runs are untouched', async () => {
        const first = await serve(dir);
        servers.push(first);
        const client = await Client.connect(first.port, { token: first.file.token });
        const done = await client.request(RunStart, { file: 'shop.twin', experiment: 'Short', replications: 2 });
        await client.until(n => n.method === RunStateChanged.method && n.params.runId === done.runId && n.params.state === 'completed');
        const before = hashes(path.join(dir, '.aimatrix', 'runs', done.runId));

        // A second server for the same workspace is refused while this one lives.
        const second = spawn(process.execPath, [BIN, 'serve', '--workspace', dir], { env: { ...process.env, NO_COLOR: '1' } });
        let secondErr = '';
        second.stderr.setEncoding('utf8').on('data', (s: string) => { secondErr += s; });
        expect(await new Promise(resolve => second.on('close', resolve))).toBe(1);
        expect(secondErr).toBe(`aimatrix: a runtime server already serves ${dir} (pid ${first.child.pid}, port ${first.port})\n`);

        const { runId } = await client.request(RunStart, { file: 'shop.twin', experiment: 'Endless', workers: 1 });
        const traceFile = path.join(dir, '.aimatrix', 'runs', runId, 'trace.aimtrace');
        await client.until(n => n.method === RunProgress.method && n.params.runId === runId && (n.params.events as number) > 50_000);
        // Some records on disk before the kill.
        while (fs.statSync(traceFile).size < 200_000) await new Promise(r => setTimeout(r, 10));
        first.child.kill('SIGKILL');
        await first.exited;
        // The connection file of the dead server is still there.
        expect(fs.existsSync(path.join(dir, '.aimatrix', 'runtime.json'))).toBe(true);

        const restarted = await serve(dir);
        servers.push(restarted);
        expect(restarted.log()).toMatch(new RegExp(`WARN {2}1 earlier run is incomplete .*${runId}`));
        const again = await Client.connect(restarted.port, { token: restarted.file.token });
        const { runs } = await again.request(RunsList, {});
        expect(runs.find(r => r.runId === runId)).toMatchObject({ state: 'incomplete', live: false, trace: true });
        expect(runs.find(r => r.runId === done.runId)).toMatchObject({ state: 'completed' });
        expect(hashes(path.join(dir, '.aimatrix', 'runs', done.runId))).toEqual(before);
        expect(fs.existsSync(path.join(dir, '.aimatrix', 'runs', runId, 'results.json'))).toBe(false);

        // The trace: every complete block decodes; a block cut by the kill (if any) is left out.
        const reader = readTrace(traceFile);
        let records = 0;
        for await (const { seq } of reader.from(0)) expect(seq).toBe(records++);
        expect(reader.truncated).toBe(completeBlocksEnd(traceFile) < fs.statSync(traceFile).size);
        expect(records).toBeGreaterThan(1000);
        await again.request(TraceSubscribe, { runId, buffer: 1e9 });
        const end = await again.until(n => n.method === TraceEnd.method);
        expect(end.params).toMatchObject({ runId, seq: records, state: 'incomplete' });
        again.close();
        client.close();

        // SIGTERM stops it cleanly: exit 0, connection file gone.
        restarted.child.kill('SIGTERM');
        expect(await restarted.exited).toBe(0);
        expect(fs.existsSync(path.join(dir, '.aimatrix', 'runtime.json'))).toBe(false);
        expect(restarted.log()).toMatch(/stopping: SIGTERM/);
    });
});
