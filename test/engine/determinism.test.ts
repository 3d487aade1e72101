/**
 * Determinism and independence of random streams; runtime errors with their DSL
 * location, simulated time and subject; tracing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TraceRecord } from '../../protocol/index.js';
import { SimulationError } from '../../runtime/engine/api.js';
import { Xoshiro128, streamState } from '../../runtime/engine/random.js';
import { compile } from './helpers.js';

const bank = fs.readFileSync(path.resolve(__dirname, '../../examples/bank/bank.twin'), 'utf8');
const spec = { seed: 7, replication: 0, horizon: 20 * 3600, warmup: 3600 };

describe('determinism', () => {
    it('the same seed gives identical results; another replication or seed gives different ones', async () => {
        const a = await compile(bank);
        const b = await compile(bank);
        const r1 = a.runReplication(spec);
        expect(b.runReplication(spec)).toEqual(r1);
        expect(a.runReplication(spec)).toEqual(r1);
        expect(a.runReplication({ ...spec, replication: 1 }).kpis.wait).not.toBe(r1.kpis.wait);
        expect(a.runReplication({ ...spec, seed: 8 }).kpis.wait).not.toBe(r1.kpis.wait);
    });

    it("a stream's draws do not change when another stream is added elsewhere in the model", async () => {
        const withMore = bank
            .replace('entity Customer', 'entity Customer\n  entity Visitor\n  resource Desk capacity 1')
            .replace('process Serve for Customer {', `source Visits creates Visitor every exponential(mean: 7 min) into Browse
  process Browse for Visitor {
    seize Desk
    delay uniform(min: 1 min, max: 3 min)
    release Desk
  }
  process Serve for Customer {`);
        const a = (await compile(bank)).runReplication(spec);
        const b = (await compile(withMore)).runReplication(spec);
        expect(b.kpis.wait).toBe(a.kpis.wait);
        expect(b.kpis.busy).toBe(a.kpis.busy);
        expect(b.entities).toBeGreaterThan(a.entities);
    });

    it('streams are derived from (seed, replication, name) and look uniform', () => {
        expect(streamState(1, 0, 'x')).toEqual(streamState(1, 0, 'x'));
        expect(streamState(1, 0, 'x')).not.toEqual(streamState(1, 1, 'x'));
        expect(streamState(1, 0, 'x')).not.toEqual(streamState(1, 0, 'y'));
        const r = Xoshiro128.of(42, 3, 'test');
        const n = 200000, bins = new Array(10).fill(0);
        let sum = 0, outside = 0;
        for (let i = 0; i < n; i++) { const u = r.next(); if (!(u >= 0 && u < 1)) outside++; sum += u; bins[Math.floor(u * 10)]++; }
        expect(outside).toBe(0);
        expect(Math.abs(sum / n - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
        const chi2 = bins.reduce((a: number, b: number) => a + (b - n / 10) ** 2 / (n / 10), 0);
        expect(chi2).toBeLessThan(33.7); // 9 df, p = 1e-4
    });
});

describe('runtime errors', () => {
    async function failure(model: string): Promise<SimulationError> {
        const m = await compile(model);
        try {
            m.runReplication({ seed: 1, replication: 0, horizon: 10 * 3600, warmup: 0 });
        } catch (e) {
            if (e instanceof SimulationError) return e;
            throw e;
        }
        throw new Error('no error');
    }

    it('a negative sampled delay names the step, the time and the entity', async () => {
        const e = await failure(`twin T {
  entity Customer
  source S creates Customer every 1 min into P
  process P for Customer {
    delay normal(mean: 1 min, sd: 10 min)
  }
}`);
        expect(e.loc?.line).toBe(5);
        expect(e.loc?.column).toBe(5);
        expect(e.subject).toMatch(/^Customer#\d+$/);
        expect(e.simTime).toBeGreaterThan(0);
        expect(e.describe()).toMatch(/model\.twin:5:5: at t=\d+ s \(Customer#\d+\): negative or invalid delay -/);
    });

    it('seizing more than the capacity is an error at the seize', async () => {
        const e = await failure(`twin T {
  resource Teller capacity 3
  entity Customer { attr need = 5 }
  source S creates Customer every 1 min into P
  process P for Customer {
    seize Teller amount need
    release Teller amount need
  }
}`);
        expect(e.loc?.line).toBe(6);
        expect(e.subject).toBe('Customer#1');
        expect(e.simTime).toBe(60);
        expect(e.message).toMatch(/capacity is 3/);
    });
});

describe('tracing', () => {
    it('records entity, step and queue spans and resource counters when enabled, with both clocks', async () => {
        const m = await compile(bank);
        const records: TraceRecord[] = [];
        let wall = 0;
        const r = m.runReplication({ ...spec, horizon: 3600, trace: { enabled: true, record: x => { records.push(x); } }, wallClock: () => (wall += 10) });
        const spans = records.filter(x => x.kind === 'span');
        expect(spans.filter(s => s.cat === 'entity').length).toBeGreaterThan(10);
        expect(spans.filter(s => s.cat === 'step').length).toBeGreaterThan(10);
        expect(spans.some(s => s.cat === 'queue')).toBe(true);
        expect(records.some(x => x.kind === 'counter' && x.name === 'Teller.busy')).toBe(true);
        const step = spans.find(s => s.cat === 'step')!;
        expect(step.parent).toBeDefined();
        expect(step.loc?.line).toBe(19);
        expect(step.wallStart).toBeGreaterThan(0);
        // Tracing does not change the results.
        expect(m.runReplication({ ...spec, horizon: 3600 }).kpis).toEqual(r.kpis);
    });

    it("records every step once, the entity's child, before the entity's own span: whether it leaves as the step ends, goes on, or fails", async () => {
        const m = await compile(`twin T {
  resource Desk capacity 1
  entity Job
  source S creates Job every 15 s limit 20 into P
  process P for Job {
    delay 10 s
    seize Desk
    delay 20 s
    release Desk
  }
}`);
        const records: TraceRecord[] = [];
        m.runReplication({ seed: 1, replication: 0, horizon: Infinity, warmup: 0, trace: { enabled: true, record: x => { records.push(x); } } });
        const spans = records.filter(x => x.kind === 'span');
        const entities = spans.filter(s => s.cat === 'entity');
        expect(entities.length).toBe(20);
        for (const job of entities) {
            const steps = spans.filter(s => s.cat === 'step' && s.parent === job.id);
            // The 10 s step, after which it seizes the desk or queues for it; the 20 s one, after which it leaves.
            expect(steps.map(s => [s.end - s.start, s.subject, s.loc?.line])).toEqual([[10, job.subject, 6], [20, job.subject, 8]]);
            expect(steps[1].end).toBe(job.end);
            for (const step of steps) expect(spans.indexOf(step)).toBeLessThan(spans.indexOf(job));
        }
        expect(new Set(spans.map(s => s.id)).size).toBe(spans.length);
        // The desk is busy for 20 s of every 15: most jobs queue after their first step (which is then
        // recorded once the job has queued), and a release takes the next one in as the job leaves.
        expect(spans.filter(s => s.cat === 'queue').length).toBeGreaterThan(10);

        // A step that ended just before an error is in the trace, before the error.
        const failing = await compile(`twin T {
  entity Job { attr d = -5 }
  source S creates Job every 1 min limit 1 into P
  process P for Job {
    delay 10 s
    delay d * 1 s
  }
}`);
        const seen: TraceRecord[] = [];
        expect(() => failing.runReplication({ seed: 1, replication: 0, horizon: Infinity, warmup: 0, trace: { enabled: true, record: x => { seen.push(x); } } }))
            .toThrow(SimulationError);
        const kinds = seen.map(x => x.kind === 'span' ? x.cat : x.kind === 'instant' ? x.name : x.kind);
        expect(kinds.slice(-2)).toEqual(['step', 'error']);
    });
});
