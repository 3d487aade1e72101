/**
 * Agents calling ONNX models inside a replication: the MLP's known answer reaches the
 * agent, 32 agents on one timer run as batches with the same KPIs as unbatched calls, the
 * response cache counts hits by simulated time, `infer` outside a behaviour is a located
 * compile error, a bad call is a SimulationError naming agent, model and tensor, and a
 * declaration that does not fit the ONNX file fails to load naming the same.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import type { SpanRecord, TraceRecord } from '../../protocol/index.js';
import { SimulationError, type ModelDecl } from '../../runtime/engine/api.js';
import { CompileError } from '../../runtime/engine/compile.js';
import { createModelHost } from '../../runtime/inference/model-host.js';
import { compile } from '../engine/helpers.js';
import { identityModel, mlpForward, mlpModel, randomFloats } from '../support/onnx-models.js';
import { denseModel } from './dense-model.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aimatrix-infer-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const mlp = mlpModel();
const dense = denseModel();
fs.mkdirSync(path.join(dir, 'models'));
fs.writeFileSync(path.join(dir, 'models', 'mlp.onnx'), mlp.bytes);
fs.writeFileSync(path.join(dir, 'models', 'dense.onnx'), dense.bytes);
fs.writeFileSync(path.join(dir, 'models', 'id.onnx'), identityModel({ width: 2 }));

function traced(): { records: TraceRecord[]; sink: { enabled: true; record: (r: TraceRecord) => void } } {
    const records: TraceRecord[] = [];
    return { records, sink: { enabled: true, record: r => { records.push(r); } } };
}
const spans = (records: TraceRecord[]): SpanRecord[] => records.filter((r): r is SpanRecord => r.kind === 'span' && r.cat === 'inference');

const twin = (agent: string, count: number, kpis = 'kpi total = sum(Crowd.total)') => `import "a.agent"
twin T {
  population Crowd of ${agent} count ${count}
  ${kpis}
}`;

describe('an agent calls a model', () => {
    it("gets the MLP's output: what onnxruntime computes, within 1e-5 of a float64 forward pass", async () => {
        const x = Array.from(randomFloats(64, 11));
        const agent = `import "t.twin"
system S {
  model Mlp {
    file "models/mlp.onnx"
    input x: float32 [N, 64]
    output y: float32 [N, 10]
    providers cuda, cpu
  }
  agent Caller {
    state total = 0
    every 1 h {
      let r = infer Mlp(x: [${x.join(', ')}])
      log r.y
    }
  }
}`;
        const m = await compile({ 't.twin': twin('Caller', 1, 'kpi n = 1'), 'a.agent': agent }, { root: dir });
        const host = await createModelHost(m.models ?? []);
        const { records, sink } = traced();
        const r = await m.runReplicationAsync({ seed: 1, replication: 0, horizon: 3600, warmup: 0, models: host, trace: sink });
        expect(r.status).toBe('completed');
        const log = records.find(x => x.kind === 'instant' && x.name === 'log');
        const got = String(log?.kind === 'instant' ? log.attrs?.message : '').split(',').map(Number);
        const { session } = await import('../../runtime/inference/providers.js').then(p => p.openSession(path.join(dir, 'models', 'mlp.onnx'), { providers: ['cpu'] }));
        const direct = (await session.run({ x: new ort.Tensor('float32', Float32Array.from(x), [1, 64]) })).y.data as Float32Array;
        expect(got).toEqual(Array.from(direct));
        const expected = mlpForward(mlp, Float32Array.from(x));
        got.forEach((v, i) => expect(Math.abs(v - expected[i])).toBeLessThan(1e-5));
        const [span] = spans(records);
        expect(span).toMatchObject({ name: 'Mlp', cat: 'inference', start: 3600, end: 3600, subject: 'Caller#1' });
        expect(span.attrs).toMatchObject({ model: 'Mlp', provider: 'cpu', batch: 1, cacheHit: false });
        expect(typeof span.attrs?.runUs).toBe('number');
        expect(span.loc?.file).toMatch(/a\.agent$/);
        const loaded = records.find(x => x.kind === 'instant' && x.name === 'model loaded');
        expect(loaded?.kind === 'instant' && loaded.attrs).toMatchObject({ model: 'Mlp', provider: 'cpu', requested: 'cuda, cpu' });
        await host.dispose();
    });
});

describe('micro-batching inside a replication', () => {
    const swarm = (batch: number, cache = '') => `import "t.twin"
system S {
  model Dense {
    file "models/dense.onnx"
    input x: float32 [N, 4]
    output y: float32 [N, 1]
    batch ${batch} wait 5 ms
    ${cache}
  }
  agent Scorer {
    state v = uniform(min: -1, max: 1)
    state total = 0
    every 1 h {
      let r = infer Dense(x: [v, v * 2, 1 - v, v * v])
      set total += r.y
      set v = v * 0.9 + 0.05
    }
  }
}`;

    it('32 agents on one timer run as one batch of 32 and get exactly the KPIs of unbatched calls', async () => {
        const run = async (batch: number) => {
            const m = await compile({ 't.twin': twin('Scorer', 32), 'a.agent': swarm(batch) }, { root: dir });
            const host = await createModelHost(m.models ?? []);
            const { records, sink } = traced();
            const r = await m.runReplicationAsync({ seed: 5, replication: 0, horizon: 5 * 3600, warmup: 0, models: host, trace: sink });
            const stats = host.stats()[0];
            await host.dispose();
            return { r, records, stats };
        };
        const batched = await run(32);
        const alone = await run(1);
        expect(spans(batched.records)).toHaveLength(32 * 5);
        expect(new Set(spans(batched.records).map(s => s.attrs?.batch))).toEqual(new Set([32]));
        expect(new Set(spans(alone.records).map(s => s.attrs?.batch))).toEqual(new Set([1]));
        expect(batched.stats).toMatchObject({ calls: 160, runs: 5 });
        expect(alone.stats).toMatchObject({ calls: 160, runs: 160 });
        expect(batched.r.kpis).toEqual(alone.r.kpis);
        // Spans come in the order the agents called, at each instant.
        expect(spans(batched.records).slice(0, 32).map(s => s.subject)).toEqual(Array.from({ length: 32 }, (_, i) => `Scorer#${i + 1}`));
        // And the sum is what the network computes (float32 inside, so a tolerance).
        const seedRun = await run(8);
        expect(seedRun.r.kpis).toEqual(alone.r.kpis);
        expect(new Set(spans(seedRun.records).map(s => s.attrs?.batch))).toEqual(new Set([8]));
    });

    it('the trace is the same on every run but for the wall clock', async () => {
        const once = async () => {
            const m = await compile({ 't.twin': twin('Scorer', 32), 'a.agent': swarm(8, 'cache 16 ttl 30 min') }, { root: dir });
            const host = await createModelHost(m.models);
            const { records, sink } = traced();
            await m.runReplicationAsync({ seed: 9, replication: 2, horizon: 4 * 3600, warmup: 0, models: host, trace: sink });
            await host.dispose();
            return JSON.stringify(records, (k, v: unknown) => (['wall', 'wallStart', 'wallEnd', 'queueWaitUs', 'runUs'].includes(k) ? undefined : v));
        };
        const a = await once();
        expect(a).toContain('"cat":"inference"');
        expect(await once()).toBe(a);
    });

    it('the total matches a JavaScript forward pass of the same network', async () => {
        const agent = `import "t.twin"
system S {
  model Dense {
    file "models/dense.onnx"
    input x: float32 [N, 4]
    output y: float32 [N, 1]
    batch 16
  }
  agent Scorer {
    state k = 0
    state total = 0
    every 1 h {
      set k += 1
      let r = infer Dense(x: [k, 0.5, -k, 1])
      set total += r.y
    }
  }
}`;
        const m = await compile({ 't.twin': twin('Scorer', 3), 'a.agent': agent }, { root: dir });
        const host = await createModelHost(m.models ?? []);
        const r = await m.runReplicationAsync({ seed: 1, replication: 0, horizon: 4 * 3600, warmup: 0, models: host });
        let expected = 0;
        for (let k = 1; k <= 4; k++) expected += 3 * dense.forward([k, 0.5, -k, 1]);
        expect(Math.abs(r.kpis.total - expected)).toBeLessThan(1e-5);
        await host.dispose();
    });

    it('a message handler can call models one after the other; each waits for the one before', async () => {
        const agent = `import "t.twin"
system S {
  channel Ping { k: number }
  model Dense {
    file "models/dense.onnx"
    input x: float32 [N, 4]
    output y: float32 [N, 1]
    batch 4
  }
  agent Pinger {
    state sent = 0
    every 1 h {
      set sent += 1
      send Ping { k: sent }
    }
  }
  agent Ponger {
    state total = 0
    state calls = 0
    on Ping as p {
      let a = infer Dense(x: [p.k, 0, 0, 0])
      set calls += 1
      let b = infer Dense(x: [a.y, 1, 0, 0])
      set calls += 1
      set total += b.y
    }
  }
}`;
        const t = `import "a.agent"
twin T {
  population Pingers of Pinger count 1
  population Pongers of Ponger count 2
  kpi total = sum(Pongers.total)
  kpi calls = sum(Pongers.calls)
}`;
        const m = await compile({ 't.twin': t, 'a.agent': agent }, { root: dir });
        const host = await createModelHost(m.models);
        const { records, sink } = traced();
        const r = await m.runReplicationAsync({ seed: 1, replication: 0, horizon: 3 * 3600, warmup: 0, models: host, trace: sink });
        let expected = 0;
        for (let k = 1; k <= 3; k++) expected += 2 * dense.forward([Math.fround(dense.forward([k, 0, 0, 0])), 1, 0, 0]);
        expect(r.kpis.calls).toBe(12);
        expect(Math.abs(r.kpis.total - expected)).toBeLessThan(1e-5);
        // Both Pongers' first calls batch together, then both second calls.
        expect(spans(records).map(s => `${s.subject}:${s.attrs?.batch}`)).toEqual(
            Array.from({ length: 3 }, () => ['Ponger#1:2', 'Ponger#2:2', 'Ponger#1:2', 'Ponger#2:2']).flat());
        await host.dispose();
    });

    it('the cache answers repeated inputs within its time-to-live in simulated time, and counts hits and misses', async () => {
        const agent = `import "t.twin"
system S {
  model Dense {
    file "models/dense.onnx"
    input x: float32 [N, 4]
    output y: float32 [N, 1]
    cache 64 ttl 2 h
  }
  agent Scorer {
    state total = 0
    every 1 h {
      let r = infer Dense(x: [1, 2, 3, 4])
      set total += r.y
    }
  }
}`;
        const m = await compile({ 't.twin': twin('Scorer', 4), 'a.agent': agent }, { root: dir });
        const host = await createModelHost(m.models ?? []);
        const { records, sink } = traced();
        const r = await m.runReplicationAsync({ seed: 1, replication: 0, horizon: 5 * 3600, warmup: 0, models: host, trace: sink });
        // t=1 h: a miss, then 3 hits on the answer in flight; 2 h: 4 hits; 3 h: stored at 1 h, 2 h old: a miss and 3 hits; 4 h: 4; 5 h: 1 + 3.
        expect(host.stats()[0]).toMatchObject({ calls: 20, runs: 3, cacheHits: 17, cacheMisses: 3 });
        const hits = spans(records).map(s => (s.attrs?.cacheHit ? 'h' : 'm')).join('');
        expect(hits).toBe('mhhh' + 'hhhh' + 'mhhh' + 'hhhh' + 'mhhh');
        expect(Math.abs(r.kpis.total - 20 * dense.forward([1, 2, 3, 4]))).toBeLessThan(1e-4);
        // A second replication on the same host starts with an empty cache: the same counts again.
        await m.runReplicationAsync({ seed: 1, replication: 1, horizon: 5 * 3600, warmup: 0, models: host });
        expect(host.stats()[0]).toMatchObject({ calls: 40, runs: 6, cacheHits: 34, cacheMisses: 6 });
        await host.dispose();
    });
});

describe('errors', () => {
    const withBody = (member: string) => `import "t.twin"
system S {
  model Id {
    file "models/id.onnx"
    input x: float32 [N, 2]
    output y: float32 [N, 2]
  }
  decision D {
    criterion c weight 1 maximize
    option A { c: 1 }
  }
  agent Scorer {
    state total = 0
    ${member}
  }
}`;

    it.each([
        ['a state\'s initial value', 'state bad = infer Id(x: [1, 2])'],
        ['a timer interval', 'every (infer Id(x: [1, 2])).y * 1 h { set total += 1 }'],
        ['a condition', 'when (infer Id(x: [1, 2])).y > 0 { set total += 1 }']
    ])('infer in %s is a located compile error', async (_what, member) => {
        const error = await compile({ 't.twin': twin('Scorer', 1), 'a.agent': withBody(member) }, { root: dir }).then(() => undefined, (e: unknown) => e);
        expect(error).toBeInstanceOf(CompileError);
        expect((error as Error).message).toMatch(/a\.agent:14:\d+: 'infer Id' can only be used in a behaviour \(every, on, when\)/);
    });

    it('a call with the wrong number of elements is a SimulationError at the infer naming agent, model and tensor', async () => {
        const m = await compile({ 't.twin': twin('Scorer', 2), 'a.agent': withBody('every 1 h { let r = infer Id(x: [1, 2, 3])\n set total += 1 }') }, { root: dir });
        const host = await createModelHost(m.models ?? []);
        const error = await m.runReplicationAsync({ seed: 1, replication: 0, horizon: 3 * 3600, warmup: 0, models: host }).then(() => undefined, (e: unknown) => e);
        expect(error).toBeInstanceOf(SimulationError);
        const e = error as SimulationError;
        expect(e.message).toBe("input 'x' of model 'Id' needs 2 values ([1, 2]), got 3");
        expect(e.subject).toBe('Scorer#1');
        expect(e.simTime).toBe(3600);
        expect(e.loc?.file).toMatch(/a\.agent$/);
        expect(e.loc?.line).toBe(14);
        await host.dispose();
    });

    const decl = (over: Partial<ModelDecl>): ModelDecl => ({
        name: 'Id', file: path.join(dir, 'models', 'id.onnx'),
        inputs: [{ name: 'x', type: 'float32', shape: ['N', 2] }], outputs: [{ name: 'y', type: 'float32', shape: ['N', 2] }],
        providers: ['cpu'], batch: 1, maxWaitMs: 0, cacheSize: 0, cacheTtl: Infinity, callers: ['Scorer', 'Judge'],
        loc: { file: 'a.agent', line: 3, column: 3 }, ...over
    });

    it.each([
        [{ inputs: [{ name: 'features', type: 'float32', shape: ['N', 2] }] }, "a.agent:3:3: model 'Id' (called by Scorer, Judge): input 'features' is not in"],
        [{ inputs: [{ name: 'x', type: 'float64', shape: ['N', 2] }] }, "a.agent:3:3: model 'Id' (called by Scorer, Judge): input 'x' is declared float64 but the ONNX file has float32"],
        [{ inputs: [{ name: 'x', type: 'float32', shape: ['N', 3] }] }, "a.agent:3:3: model 'Id' (called by Scorer, Judge): input 'x' is declared [N, 3] but the ONNX file has [N, 2]"],
        [{ inputs: [{ name: 'x', type: 'float32', shape: ['N', 2, 1] }] }, "a.agent:3:3: model 'Id' (called by Scorer, Judge): input 'x' is declared [N, 2, 1] but the ONNX file has [N, 2]"],
        [{ outputs: [{ name: 'z', type: 'float32', shape: ['N', 2] }] }, "a.agent:3:3: model 'Id' (called by Scorer, Judge): output 'z' is not in"],
        [{ inputs: [] }, "a.agent:3:3: model 'Id' (called by Scorer, Judge): the ONNX file's input 'x' is not declared"],
        [{ providers: ['gpu'] }, "a.agent:3:3: model 'Id' (called by Scorer, Judge): unknown execution provider 'gpu'"],
        [{ file: path.join(dir, 'models', 'nope.onnx') }, "a.agent:3:3: model 'Id' (called by Scorer, Judge): "]
    ] as [Partial<ModelDecl>, string][])('a declaration that does not fit the file fails to load: %j', async (over, message) => {
        const error = await createModelHost([decl(over)]).then(() => undefined, (e: unknown) => e as Error);
        expect(error?.message.startsWith(message)).toBe(true);
        expect(error?.message).not.toContain('\n');
    });

    it('a declared dynamic batch where the file fixes it still loads (calls are a batch of one) and does not batch', async () => {
        const fixed = path.join(dir, 'models', 'id-fixed.onnx');
        fs.writeFileSync(fixed, identityModel({ width: 2, batch: 1 }));
        const host = await createModelHost([decl({ file: fixed, batch: 8 })]);
        const r = await host.infer(0, { x: [3, 4] }, { simTime: 0, subject: 'Scorer#1', site: undefined });
        host.flush();
        expect(r.outputs.y).toEqual([3, 4]);
        await host.dispose();
    });
});
