/**
 * Discrete-event engine against closed forms: M/M/1 and M/M/c (Erlang C), Little's law,
 * M/D/1 (Pollaczek–Khinchine), a tandem of two M/M/1 queues, and the exact cross-check
 * with the peers' shared mulberry32 streams. Seeds are fixed, so each test is
 * deterministic; tolerances are several confidence half-widths (or a documented
 * bias bound), so a correct engine passes with a wide margin and a wrong one fails.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Mulberry32 } from '../../runtime/engine/random.js';
import { compile, erlangC, summary } from './helpers.js';

const H = 3600;

function queueTwin(opts: { servers: number; arrivals: string; service: string; extra?: string }): string {
    return `twin Q {
  param servers = ${opts.servers}
  resource Server capacity servers
  entity Job
  source Arrivals creates Job every ${opts.arrivals} into Serve
  process Serve for Job {
    seize Server
    delay ${opts.service}
    release Server
  }
  kpi wait = mean(waitTime(Serve)) in min
  kpi sojourn = mean(timeInSystem(Serve)) in min
  kpi L = mean(wip(Serve))
  kpi Lq = mean(queueLength(Server))
  kpi lambda = throughput(Serve) in per min
  kpi busy = utilization(Server)
  ${opts.extra ?? ''}
}`;
}

function replicate(model: { runReplication: (s: { seed: number; replication: number; horizon: number; warmup: number }) => { kpis: Readonly<Record<string, number>> } }, n: number, horizon: number, warmup: number) {
    return Array.from({ length: n }, (_, r) => model.runReplication({ seed: 2024, replication: r, horizon, warmup }).kpis);
}

describe('queues against closed forms', () => {
    it('M/M/1: mean wait matches ρ/(μ−λ) and utilisation matches ρ', async () => {
        const m = await compile(queueTwin({ servers: 1, arrivals: 'exponential(rate: 0.8 per min)', service: 'exponential(mean: 1 min)' }));
        const runs = replicate(m, 10, 1000 * H, 20 * H);
        const wait = summary(runs.map(k => k.wait));
        const exact = 0.8 / (1 - 0.8); // 4 min
        expect(Math.abs(wait.mean - exact)).toBeLessThan(Math.max(3 * wait.half, 0.02 * exact));
        expect(wait.half / exact).toBeLessThan(0.06); // the check has power
        const busy = summary(runs.map(k => k.busy));
        expect(Math.abs(busy.mean - 0.8)).toBeLessThan(3 * busy.half + 1e-3);
    });

    it('M/M/c: mean wait and P(wait) match Erlang C', async () => {
        const m = await compile(queueTwin({ servers: 3, arrivals: 'exponential(rate: 2.4 per min)', service: 'exponential(mean: 1 min)' }));
        const runs = replicate(m, 10, 500 * H, 10 * H);
        const exact = erlangC(2.4, 1, 3);
        const wait = summary(runs.map(k => k.wait));
        expect(Math.abs(wait.mean - exact.wq)).toBeLessThan(Math.max(3 * wait.half, 0.02 * exact.wq));
        expect(wait.half / exact.wq).toBeLessThan(0.06);
        const lq = summary(runs.map(k => k.Lq));
        expect(Math.abs(lq.mean - exact.lq)).toBeLessThan(Math.max(3 * lq.half, 0.02 * exact.lq));
    });

    it("Little's law: L = λW and Lq = λWq in every run", async () => {
        const m = await compile(queueTwin({ servers: 2, arrivals: 'exponential(mean: 40 s)', service: 'uniform(min: 30 s, max: 90 s)' }));
        for (const k of replicate(m, 3, 500 * H, 10 * H)) {
            // Edge effects (jobs in the system at the start and the end) are O(1/T): well under 1%.
            expect(Math.abs(k.L - k.lambda * k.sojourn) / k.L).toBeLessThan(0.01);
            expect(Math.abs(k.Lq - k.lambda * k.wait) / k.Lq).toBeLessThan(0.01);
        }
    });

    it('M/D/1: mean wait matches Pollaczek–Khinchine', async () => {
        const m = await compile(queueTwin({ servers: 1, arrivals: 'exponential(rate: 0.8 per min)', service: '1 min' }));
        const runs = replicate(m, 10, 1000 * H, 20 * H);
        const exact = (0.8 * 1) / (2 * (1 - 0.8)); // ρ·D / (2(1−ρ)) = 2 min
        const wait = summary(runs.map(k => k.wait));
        expect(Math.abs(wait.mean - exact)).toBeLessThan(Math.max(3 * wait.half, 0.02 * exact));
        expect(wait.half / exact).toBeLessThan(0.06);
        // And it is clearly not the M/M/1 answer (4 min): the check tells service distributions apart.
        expect(wait.mean).toBeLessThan(3);
    });

    it('tandem of two M/M/1 queues: time in system is 1/(μ1−λ) + 1/(μ2−λ)', async () => {
        const m = await compile(`twin Tandem {
  resource A capacity 1
  resource B capacity 1
  entity Job
  source Arrivals creates Job every exponential(rate: 0.5 per min) into First
  process First for Job {
    seize A
    delay exponential(mean: 1 min)
    release A
    route to Second
  }
  process Second for Job {
    seize B
    delay exponential(mean: 1.25 min)
    release B
  }
  kpi total = mean(timeInSystem(First)) in min
  kpi second = mean(timeInSystem(Second)) in min
}`);
        const runs = replicate(m, 10, 1000 * H, 20 * H);
        const exact = 1 / (1 - 0.5) + 1 / (0.8 - 0.5); // 2 + 3.333 min
        const total = summary(runs.map(k => k.total));
        expect(Math.abs(total.mean - exact)).toBeLessThan(Math.max(3 * total.half, 0.02 * exact));
        const second = summary(runs.map(k => k.second));
        expect(Math.abs(second.mean - 1 / 0.3)).toBeLessThan(Math.max(3 * second.half, 0.02 / 0.3));
    });

    it('reproduces the peers exactly with their shared mulberry32 streams (bank, N = 100,000)', async () => {
        const bank = fs.readFileSync(path.resolve(__dirname, '../../examples/bank/bank.twin'), 'utf8')
            .replace(/(source Arrivals .*?)( into Serve)/, '$1 limit 100000$2');
        const streams: Record<string, number> = { 'Bank.Arrivals/interarrival': 12345, 'Bank.Serve/steps@1/duration': 12346 };
        const m = await compile(bank, { streamOverride: name => (name in streams ? new Mulberry32(streams[name]) : undefined) });
        expect([...m.streamNames].sort()).toEqual(Object.keys(streams).sort());
        const r = m.runReplication({ seed: 0, replication: 0, horizon: Infinity, warmup: 0 });
        expect(r.entities).toBe(100000);
        expect(Math.abs(r.kpis.wait - 2.561004821460672) / 2.561004821460672).toBeLessThan(1e-12);
    });
});
