/**
 * Agents on the twin's clock: timers, messages (delivered at the send time, after the
 * current event), edge-triggered conditions, decisions by weighted criteria recorded
 * in the trace, a round-robin coordinator, agents changing the twin's stocks, and the
 * clear error of a model call before the inference layer exists. And: every example
 * twin compiles and runs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DecisionRecord, MessageRecord, TraceRecord } from '../../protocol/index.js';
import { SimulationError } from '../../runtime/engine/api.js';
import { compile } from './helpers.js';

const twin = `import "shop.agent"
twin Shop {
  param price = 10
  stock Cash = 0
  population Owners of Owner count 1
  kpi sold = sum(Owners.sold)
  kpi cash = final(level(Cash))
  kpi alarms = sum(Owners.alarms)
  kpi busiest = sum(Clerks.handled)
}`;
const agents = `import "shop.twin"
system Trade observes Shop {
  channel Order { qty: number }
  decision Supplier {
    criterion cost weight 2 minimize
    criterion speed weight 1 maximize
    option Near { cost: 5, speed: 3 }
    option Far { cost: 2, speed: 1 }
  }
  agent Owner {
    state sold = 0
    state alarms = 0
    state pick = "none"
    every 1 h {
      set pick = decide Supplier
      send Order { qty: 2 }
    }
    when Cash >= 100 {
      set alarms += 1
    }
  }
  agent Clerk {
    state handled = 0
    on Order as o {
      set handled += 1
      set Cash += o.qty * price
    }
  }
  swarm Clerks of Clerk count 3
  coordinator Desk over Clerks strategy round-robin
}`;

describe('agents', () => {
    it('run timers, deliver messages round-robin, change stocks, fire when-conditions on their edge and record decisions', async () => {
        const m = await compile({ 'shop.twin': twin, 'shop.agent': agents });
        const records: TraceRecord[] = [];
        const r = m.runReplication({ seed: 1, replication: 0, horizon: 10 * 3600, warmup: 0, trace: { enabled: true, record: x => { records.push(x); } } });
        // 10 hourly orders of 2 at 10 each.
        expect(r.kpis.cash).toBe(200);
        expect(r.kpis.busiest).toBe(10);
        // Cash crosses 100 once (at the 5th order): one edge, one firing.
        expect(r.kpis.alarms).toBe(1);
        const receives = records.filter((x): x is MessageRecord => x.kind === 'message' && x.phase === 'receive');
        expect(receives.map(x => x.to)).toEqual(['Clerk#1', 'Clerk#2', 'Clerk#3', 'Clerk#1', 'Clerk#2', 'Clerk#3', 'Clerk#1', 'Clerk#2', 'Clerk#3', 'Clerk#1']);
        const sends = records.filter((x): x is MessageRecord => x.kind === 'message' && x.phase === 'send');
        expect(receives[0].link).toBe(sends[0].id);
        expect(receives[0].t).toBe(sends[0].t);
        const decisions = records.filter((x): x is DecisionRecord => x.kind === 'decision');
        expect(decisions).toHaveLength(10);
        // Near: −2·5 + 1·3 = −7; Far: −2·2 + 1·1 = −3 → Far.
        expect(decisions[0].chosen).toBe('Far');
        expect(decisions[0].scores.map(s => s.score)).toEqual([-7, -3]);
        expect(decisions[0].scores[0].criteria).toEqual({ cost: 5, speed: 3 });
    });

    it('a call to a model fails with a clear message naming it, until the inference layer exists', async () => {
        const dir = path.resolve(__dirname, '../../examples/warehouse');
        const m = await compile({
            'warehouse.twin': fs.readFileSync(path.join(dir, 'warehouse.twin'), 'utf8'),
            'replenishment.agent': fs.readFileSync(path.join(dir, 'replenishment.agent'), 'utf8')
        }, { root: dir });
        let error: unknown;
        try {
            m.runReplication({ seed: 42, replication: 0, horizon: 2 * 86400, warmup: 0 });
        } catch (e) {
            error = e;
        }
        expect(error).toBeInstanceOf(SimulationError);
        const e = error as SimulationError;
        expect(e.message).toBe("model 'DemandForecast' cannot run yet: inference arrives with the inference layer");
        expect(e.simTime).toBe(3600);
        expect(e.subject).toBe('Replenisher#1');
        expect(e.loc?.file).toMatch(/replenishment\.agent$/);
    });
});

describe('examples', () => {
    const root = path.resolve(__dirname, '../../examples');
    const folders = fs.readdirSync(root).filter(f => fs.statSync(path.join(root, f)).isDirectory());
    for (const folder of folders) {
        const files = fs.readdirSync(path.join(root, folder)).filter(f => f.endsWith('.twin') || f.endsWith('.agent'));
        if (!files.some(f => f.endsWith('.twin'))) continue;
        it(`${folder}: every twin compiles and runs a short replication`, async () => {
            const texts = Object.fromEntries(files.map(f => [f, fs.readFileSync(path.join(root, folder, f), 'utf8')]));
            for (const f of files.filter(x => x.endsWith('.twin'))) {
                for (const name of [...texts[f].matchAll(/^twin (\w+)/gm)].map(x => x[1])) {
                    const m = await compile(texts, { twin: name, root: path.join(root, folder) });
                    const usesInference = Object.values(texts).some(t => /\binfer\s+\w+\s*\(/.test(t));
                    const run = () => m.runReplication({ seed: 1, replication: 0, horizon: 3600, warmup: 600 });
                    if (usesInference) {
                        expect(run).toThrow(/cannot run yet: inference arrives with the inference layer/);
                    } else {
                        const r = run();
                        expect(r.status).toBe('completed');
                        expect(Object.keys(r.kpis).length).toBe(m.kpis.length);
                    }
                }
            }
        });
    }
});
