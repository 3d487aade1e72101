/**
 * System dynamics against references: the SIR model of the peer benchmark (RK4, same
 * step, check values from ../shared/bench/peers/README.md) to 9 significant digits;
 * logistic growth against its closed form; Euler against its exact recurrence; partial
 * steps when a process reads a stock between grid points.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from './helpers.js';

const DAY = 86400;
const epidemic = fs.readFileSync(path.resolve(__dirname, '../../examples/epidemic/epidemic.twin'), 'utf8');

function close(actual: number, expected: number, rel: number): void {
    expect(Math.abs(actual - expected) / Math.abs(expected), `${actual} vs ${expected}`).toBeLessThan(rel);
}

describe('system dynamics', () => {
    it('SIR with vital dynamics matches the peers\' RK4 (dt = 0.01 d) to 9 significant digits', async () => {
        const m = await compile(epidemic);
        const check: [number, number, number, number][] = [
            [10, 999894.7034165037, 73.51259703797682, 31.7839864570544],
            [100, 76717.03686630959, 28247.517677636173, 895035.4454560515],
            [1000, 405731.698862175, 2.7530392993039574e-06, 594268.3011350862]
        ];
        for (const [day, S, I, R] of check) {
            const r = m.runReplication({ seed: 1, replication: 0, horizon: day * DAY, warmup: 0 });
            expect(r.events).toBe(Math.round(day / 0.01));
            close(r.kpis.susceptible, S, 5e-10);
            close(r.kpis.infected, I, 5e-9);
            close(r.kpis.recovered, R, 5e-10);
        }
        // mean(level(I)) over 1000 days: Σ I·dt / 1000 = 9472.08 (README); trapezoids differ by (I0 − I_end)·dt/2.
        const r = m.runReplication({ seed: 1, replication: 0, horizon: 1000 * DAY, warmup: 0 });
        close(r.kpis.meanInfected, 9472.07907, 1e-6);
    });

    it('logistic growth matches K / (1 + (K/P0 − 1)·e^(−rt)), and its time average the exact integral', async () => {
        const m = await compile(`twin Growth {
  param r = 0.5 per d
  param K = 1000
  stock P = 10
  flow growth to P rate r * P * (1 - P / K)
  integrate rk4 step 0.1 d
  kpi final = final(level(P))
  kpi avg = mean(level(P))
}`);
        const closed = (t: number) => 1000 / (1 + (1000 / 10 - 1) * Math.exp(-0.5 * t));
        const integral = (t: number) => (1000 / 0.5) * Math.log((10 * Math.exp(0.5 * t) + 1000 - 10) / 1000);
        for (const days of [5, 10, 20, 40]) {
            const k = m.runReplication({ seed: 1, replication: 0, horizon: days * DAY, warmup: 0 }).kpis;
            close(k.final, closed(days), 1e-6);
            close(k.avg, integral(days) / days, 1e-3);
        }
    });

    it('Euler follows its own recurrence exactly, and a plain-count flow is per step unit', async () => {
        const m = await compile(`twin Decay {
  stock X = 100
  flow out from X rate 0.1 * X
  integrate euler step 1 h
  kpi x = final(level(X))
}`);
        const k = m.runReplication({ seed: 1, replication: 0, horizon: 50 * 3600, warmup: 0 }).kpis;
        let x = 100;
        for (let i = 0; i < 50; i++) x = x + 3600 * (-(0.1 * x) * (1 / 3600));
        close(k.x, x, 1e-12);
        close(k.x, 100 * Math.pow(0.9, 50), 1e-9);
    });

    it('a process reading a stock between grid points sees it integrated to that time (partial step)', async () => {
        const m = await compile(`twin Mixed {
  stock X = 0
  stock Seen = 0
  flow fill to X rate 2 per h
  integrate euler step 1 h
  entity Probe
  source Probes creates Probe every 30 min limit 1 into Look
  process Look for Probe {
    assign Seen = X
    assign X += 100
  }
  kpi seen = final(level(Seen))
  kpi x = final(level(X))
}`);
        const k = m.runReplication({ seed: 1, replication: 0, horizon: 10 * 3600, warmup: 0 }).kpis;
        close(k.seen, 1, 1e-12);      // 2 per h for half an hour
        close(k.x, 120, 1e-12);       // 20 by flow + 100 added at 0.5 h
    });

    it('a division by zero in a flow stops the run with the flow\'s location and the time', async () => {
        const m = await compile(`twin Bad {
  stock Z = 1
  stock A = 0
  flow drain from Z rate 1 per h
  flow ratio to A rate 1 per h / Z
  integrate euler step 1 h
}`);
        let error: unknown;
        try {
            m.runReplication({ seed: 1, replication: 0, horizon: 5 * 3600, warmup: 0 });
        } catch (e) {
            error = e;
        }
        expect(error).toBeInstanceOf(Error);
        const err = error as { name: string; loc?: { line: number; column: number }; simTime: number; describe(): string };
        expect(err.name).toBe('SimulationError');
        expect(err.loc?.line).toBe(5);
        expect(err.simTime).toBe(3600);
        expect(err.describe()).toMatch(/model\.twin:5:\d+: at t=3600 s: division by zero/);
    });
});
