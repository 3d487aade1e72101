/**
 * `aimatrix trace follow` against a real server: it finds the server by the connection
 * file, follows the newest live run by default, prints every record readably (or as JSON
 * lines), and exits when the run ends; without a server it says so in one line.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunPause, RunResume, RunStart } from '../../protocol/index.js';
import { RunStore } from '../../runtime/store/run-store.js';
import { readTrace } from '../../runtime/trace/read.js';
import { ensureBuilt } from '../support/build.js';
import { BIN, Client, serve, workspace, type Served } from './support.js';

let dir: string;
let server: Served;
let client: Client;

beforeAll(async () => {
    await ensureBuilt();
    dir = workspace();
    fs.appendFileSync(path.join(dir, 'shop.twin'), '\nexperiment Slowish for Shop {\n  horizon 300 h\n  replications 3\n  seed 4\n}\n');
}, 120_000);

afterAll(() => {
    client?.close();
    server?.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
});

function follow(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const child = spawn(process.execPath, [BIN, 'trace', 'follow', ...args], { cwd: dir, env: { ...process.env, NO_COLOR: '1', AIMATRIX_DEBUG: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    return new Promise(resolve => child.on('close', code => resolve({ code, stdout, stderr })));
}

describe('aimatrix trace follow', () => {
    it('says in one line that no server runs', async () => {
        const r = await follow([]);
        expect(r.code).toBe(1);
        expect(r.stderr).toBe(`aimatrix: no runtime server for ${dir} (start one with: aimatrix serve)\n`);
    });

    it('follows the newest live run until it ends, then replays it as JSON lines', async () => {
        server = await serve(dir);
        client = await Client.connect(server.port, { token: server.file.token });
        const none = await follow([]);
        expect(none.stderr).toMatch(/^aimatrix: no live traced run in this server/);

        const { runId } = await client.request(RunStart, { file: 'shop.twin', experiment: 'Slowish', workers: 1 });
        // Paused until the follower has subscribed: it must meet the run live.
        await client.request(RunPause, { runId });
        const following = follow([]);
        while (!server.log().includes(`subscribed to the trace of ${runId}`)) await new Promise(r => setTimeout(r, 20));
        await client.request(RunResume, { runId });
        const live = await following;
        expect(live.code, live.stderr).toBe(0);
        const storedFile = new RunStore(dir).traceFile(runId)!;
        expect(path.basename(storedFile)).toBe('trace.aimtrace');
        let stored = 0;
        for await (const item of readTrace(storedFile)) if (item.kind !== 'header') stored++;
        expect(live.stderr).toMatch(new RegExp(`^following run ${runId}\\n(?:.*\\n)*run ${runId} completed: ${stored} records\\n$`));
        const lines = live.stdout.trim().split('\n');
        // Every record printed (or a gap line saying how many were dropped for this terminal).
        const gaps = lines.filter(l => l.startsWith('… ')).map(l => Number(/^… (\d+) records dropped/.exec(l)![1]));
        expect(lines.length - gaps.length + gaps.reduce((a, b) => a + b, 0)).toBe(stored);
        expect(lines.find(l => / span {4} entity\/Customer Customer#\d+ {2}→ /.test(l))).toBeDefined();
        expect(lines.find(l => / counter {2}Server\./.test(l))).toBeDefined();

        const replay = await follow([runId.slice(0, 24), '--json', '--from', '10']);
        expect(replay.code).toBe(0);
        const json = replay.stdout.trim().split('\n').map(l => JSON.parse(l) as { kind: string });
        expect(json.length).toBe(stored - 10 + 1);
        expect(json[json.length - 1]).toEqual({ kind: 'end', runId, records: stored, state: 'completed' });

        const unknown = await follow(['zzz']);
        expect(unknown.code).toBe(1);
        expect(unknown.stderr).toMatch(/^aimatrix: no run 'zzz' in .*\n$/);
    });
});
